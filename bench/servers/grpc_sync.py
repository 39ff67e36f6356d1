"""The echo service on any implementation of grpc's synchronous server API: grpcio's
``grpc.server(thread_pool)``, and asgi_grpc's (``import asgi_grpc as grpc``). Written as a grpcio
sync user writes it: plain methods and generators on a servicer subclassing the generated base
class, registered with the generated ``add_EchoServicer_to_server``, run on a thread pool."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.proto import load, stubs_for
from bench.tls import read as read_tls

#: Handler threads. Unary handlers return at once; a streaming call holds a thread for its life.
WORKERS = 16


def make_servicer(pb2: Any, pb2_grpc: Any) -> Any:
    class EchoServicer(pb2_grpc.EchoServicer):  # type: ignore[misc]
        def Unary(self, request: Any, context: Any) -> Any:
            return pb2.EchoResponse(payload=request.payload)

        def ServerStream(self, request: Any, context: Any) -> Iterator[Any]:
            payload = b"x" * request.response_size
            for index in range(request.count):
                yield pb2.EchoResponse(payload=payload, index=index)

        def ClientStream(self, request_iterator: Any, context: Any) -> Any:
            count = sum(1 for _ in request_iterator)
            return pb2.EchoResponse(index=count)

        def Bidi(self, request_iterator: Any, context: Any) -> Iterator[Any]:
            for request in request_iterator:
                yield pb2.EchoResponse(payload=request.payload)

    return EchoServicer()


class GrpcSyncServer:
    def __init__(self, grpc: ModuleType, gen_dir: Path) -> None:
        pb2, pb2_grpc = load(gen_dir, "echo_pb2", stubs_for(grpc))
        self._pool = ThreadPoolExecutor(WORKERS)
        self._grpc = grpc
        self._server = grpc.server(self._pool)
        pb2_grpc.add_EchoServicer_to_server(make_servicer(pb2, pb2_grpc), self._server)

    async def start(self, host: str, tls: Path | None = None) -> int:
        if tls is None:
            port: int = self._server.add_insecure_port(f"{host}:0")
        else:
            _, chain, key = read_tls(tls)
            credentials = self._grpc.ssl_server_credentials([(key, chain)])
            port = self._server.add_secure_port(f"{host}:0", credentials)
        self._server.start()
        return port

    async def serve_until_stopped(self) -> None:
        await asyncio.to_thread(self._server.wait_for_termination)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        self._server.stop(grace=0.5)


def grpcio(gen_dir: Path) -> GrpcSyncServer:
    import grpc

    return GrpcSyncServer(grpc, gen_dir)


def asgi_grpc(gen_dir: Path) -> GrpcSyncServer:
    import asgi_grpc

    return GrpcSyncServer(asgi_grpc, gen_dir)


def asgi_grpc_base(gen_dir: Path) -> GrpcSyncServer:
    """asgi_grpc's blocking server from the checkout ASGI_GRPC_BASELINE names (baseline.py)."""
    from bench import baseline

    baseline.use()
    return asgi_grpc(gen_dir)
