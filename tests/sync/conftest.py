"""Sync servers (grpcio's ``grpc.server`` and ``asgi_grpc.server``) with the same sync servicer,
over h2c and TLS, and channels to them (asgi_grpc's sync channel or grpcio's), all closed after
each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

import asgi_grpc
from tests.conftest import TLS

from .servicer import Observed, SteeredEcho, pb2_grpc

SERVERS = ["grpcio", "asgi_grpc"]
TRANSPORTS = ["h2c", "tls"]


@dataclass
class Running:
    """A started sync server and the channels opened to it."""

    impl: str
    transport: str
    server: Any
    port: int
    servicer: SteeredEcho
    tls: TLS
    channels: list[Any] = field(default_factory=list)

    @property
    def events(self) -> Observed:
        return self.servicer.events

    @property
    def target(self) -> str:
        host = "localhost" if self.transport == "tls" else "127.0.0.1"
        return f"{host}:{self.port}"

    def channel(self, module: Any = asgi_grpc, **kwargs: Any) -> Any:
        """A sync channel of ``module`` (asgi_grpc or grpc) to this server."""
        if self.transport == "tls":
            credentials = module.ssl_channel_credentials(root_certificates=self.tls.ca_pem)
            channel = module.secure_channel(self.target, credentials, **kwargs)
        else:
            channel = module.insecure_channel(self.target, **kwargs)
        self.channels.append(channel)
        return channel

    def stub(self, module: Any = asgi_grpc, **kwargs: Any) -> Any:
        return pb2_grpc.EchoStub(self.channel(module, **kwargs))


StartServer = Callable[..., Running]


@pytest.fixture
def start_server(tls: TLS) -> Iterator[StartServer]:
    """``start_server(impl, transport="h2c", **server_kwargs)`` -> Running (stopped at the end)."""
    started: list[tuple[Running, futures.ThreadPoolExecutor]] = []

    def start(impl: str, transport: str = "h2c", **kwargs: Any) -> Running:
        module = grpc if impl == "grpcio" else asgi_grpc
        pool = futures.ThreadPoolExecutor(max_workers=16)
        server = module.server(pool, **kwargs)
        servicer = SteeredEcho(Observed())
        pb2_grpc.add_EchoServicer_to_server(servicer, server)
        if transport == "tls":
            credentials = module.ssl_server_credentials([(tls.server_key, tls.server_chain)])
            port = server.add_secure_port("127.0.0.1:0", credentials)
        else:
            port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        running = Running(impl, transport, server, port, servicer, tls)
        started.append((running, pool))
        return running

    yield start
    for running, pool in started:
        for channel in running.channels:
            channel.close()
        running.server.stop(None)
        pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture(params=[(s, t) for s in SERVERS for t in TRANSPORTS], ids=lambda p: "-".join(p))
def peer(request: pytest.FixtureRequest, start_server: StartServer) -> Running:
    """Each server implementation over each transport."""
    impl, transport = request.param
    return start_server(impl, transport)


@pytest.fixture(params=SERVERS)
def h2c_peer(request: pytest.FixtureRequest, start_server: StartServer) -> Running:
    """Each server implementation over h2c (for tests where the transport does not matter)."""
    return start_server(request.param)
