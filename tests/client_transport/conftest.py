"""A grpcio echo server per test, over h2c, TLS and a unix socket, and pools that reach it."""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from asgi_grpc.client._address import TCPAddress, UnixAddress
from asgi_grpc.client._connection import ConnectionSettings
from asgi_grpc.client._pool import ConnectionPool
from tests.conftest import TLS

from .support import EchoState, start_echo_server

TRANSPORTS = ["h2c", "tls", "unix"]


def client_ssl_context(tls: TLS) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=tls.ca_pem.decode())
    context.set_alpn_protocols(["h2"])
    return context


@dataclass
class Peer:
    """A running grpcio server and a way to make pools to it (closed after the test)."""

    transport: str
    server: Any
    state: EchoState
    make_pool: Callable[..., ConnectionPool]
    pools: list[ConnectionPool] = field(default_factory=list)

    def pool(self, **kwargs: Any) -> ConnectionPool:
        settings = kwargs.pop("settings", None)
        pool = self.make_pool(settings=settings or ConnectionSettings(), **kwargs)
        self.pools.append(pool)
        return pool


async def start_peer(
    transport: str, tls: TLS, options: list[tuple[str, Any]] | None = None
) -> Peer:
    options = options or []
    if transport == "h2c":
        server, port, state = await start_echo_server("127.0.0.1:0", options=options)

        def make(**kwargs: Any) -> ConnectionPool:
            return ConnectionPool(
                [TCPAddress("127.0.0.1", port)], authority=f"127.0.0.1:{port}", **kwargs
            )

    elif transport == "tls":
        credentials = grpc.ssl_server_credentials([(tls.server_key, tls.server_chain)])
        server, port, state = await start_echo_server(
            "127.0.0.1:0", credentials=credentials, options=options
        )

        def make(**kwargs: Any) -> ConnectionPool:
            return ConnectionPool(
                [TCPAddress("127.0.0.1", port)],
                authority=f"localhost:{port}",
                ssl_context=client_ssl_context(tls),
                server_hostname="localhost",
                **kwargs,
            )

    elif transport == "unix":
        path = Path(tempfile.mkdtemp(prefix="agt_")) / "echo.sock"
        server, _, state = await start_echo_server(f"unix:{path}", options=options)

        def make(**kwargs: Any) -> ConnectionPool:
            return ConnectionPool([UnixAddress(str(path))], authority="localhost", **kwargs)

    else:  # pragma: no cover
        raise ValueError(transport)
    return Peer(transport, server, state, make)


async def stop_peer(peer: Peer) -> None:
    for pool in peer.pools:
        await pool.aclose()
    await peer.server.stop(None)


@pytest.fixture(params=TRANSPORTS)
async def peer(request: pytest.FixtureRequest, tls: TLS) -> AsyncIterator[Peer]:
    """The echo server over each transport."""
    peer = await start_peer(request.param, tls)
    yield peer
    await stop_peer(peer)


@pytest.fixture
async def h2c_peer(tls: TLS) -> AsyncIterator[Peer]:
    peer = await start_peer("h2c", tls)
    yield peer
    await stop_peer(peer)
