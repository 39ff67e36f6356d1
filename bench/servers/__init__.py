"""Server implementations, by name: each a factory ``(gen_dir) -> EchoServer`` as
``module:function``, imported only when chosen (so a missing implementation breaks only its rows).

Every server runs the same echo service (bench/echo.proto) in its own process, started by
``python -m bench.server --impl NAME`` (bench/server.py).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol


class EchoServer(Protocol):
    async def start(self, host: str, tls: Path | None = None) -> int:
        """Listen on ``host`` port 0 and start serving, over TLS with the certificates in ``tls``
        (bench/tls.py) if given; return the port."""

    async def serve_until_stopped(self) -> None:
        """Return once ``stop()`` has taken effect."""

    def stop(self) -> None:
        """Ask the server to stop (called from a signal handler in the loop)."""


SERVERS: dict[str, str] = {
    "grpcio": "bench.servers.grpc_aio:grpcio",
    "grpclib": "bench.servers.grpclib_server:grpclib",
    # asgi_grpc.aio.server() mirrors grpc.aio.server(): same code, other module.
    "asgi_grpc": "bench.servers.grpc_aio:asgi_grpc",
    # The same, from the checkout ASGI_GRPC_BASELINE names (bench/baseline.py): before/after runs.
    "asgi_grpc_base": "bench.servers.grpc_aio:asgi_grpc_base",
    # grpc's synchronous server API (grpc.server(thread_pool)): grpcio's, and asgi_grpc's.
    "grpcio_sync": "bench.servers.grpc_sync:grpcio",
    "asgi_grpc_sync": "bench.servers.grpc_sync:asgi_grpc",
    "asgi_grpc_sync_base": "bench.servers.grpc_sync:asgi_grpc_base",
    # The same code on uvloop (bench/uvloop_pairs.py); the names above run the standard loop.
    "asgi_grpc_uvloop": "bench.servers.grpc_aio:asgi_grpc",
    "asgi_grpc_sync_uvloop": "bench.servers.grpc_sync:asgi_grpc",
    # GrpcApp on the other ASGI servers (asgi_grpc above is GrpcApp on Hypercorn).
    "asgi_grpc_uvicorn": "bench.servers.asgi_servers:uvicorn",
    "asgi_grpc_pyvoy": "bench.servers.asgi_servers:pyvoy",
    # Testing the benchmark: a peer that never answers.
    "silent": "bench.servers.silent:silent",
}


def create(impl: str, gen_dir: Path) -> EchoServer:
    module, _, factory = SERVERS[impl].partition(":")
    server: EchoServer = getattr(importlib.import_module(module), factory)(gen_dir)
    return server
