"""The echo service on any implementation of the ``grpc.aio`` server API: grpcio, and asgi_grpc
(whose ``aio.server()`` is a drop-in replacement). Written exactly as a grpc.aio user writes it:
a servicer subclassing the generated base class, registered with the generated
``add_EchoServicer_to_server``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.proto import load, stubs_for
from bench.tls import read as read_tls


def make_servicer(pb2: Any, pb2_grpc: Any) -> Any:
    class EchoServicer(pb2_grpc.EchoServicer):  # type: ignore[misc]
        async def Unary(self, request: Any, context: Any) -> Any:
            return pb2.EchoResponse(payload=request.payload)

        async def ServerStream(self, request: Any, context: Any) -> AsyncIterator[Any]:
            payload = b"x" * request.response_size
            for index in range(request.count):
                yield pb2.EchoResponse(payload=payload, index=index)

        async def ClientStream(self, request_iterator: Any, context: Any) -> Any:
            count = 0
            async for _ in request_iterator:
                count += 1
            return pb2.EchoResponse(index=count)

        async def Bidi(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
            async for request in request_iterator:
                yield pb2.EchoResponse(payload=request.payload)

    return EchoServicer()


class GrpcAioServer:
    def __init__(self, grpc: ModuleType, aio: ModuleType, gen_dir: Path) -> None:
        pb2, pb2_grpc = load(gen_dir, "echo_pb2", stubs_for(grpc))
        self._grpc = grpc
        self._server = aio.server()
        pb2_grpc.add_EchoServicer_to_server(make_servicer(pb2, pb2_grpc), self._server)
        self._stopping: asyncio.Task[None] | None = None

    async def start(self, host: str, tls: Path | None = None) -> int:
        if tls is None:
            port: int = self._server.add_insecure_port(f"{host}:0")
        else:
            _, chain, key = read_tls(tls)
            credentials = self._grpc.ssl_server_credentials([(key, chain)])
            port = self._server.add_secure_port(f"{host}:0", credentials)
        await self._server.start()
        return port

    async def serve_until_stopped(self) -> None:
        await self._server.wait_for_termination()
        if self._stopping is not None:
            await self._stopping

    def stop(self) -> None:
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._server.stop(grace=0.5))


def grpcio(gen_dir: Path) -> GrpcAioServer:
    import grpc.aio

    return GrpcAioServer(grpc, grpc.aio, gen_dir)


def asgi_grpc(gen_dir: Path) -> GrpcAioServer:
    import asgi_grpc.aio

    return GrpcAioServer(asgi_grpc, asgi_grpc.aio, gen_dir)


def asgi_grpc_base(gen_dir: Path) -> GrpcAioServer:
    from bench import baseline

    baseline.use()
    return asgi_grpc(gen_dir)
