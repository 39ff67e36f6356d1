"""Servers for the CLI tests: grpcio's and asgi_grpc's aio servers with the echo service, on a
background event loop (``main(argv)`` runs its own loop with ``asyncio.run``, so the tests that call
it are plain functions and the servers live on another thread).

Each server has reflection (asgi_grpc: v1 and v1alpha; grpcio-reflection: v1alpha only) and
health (``asgi_grpc.test.Echo`` SERVING, ``asgi_grpc.test.Sick`` NOT_SERVING), and records the
paths of the calls it gets (an interceptor), so tests can see which reflection version was used.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from grpc_health.v1 import health as grpcio_health
from grpc_health.v1 import health_pb2 as grpcio_health_pb2
from grpc_health.v1 import health_pb2_grpc as grpcio_health_pb2_grpc
from grpc_reflection.v1alpha import reflection as grpcio_reflection

import asgi_grpc
from asgi_grpc import health, reflection
from asgi_grpc.cli import main
from tests.cli.echo_app import KITCHEN, SERVICE, Echo, Kitchen, pb2_grpc, sink_pb2_grpc

T = TypeVar("T")
IMPLS = ["asgi_grpc", "grpcio"]
SICK = "asgi_grpc.test.Sick"


class BackgroundLoop:
    """An event loop on a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture(autouse=True)
def _collect_garbage_here() -> Iterator[None]:
    """Collect what a test left behind in this (the main) thread.

    asgi_grpc's aio client sometimes leaves a TLS connection's socket to the garbage collector
    (reported). Collected on the server thread instead, its ResourceWarning goes through pytest's
    unraisable hook there, whose traceback formatting calls ast.parse concurrently with the main
    thread's: CPython 3.11's AST state is not thread-safe, and the session later dies with
    "SystemError: AST constructor recursion depth mismatch"."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def background() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


class Recorder(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Records the method path of every call (grpcio's and asgi_grpc's aio servers)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], details: Any
    ) -> Any:
        self.paths.append(details.method)
        return await continuation(details)


@dataclass
class Server:
    impl: str
    port: int
    recorder: Recorder
    stop: Callable[[], Awaitable[None]]
    # Set a service's health status (a grpc.health.v1 ServingStatus number), on the server loop.
    set_status: Callable[[str, int], Awaitable[None]]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class TLSFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


async def start_server(
    impl: str,
    *,
    with_reflection: bool = True,
    with_health: bool = True,
    tls: Any = None,
    require_client_auth: bool = False,
) -> Server:
    """An aio server of ``impl`` on 127.0.0.1:0 (h2c, or TLS from the session ``tls`` fixture)."""
    recorder = Recorder()
    names = [SERVICE, KITCHEN]
    if impl == "grpcio":
        grpcio_server = grpc.aio.server(interceptors=[recorder])
        pb2_grpc.add_EchoServicer_to_server(Echo(), grpcio_server)
        sink_pb2_grpc.add_KitchenServicer_to_server(Kitchen(), grpcio_server)
        if with_health:
            grpcio_servicer = grpcio_health.aio.HealthServicer()
            grpcio_health_pb2_grpc.add_HealthServicer_to_server(grpcio_servicer, grpcio_server)
            await grpcio_servicer.set(SERVICE, grpcio_health_pb2.HealthCheckResponse.SERVING)
            await grpcio_servicer.set(SICK, grpcio_health_pb2.HealthCheckResponse.NOT_SERVING)
            names.append(grpcio_health.SERVICE_NAME)
        if with_reflection:
            grpcio_reflection.enable_server_reflection(
                [*names, grpcio_reflection.SERVICE_NAME], grpcio_server
            )
        if tls is None:
            port = grpcio_server.add_insecure_port("127.0.0.1:0")
        else:
            credentials = grpc.ssl_server_credentials(
                [(tls.server_key, tls.server_chain)],
                root_certificates=tls.ca_pem if require_client_auth else None,
                require_client_auth=require_client_auth,
            )
            port = grpcio_server.add_secure_port("127.0.0.1:0", credentials)
        await grpcio_server.start()

        async def stop_grpcio() -> None:
            await grpcio_server.stop(None)

        async def set_grpcio_status(service: str, status: int) -> None:
            await grpcio_servicer.set(service, status)

        return Server(impl, port, recorder, stop_grpcio, set_grpcio_status)

    server = asgi_grpc.aio.server(interceptors=[recorder])
    pb2_grpc.add_EchoServicer_to_server(Echo(), server)
    sink_pb2_grpc.add_KitchenServicer_to_server(Kitchen(), server)
    if with_health:
        servicer = health.HealthServicer()
        health.add_HealthServicer_to_server(servicer, server)
        servicer.set(SERVICE, health.SERVING)
        servicer.set(SICK, health.NOT_SERVING)
        names.append(health.SERVICE_NAME)
    if with_reflection:
        reflection.enable_server_reflection([*names, reflection.SERVICE_NAME], server)
    if tls is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        server_credentials = asgi_grpc.ssl_server_credentials(
            [(tls.server_key, tls.server_chain)],
            root_certificates=tls.ca_pem if require_client_auth else None,
            require_client_auth=require_client_auth,
        )
        port = server.add_secure_port("127.0.0.1:0", server_credentials)
    await server.start()

    async def stop_asgi_grpc() -> None:
        await server.stop(None)

    async def set_status(service: str, status: int) -> None:
        servicer.set(service, status)

    return Server(impl, port, recorder, stop_asgi_grpc, set_status)


@contextlib.contextmanager
def running(background: BackgroundLoop, impl: str, **options: Any) -> Iterator[Server]:
    server = background.run(start_server(impl, **options))
    try:
        yield server
    finally:
        background.run(server.stop())


@pytest.fixture(scope="module", params=IMPLS)
def server(request: pytest.FixtureRequest, background: BackgroundLoop) -> Iterator[Server]:
    """An h2c server with reflection and health, of each implementation."""
    with running(background, request.param) as started:
        yield started


@pytest.fixture(scope="session")
def tls_files(tls: Any, tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    directory = tmp_path_factory.mktemp("cli_tls")
    files = TLSFiles(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    files.ca.write_bytes(tls.ca_pem)
    files.server_cert.write_bytes(tls.server_chain)
    files.server_key.write_bytes(tls.server_key)
    files.client_cert.write_bytes(tls.client_chain)
    files.client_key.write_bytes(tls.client_key)
    return files


@dataclass
class Result:
    status: int
    out: str
    err: str

    def lines(self) -> list[str]:
        return self.out.splitlines()


def cli(*argv: str, stdin: str = "") -> Result:
    """``asgi-grpc *argv`` in this process, with its own stdin/stdout/stderr."""
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdin=io.StringIO(stdin), stdout=out, stderr=err)
    return Result(status, out.getvalue(), err.getvalue())
