"""stop(grace) and wait_for_termination, observed from grpcio clients."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest

import asgi_grpc
from tests.server.servicer import AsyncEcho, Events, pb2, pb2_grpc


async def started(events: Events | None = None) -> tuple[Any, str]:
    server = asgi_grpc.aio.server()
    pb2_grpc.add_EchoServicer_to_server(AsyncEcho(events or Events()), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def test_grace_lets_in_flight_calls_finish_and_refuses_new_ones() -> None:
    server, target = await started()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb2_grpc.EchoStub(channel)
        await stub.Unary(pb2.EchoRequest(message="warm"))
        in_flight = asyncio.ensure_future(stub.Unary(pb2.EchoRequest(message="slow", delay_ms=600)))
        await asyncio.sleep(0.1)
        began = time.monotonic()
        stopping = asyncio.ensure_future(server.stop(5))
        await asyncio.sleep(0.1)
        with_error = None
        try:
            await stub.Unary(pb2.EchoRequest(message="late"), timeout=2)
        except grpc.aio.AioRpcError as error:
            with_error = error
        assert with_error is not None
        assert with_error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        assert (await in_flight).message == "slow"
        await stopping
        assert time.monotonic() - began < 3  # returned once idle, not at the end of grace
    assert await server.wait_for_termination(0.1) is False


async def test_grace_expiry_cancels_the_rest() -> None:
    events = Events()
    server, target = await started(events)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb2_grpc.EchoStub(channel)
        call = asyncio.ensure_future(stub.Unary(pb2.EchoRequest(delay_ms=30_000)))
        await asyncio.sleep(0.2)
        began = time.monotonic()
        await server.stop(0.3)
        assert time.monotonic() - began < 3
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await asyncio.wait_for(call, 5)
        assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
        assert events.cancelled.is_set()


async def test_stop_none_cancels_at_once_and_termination_is_observable() -> None:
    server, target = await started()
    assert await server.wait_for_termination(0.05) is True  # still running: timed out
    waiter = asyncio.ensure_future(server.wait_for_termination())
    async with grpc.aio.insecure_channel(target) as channel:
        call = asyncio.ensure_future(
            pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(delay_ms=30_000))
        )
        await asyncio.sleep(0.2)
        began = time.monotonic()
        await server.stop(None)
        assert time.monotonic() - began < 2
        assert await asyncio.wait_for(waiter, 2) is False
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await asyncio.wait_for(call, 5)
        assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
