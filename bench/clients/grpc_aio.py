"""Client driver for any implementation of the ``grpc.aio`` API: grpcio itself, and asgi_grpc
(``asgi_grpc.aio`` mirrors it name for name, so the same driver and the same generated
``echo_pb2_grpc`` stub drive both)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.clients.base import PingPong, check_size
from bench.proto import load, stubs_for
from bench.tls import read as read_tls


class _AioPingPong:
    def __init__(self, call: Any, request_type: Any) -> None:
        self._call = call
        self._request = request_type

    async def round_trip(self, payload: bytes) -> None:
        await self._call.write(self._request(payload=payload))
        response = await self._call.read()
        # grpc.aio.EOF is a sentinel object; a missing response is as wrong as a short one.
        check_size("bidi response", len(getattr(response, "payload", b"")), len(payload))


class GrpcAioDriver:
    def __init__(
        self, grpc: ModuleType, aio: ModuleType, target: str, gen_dir: Path, tls: Path | None
    ) -> None:
        self._aio = aio
        self._pb2, pb2_grpc = load(gen_dir, "echo_pb2", stubs_for(grpc))
        if tls is None:
            self._channel = aio.insecure_channel(target)
        else:
            credentials = grpc.ssl_channel_credentials(read_tls(tls)[0])
            self._channel = aio.secure_channel(target, credentials)
        self._stub = pb2_grpc.EchoStub(self._channel)

    async def unary(self, payload: bytes) -> None:
        response = await self._stub.Unary(self._pb2.EchoRequest(payload=payload))
        check_size("unary response", len(response.payload), len(payload))

    async def server_stream(self, count: int, size: int) -> int:
        request = self._pb2.EchoRequest(count=count, response_size=size)
        received = 0
        async for response in self._stub.ServerStream(request):
            check_size("stream message", len(response.payload), size)
            received += 1
        check_size("stream", received, count)
        return received

    async def client_stream(self, count: int, payload: bytes) -> int:
        request = self._pb2.EchoRequest(payload=payload)
        response = await self._stub.ClientStream(itertools.repeat(request, count))
        counted: int = response.index
        check_size("client stream", counted, count)
        return counted

    @asynccontextmanager
    async def bidi(self) -> AsyncIterator[PingPong]:
        call = self._stub.Bidi()
        yield _AioPingPong(call, self._pb2.EchoRequest)
        await call.done_writing()
        # Drain to the status (read raises AioRpcError if the call did not end OK).
        if await call.read() is not self._aio.EOF:
            raise RuntimeError("bidi call sent a response nobody asked for")
        code = await call.code()
        if code.name != "OK":
            raise RuntimeError(f"bidi call ended with {code}: {await call.details()}")

    async def close(self) -> None:
        await self._channel.close()


def grpcio(target: str, gen_dir: Path, tls: Path | None = None) -> GrpcAioDriver:
    import grpc.aio

    return GrpcAioDriver(grpc, grpc.aio, target, gen_dir, tls)


def asgi_grpc(target: str, gen_dir: Path, tls: Path | None = None) -> GrpcAioDriver:
    import asgi_grpc.aio

    return GrpcAioDriver(asgi_grpc, asgi_grpc.aio, target, gen_dir, tls)


def asgi_grpc_base(target: str, gen_dir: Path, tls: Path | None = None) -> GrpcAioDriver:
    from bench import baseline

    baseline.use()
    return asgi_grpc(target, gen_dir, tls)
