"""Client driver for grpclib (its own Channel and generated ``echo_grpc`` stub)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.clients.base import PingPong, check_size
from bench.proto import load
from bench.tls import client_context


class _GrpclibPingPong:
    def __init__(self, stream: Any, request_type: Any) -> None:
        self._stream = stream
        self._request = request_type

    async def round_trip(self, payload: bytes) -> None:
        await self._stream.send_message(self._request(payload=payload))
        response = await self._stream.recv_message()
        check_size("bidi response", len(getattr(response, "payload", b"")), len(payload))


class GrpclibDriver:
    def __init__(self, target: str, gen_dir: Path, tls: Path | None) -> None:
        from grpclib.client import Channel

        self._pb2, echo_grpc = load(gen_dir, "echo_pb2", "echo_grpc")
        host, _, port = target.rpartition(":")
        context = None if tls is None else client_context(tls)
        self._channel = Channel(host.strip("[]"), int(port), ssl=context)
        self._stub = echo_grpc.EchoStub(self._channel)

    async def unary(self, payload: bytes) -> None:
        response = await self._stub.Unary(self._pb2.EchoRequest(payload=payload))
        check_size("unary response", len(response.payload), len(payload))

    async def server_stream(self, count: int, size: int) -> int:
        request = self._pb2.EchoRequest(count=count, response_size=size)
        received = 0
        # open() streams the responses; calling the method would collect them into a list.
        async with self._stub.ServerStream.open() as stream:
            await stream.send_message(request, end=True)
            async for response in stream:
                check_size("stream message", len(response.payload), size)
                received += 1
        check_size("stream", received, count)
        return received

    async def client_stream(self, count: int, payload: bytes) -> int:
        request = self._pb2.EchoRequest(payload=payload)
        async with self._stub.ClientStream.open() as stream:
            for _ in range(count - 1):
                await stream.send_message(request)
            await stream.send_message(request, end=True)
            response = await stream.recv_message()
        counted: int = response.index
        check_size("client stream", counted, count)
        return counted

    @asynccontextmanager
    async def bidi(self) -> AsyncIterator[PingPong]:
        async with self._stub.Bidi.open() as stream:
            yield _GrpclibPingPong(stream, self._pb2.EchoRequest)
            await stream.end()
            if await stream.recv_message() is not None:
                raise RuntimeError("bidi call sent a response nobody asked for")
            # Leaving open() reads the trailers and raises GRPCError unless the status is OK.

    async def close(self) -> None:
        self._channel.close()


def grpclib(target: str, gen_dir: Path, tls: Path | None = None) -> GrpclibDriver:
    return GrpclibDriver(target, gen_dir, tls)
