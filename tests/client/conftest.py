"""Servers for the client tests: grpcio's ``grpc.aio.server()`` and ``asgi_grpc.aio.server()``
with the same servicer, over h2c, TLS, mutual TLS and a unix socket; channels to them are
``asgi_grpc.aio`` channels, closed after each test."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

import asgi_grpc
from asgi_grpc import _credentials
from tests.conftest import TLS

from .servicer import ClientEcho, pb2_grpc

IMPLS = ["grpcio", "asgi_grpc"]
TRANSPORTS = ["h2c", "tls", "mtls", "unix"]


def api(name: str) -> Any:
    """A credentials function or class of ``asgi_grpc`` (as ``grpc.<name>``).

    test_api.py checks that they are public; the other tests still run if they are not yet."""
    return getattr(asgi_grpc, name, None) or getattr(_credentials, name)


def server_module(impl: str) -> Any:
    return grpc if impl == "grpcio" else asgi_grpc


def aio_server(impl: str, options: list[tuple[str, Any]] | None = None) -> Any:
    if impl == "grpcio":
        return grpc.aio.server(options=options)
    return asgi_grpc.aio.server(options=options)


@dataclass
class Peer:
    """A running server and the asgi_grpc channels opened to it."""

    impl: str
    transport: str
    target: str
    server: Any
    servicer: ClientEcho
    port: int | None
    tls: TLS
    mutual: bool = False
    channels: list[Any] = field(default_factory=list)

    @property
    def secure(self) -> bool:
        return self.transport in ("tls", "mtls")

    def credentials(self, *call_credentials: Any) -> Any:
        """asgi_grpc channel credentials for this server (None for h2c and unix)."""
        if not self.secure:
            return None
        credentials = api("ssl_channel_credentials")(
            root_certificates=self.tls.ca_pem,
            private_key=self.tls.client_key if self.mutual else None,
            certificate_chain=self.tls.client_chain if self.mutual else None,
        )
        if call_credentials:
            credentials = api("composite_channel_credentials")(credentials, *call_credentials)
        return credentials

    def channel(
        self,
        target: str | None = None,
        options: list[tuple[str, Any]] | None = None,
        compression: Any = None,
        credentials: Any = None,
    ) -> Any:
        target = target or self.target
        credentials = credentials or self.credentials()
        if credentials is None:
            channel = asgi_grpc.aio.insecure_channel(target, options, compression)
        else:
            channel = asgi_grpc.aio.secure_channel(target, credentials, options, compression)
        self.channels.append(channel)
        return channel

    def stub(self, **kwargs: Any) -> Any:
        return pb2_grpc.EchoStub(self.channel(**kwargs))


StartPeer = Callable[..., Any]


@pytest.fixture
async def start_peer(tls: TLS) -> AsyncIterator[StartPeer]:
    """``await start_peer(impl, transport, options=..., address=...)``: a running Peer,
    stopped (with its channels closed) after the test."""
    peers: list[Peer] = []
    tmp = Path(tempfile.mkdtemp(prefix="agc_"))

    async def start(
        impl: str,
        transport: str = "h2c",
        options: list[tuple[str, Any]] | None = None,
        address: str = "127.0.0.1:0",
    ) -> Peer:
        servicer = ClientEcho()
        server = aio_server(impl, options)
        pb2_grpc.add_EchoServicer_to_server(servicer, server)
        module = server_module(impl)
        port: int | None = None
        mutual = transport == "mtls"
        if transport == "unix":
            path = tmp / f"s{len(peers)}.sock"
            server.add_insecure_port(f"unix:{path}")
            target = f"unix:{path}"
        elif transport == "h2c":
            port = server.add_insecure_port(address)
            target = f"{address.rsplit(':', 1)[0]}:{port}"
        else:
            credentials = module.ssl_server_credentials(
                [(tls.server_key, tls.server_chain)],
                root_certificates=tls.ca_pem if mutual else None,
                require_client_auth=mutual,
            )
            port = server.add_secure_port(address, credentials)
            target = f"localhost:{port}"
        await server.start()
        peer = Peer(impl, transport, target, server, servicer, port, tls, mutual)
        peers.append(peer)
        return peer

    yield start
    # Bounded: a close or stop that hangs is a bug to see, not a suite to wait for.
    for peer in peers:
        for channel in peer.channels:
            try:
                await asyncio.wait_for(channel.close(), 10)
            except asyncio.TimeoutError:  # noqa: PERF203 - teardown, not a hot loop
                pytest.fail(f"channel.close() hung (channel to {peer.impl} {peer.transport})")
        try:
            await asyncio.wait_for(peer.server.stop(None), 10)
        except asyncio.TimeoutError:
            pytest.fail(f"{peer.impl} server.stop(None) hung")


@pytest.fixture(params=IMPLS)
async def peer(request: pytest.FixtureRequest, start_peer: StartPeer) -> Peer:
    """Each server implementation over h2c."""
    peer: Peer = await start_peer(request.param, "h2c")
    return peer


@pytest.fixture(params=[(impl, t) for impl in IMPLS for t in TRANSPORTS], ids=lambda p: "-".join(p))
async def any_peer(request: pytest.FixtureRequest, start_peer: StartPeer) -> Peer:
    """Each server implementation over each transport."""
    peer: Peer = await start_peer(*request.param)
    return peer
