"""grpc.aio.Server: the gRPC ASGI app served in-process by Hypercorn on one or more ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from functools import partial
from typing import Any, cast

from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.utils import wrap_app

from .._core import Compression
from .._credentials import INSECURE_PORT, PortSecurity, ServerCredentials
from .._handlers import GenericHandlerLike
from . import _hypercorn
from ._app import GrpcApp
from ._config import ChannelArgument, ServerConfig


class Server:
    """grpc.aio.Server, served by Hypercorn (HTTP/2, cleartext and TLS, TCP and unix sockets)."""

    def __init__(
        self,
        thread_pool: Executor | None = None,
        generic_handlers: Iterable[GenericHandlerLike] | None = None,
        interceptors: Sequence[Any] | None = None,
        options: Sequence[ChannelArgument] | None = None,
        maximum_concurrent_rpcs: int | None = None,
        compression: Compression | None = None,
    ) -> None:
        config = ServerConfig.from_options(
            options,
            maximum_concurrent_rpcs=maximum_concurrent_rpcs,
            compression=compression,
            thread_pool=thread_pool,
        )
        self.app = GrpcApp(generic_handlers, interceptors=interceptors, config=config)
        self._ports: list[tuple[socket.socket, PortSecurity]] = []
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()
        self._context: Any = None
        self._started = False
        self._stopping: asyncio.Task[None] | None = None
        self._terminated: asyncio.Event | None = None

    # ------------------------------------------------------------------ grpc.aio.Server

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[GenericHandlerLike]) -> None:
        self.app.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Any) -> None:
        self.app.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        """Bind ``address`` (``host:port``, ``[v6]:port``, ``unix:path``); returns the port."""
        return self._add_port(address, INSECURE_PORT)

    def add_secure_port(self, address: str, server_credentials: ServerCredentials) -> int:
        """Bind ``address`` secured by the given credentials (TLS with ALPN h2, or local or
        insecure credentials); returns the port."""
        return self._add_port(address, server_credentials._port_security())

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("the server has already been started")
        if not self._ports:
            raise RuntimeError("add a port (add_insecure_port / add_secure_port) before start()")
        self._started = True
        config = _hypercorn.grpc_config()
        app = wrap_app(cast(Any, self.app), config.wsgi_max_body_size, "asgi")
        self._context = context = WorkerContext(None)
        self._terminated = asyncio.Event()
        loop = asyncio.get_running_loop()

        async def on_connection(
            security: PortSecurity, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._connections.add(task)
            try:
                # Per-connection state (the auth context) reaches every request's
                # scope["state"] (a copy); None: the port's credentials refuse this peer.
                state = security.admit(writer.get_extra_info)
                if state is None:
                    writer.close()
                    return
                await TCPServer(app, loop, config, context, state, reader, writer)
            except asyncio.CancelledError:
                # stop() cancels connections past the grace period; end quietly (asyncio's
                # start_server would otherwise log the cancellation as an error).
                pass
            finally:
                self._connections.discard(task)

        for sock, security in self._ports:
            ssl_context = security.ssl_context
            self._servers.append(
                await asyncio.start_server(
                    partial(on_connection, security),
                    sock=sock,
                    ssl=ssl_context,
                    ssl_handshake_timeout=config.ssl_handshake_timeout if ssl_context else None,
                    backlog=config.backlog,
                )
            )

    async def stop(self, grace: float | None) -> None:
        """Refuse new RPCs, give in-flight ones ``grace`` seconds, then cancel what is left.

        Concurrent calls share one shutdown: a later call with a shorter grace shortens it.
        """
        if not self._started:
            self._close_ports()
            return
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._shutdown(grace))
        elif grace is None or grace < (self._grace or 0):
            self._grace = grace
            self._grace_changed.set()
        await asyncio.shield(self._stopping)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Wait until the server has stopped; True if ``timeout`` ran out first (as in grpcio)."""
        if self._terminated is None:
            self._terminated = asyncio.Event()
        try:
            await asyncio.wait_for(self._terminated.wait(), timeout)
        except asyncio.TimeoutError:
            return True
        return False

    # ------------------------------------------------------------------ internals

    _grace: float | None = None
    _grace_changed: asyncio.Event

    async def _shutdown(self, grace: float | None) -> None:
        self._grace = grace
        self._grace_changed = asyncio.Event()
        # Stop accepting connections; existing ones send GOAWAY and refuse new streams.
        await self._context.terminated.set()
        for server in self._servers:
            server.close()
        loop = asyncio.get_running_loop()
        start = loop.time()
        while self._connections:
            remaining = None if self._grace is None else self._grace - (loop.time() - start)
            if remaining is not None and remaining <= 0:
                break
            if self._grace is None:
                break
            waiter = asyncio.ensure_future(self._grace_changed.wait())
            done, _ = await asyncio.wait(
                [*self._connections, waiter], timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            self._grace_changed.clear()
            if not self._connections or (done == set() and remaining is not None):
                break
        await self.app.cancel_all()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._close_ports()
        assert self._terminated is not None
        self._terminated.set()

    def _add_port(self, address: str, security: PortSecurity) -> int:
        if self._started:
            raise RuntimeError("ports must be added before the server starts")
        sock, port = _bind(address)
        self._ports.append((sock, security))
        return port

    def _close_ports(self) -> None:
        for sock, _ in self._ports:
            if sock.family == getattr(socket, "AF_UNIX", None):
                with contextlib.suppress(OSError):
                    path = sock.getsockname()
                    if isinstance(path, str) and path:
                        os.unlink(path)
            sock.close()
        self._ports.clear()


def _bind(address: str) -> tuple[socket.socket, int]:
    """A listening socket for a grpcio-style address."""
    if address.startswith("unix:"):
        path = address[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]
        with contextlib.suppress(FileNotFoundError):
            if os.path.exists(path) and not os.path.isfile(path):
                os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(1024)
        sock.setblocking(False)
        return sock, 1
    host, _, port_text = address.rpartition(":")
    if not host or not port_text.isdigit():
        raise ValueError(f"invalid address {address!r}: expected host:port or unix:path")
    host = host.strip("[]")
    if host in ("", "*"):
        host = "::"
    infos = socket.getaddrinfo(
        host, int(port_text), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    family, kind, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and host == "::":
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(sockaddr)
    sock.listen(1024)
    sock.setblocking(False)
    return sock, sock.getsockname()[1]


def server(
    migration_thread_pool: Executor | None = None,
    handlers: Sequence[GenericHandlerLike] | None = None,
    interceptors: Sequence[Any] | None = None,
    options: Sequence[ChannelArgument] | None = None,
    maximum_concurrent_rpcs: int | None = None,
    compression: Compression | None = None,
) -> Server:
    """grpc.aio.server: a Server whose sync handlers run on ``migration_thread_pool``."""
    return Server(
        migration_thread_pool,
        handlers,
        interceptors,
        options,
        maximum_concurrent_rpcs,
        compression,
    )
