"""Sustained load: 64 concurrent grpcio calls on one channel for 30 s, well past 1000 requests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc

from tests.server.servicer import pb2, pb2_grpc

DURATION = 30.0
IN_FLIGHT = 64


async def test_64_in_flight_for_30_seconds_on_one_connection(start_server: Any) -> None:
    async with start_server() as endpoint, endpoint.aio_channel() as channel:
        stub = pb2_grpc.EchoStub(channel)
        deadline = time.monotonic() + DURATION
        done = 0
        failures: list[grpc.aio.AioRpcError] = []

        async def worker(n: int) -> None:
            nonlocal done
            request = pb2.EchoRequest(message=f"w{n}", payload=b"x" * 64)
            while time.monotonic() < deadline:
                try:
                    reply = await stub.Unary(request, timeout=10)
                except grpc.aio.AioRpcError as error:
                    failures.append(error)
                    return
                assert reply.message == f"w{n}"
                done += 1

        await asyncio.gather(*(worker(n) for n in range(IN_FLIGHT)))
        assert failures == []
        assert done > 1000
        # One connection served them all (Hypercorn's 1000-request limit would have broken it).
        assert channel.get_state() == grpc.ChannelConnectivity.READY
