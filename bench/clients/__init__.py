"""Client drivers, by implementation name.

Each entry names a factory ``(target, gen_dir) -> ClientDriver`` as ``module:function``; modules
are imported only when chosen, so a missing or half-written implementation breaks only its rows.
To add a client: write a module with a class implementing bench.clients.base.ClientDriver and
register it here. (A driver for a synchronous API can run the same loops by wrapping blocking calls
in ``asyncio.to_thread``, or get loops of its own in bench/workloads.py.)
"""

from __future__ import annotations

import importlib
from pathlib import Path

from bench.clients.base import ClientDriver

CLIENTS: dict[str, str] = {
    "grpcio": "bench.clients.grpc_aio:grpcio",
    "grpclib": "bench.clients.grpclib_client:grpclib",
    # asgi_grpc.aio mirrors grpc.aio, so the grpc.aio driver serves it unchanged.
    "asgi_grpc": "bench.clients.grpc_aio:asgi_grpc",
    # The same, from the checkout ASGI_GRPC_BASELINE names (bench/baseline.py): before/after runs.
    "asgi_grpc_base": "bench.clients.grpc_aio:asgi_grpc_base",
    # grpc's synchronous API: grpcio's, and asgi_grpc's (same driver, other module).
    "grpcio_sync": "bench.clients.grpc_sync:grpcio",
    "asgi_grpc_sync": "bench.clients.grpc_sync:asgi_grpc",
    "asgi_grpc_sync_base": "bench.clients.grpc_sync:asgi_grpc_base",
    # The same code on uvloop (bench/uvloop_pairs.py); the names above run the standard loop.
    "asgi_grpc_uvloop": "bench.clients.grpc_aio:asgi_grpc",
    "asgi_grpc_sync_uvloop": "bench.clients.grpc_sync:asgi_grpc",
}


def create(impl: str, target: str, gen_dir: Path, tls: Path | None = None) -> ClientDriver:
    """Build the driver for ``impl`` (over TLS, trusting bench/tls.py's CA in ``tls``, if given);
    call it inside the running event loop."""
    module, _, factory = CLIENTS[impl].partition(":")
    make = getattr(importlib.import_module(module), factory)
    driver: ClientDriver = make(target, gen_dir, tls)
    return driver
