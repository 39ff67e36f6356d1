"""Start asgi_grpc servers on real sockets and open grpcio channels to them."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

import asgi_grpc
from tests.conftest import TLS
from tests.server.servicer import AsyncEcho, Events, pb2_grpc

TRANSPORTS = ["h2c", "tls", "mtls", "unix"]


@dataclass
class Endpoint:
    """Where a server listens and how a grpcio client reaches it."""

    target: str
    transport: str
    credentials: grpc.ChannelCredentials | None = None

    def aio_channel(self, options: list[tuple[str, Any]] | None = None) -> grpc.aio.Channel:
        if self.credentials is None:
            return grpc.aio.insecure_channel(self.target, options=options)
        return grpc.aio.secure_channel(self.target, self.credentials, options=options)

    def sync_channel(self, options: list[tuple[str, Any]] | None = None) -> grpc.Channel:
        if self.credentials is None:
            return grpc.insecure_channel(self.target, options=options)
        return grpc.secure_channel(self.target, self.credentials, options=options)


def add_port(server: Any, transport: str, tls: TLS, tmp: Path) -> Endpoint:
    if transport == "h2c":
        port = server.add_insecure_port("127.0.0.1:0")
        return Endpoint(f"127.0.0.1:{port}", transport)
    if transport == "unix":
        path = tmp / "grpc.sock"
        server.add_insecure_port(f"unix:{path}")
        return Endpoint(f"unix:{path}", transport)
    mutual = transport == "mtls"
    credentials = asgi_grpc.ssl_server_credentials(
        [(tls.server_key, tls.server_chain)],
        root_certificates=tls.ca_pem if mutual else None,
        require_client_auth=mutual,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    channel_credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca_pem,
        private_key=tls.client_key if mutual else None,
        certificate_chain=tls.client_chain if mutual else None,
    )
    return Endpoint(f"localhost:{port}", transport, channel_credentials)


StartServer = Callable[..., Any]


@pytest.fixture
async def start_server(tls: TLS) -> AsyncIterator[StartServer]:
    """``async with start_server(servicer, transport="h2c", **server_kwargs) as endpoint``."""
    servers: list[Any] = []
    tmp = Path(tempfile.mkdtemp(prefix="asgi_grpc_sock_"))

    @asynccontextmanager
    async def start(
        servicer: Any = None, transport: str = "h2c", **kwargs: Any
    ) -> AsyncIterator[Endpoint]:
        server = asgi_grpc.aio.server(**kwargs)
        pb2_grpc.add_EchoServicer_to_server(servicer or AsyncEcho(Events()), server)
        endpoint = add_port(server, transport, tls, tmp)
        await server.start()
        servers.append(server)
        try:
            yield endpoint
        finally:
            await server.stop(None)

    yield start
    for server in servers:
        await server.stop(None)
