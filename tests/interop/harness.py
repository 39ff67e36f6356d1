"""Running the interop servicer and opening channels to it, for the tests and the CLIs."""

from __future__ import annotations

import contextlib
import importlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tests.conftest import TLS

from ._protos import Protos
from .service import make_servicer
from .wire import WireTap, conformance_problems

MODULES = {"grpcio": "grpc", "asgi_grpc": "asgi_grpc"}


def library(impl: str) -> ModuleType:
    """The top-level module (``grpc`` / ``asgi_grpc``), with its ``aio`` loaded."""
    importlib.import_module(f"{MODULES[impl]}.aio")
    return importlib.import_module(MODULES[impl])


@dataclass
class Endpoint:
    """A running interop server: where a client connects, and the tap in between (h2c)."""

    target: str
    tap: WireTap | None


@contextlib.asynccontextmanager
async def serve(
    protos: Protos, impl: str, *, tls: TLS | None = None, unix: bool = False, port: int = 0
) -> AsyncIterator[Endpoint]:
    """Run the interop servicer on ``impl``'s aio server: over h2c behind a wire tap by default,
    over TLS (no tap) with ``tls``, or on a unix socket (no tap) with ``unix``. Clients connect
    to 127.0.0.1:``port`` (the tap's port on h2c; 0 picks one)."""
    if unix:
        with tempfile.TemporaryDirectory(prefix="interop-") as directory:
            path = f"{directory}/server.sock"
            async with _serve(protos, impl, address=f"unix:{path}") as endpoint:
                endpoint.target = f"unix:{path}"
                yield endpoint
    else:
        address = "127.0.0.1:0" if tls is None else f"127.0.0.1:{port}"
        async with _serve(protos, impl, address=address, tls=tls, tap_port=port) as endpoint:
            yield endpoint


@contextlib.asynccontextmanager
async def _serve(
    protos: Protos, impl: str, *, address: str, tls: TLS | None = None, tap_port: int = 0
) -> AsyncIterator[Endpoint]:
    grpc_module = library(impl)
    tapped = tls is None and not address.startswith("unix:")
    taps: list[WireTap] = []

    def request_compressed(serialized: bytes) -> bool | None:
        return taps[0].request_compressed(serialized) if taps else None

    server = grpc_module.aio.server()
    servicer = make_servicer(protos, grpc_module, request_compressed)
    protos.services.add_TestServiceServicer_to_server(servicer, server)
    if tls is None:
        port = server.add_insecure_port(address)
    else:
        credentials = grpc_module.ssl_server_credentials([(tls.server_key, tls.server_chain)])
        port = server.add_secure_port(address, credentials)
    assert port or not tapped, f"{impl} server could not bind {address}"
    await server.start()
    try:
        if tapped:
            taps.append(await WireTap.start(port, listen_port=tap_port))
            port = taps[0].port
        try:
            yield Endpoint(target=f"127.0.0.1:{port}", tap=taps[0] if taps else None)
        finally:
            for tap in taps:
                await tap.close()
    finally:
        await server.stop(None)


@contextlib.asynccontextmanager
async def open_channel(
    grpc_module: ModuleType, endpoint: Endpoint, *, tls: TLS | None = None
) -> AsyncIterator[Any]:
    if tls is None:
        channel = grpc_module.aio.insecure_channel(endpoint.target)
    else:
        credentials = grpc_module.ssl_channel_credentials(root_certificates=tls.ca_pem)
        # The certificate names localhost and 127.0.0.1; pin the name checked to the DNS one.
        options = (("grpc.ssl_target_name_override", "localhost"),)
        channel = grpc_module.aio.secure_channel(endpoint.target, credentials, options=options)
    async with channel:
        yield channel


async def assert_wire_ok(tap: WireTap) -> None:
    """No malformed traffic, and every call conformant, once the client's connections closed."""
    await tap.wait_idle(5)
    assert tap.errors == [], f"malformed traffic: {tap.errors}"
    problems = conformance_problems(tap.calls)
    assert problems == [], "\n".join(problems)
