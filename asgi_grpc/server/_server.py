"""grpc.aio.Server: the gRPC ASGI app served in-process by Hypercorn on one or more ports."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from functools import partial
from typing import Any, cast

from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.utils import wrap_app

from .._core import Compression
from .._credentials import INSECURE_PORT, PortSecurity, ServerCredentials
from .._errors import UsageError
from .._handlers import GenericHandlerLike
from .._interceptors import AioServerInterceptor
from . import _hypercorn
from ._app import GrpcApp
from ._config import ChannelArgument, ServerConfig
from ._hypercorn_tcp import GrpcTCPServer

logger = logging.getLogger("asgi_grpc.server")


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
        self._check_interceptors(interceptors or ())
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
        # Set by the first stop() of a started server; every later stop() joins it.
        self._stopping: asyncio.Future[None] | None = None
        self._terminated: asyncio.Event | None = None

    # ------------------------------------------------------------------ grpc.aio.Server

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[GenericHandlerLike]) -> None:
        self.app.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Any) -> None:
        if self._started:
            # grpcio logs this and ignores the handlers (generated add_XServicer_to_server also
            # adds a generic handler, which still serves the methods).
            logger.warning("Cannot register method handlers once server has started")
            return
        self.app.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        """Bind ``address`` (``host:port``, ``[v6]:port``, ``unix:path``); returns the port."""
        return self._add_port(address, INSECURE_PORT)

    def add_secure_port(self, address: str, server_credentials: ServerCredentials) -> int:
        """Bind ``address`` secured by the given credentials (TLS with ALPN h2, or local or
        insecure credentials); returns the port."""
        return self._add_port(address, server_credentials._port_security())

    async def start(self) -> None:
        """Start serving on the ports added so far (none is fine, as in grpcio).

        Starting a running server again does nothing; a stopped server cannot be restarted."""
        if self._stopping is not None:
            raise UsageError("Server not in ready state")
        if self._started:
            return
        self._started = True
        config = _hypercorn.grpc_config(**_hypercorn.options_to_settings(self.app.config.options))
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
                await GrpcTCPServer(app, loop, config, context, state, reader, writer)
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
                    limit=_hypercorn.READ_SIZE,
                )
            )

    async def stop(self, grace: float | None) -> None:
        """Refuse new RPCs, give in-flight ones ``grace`` seconds, then cancel what is left.

        As in grpcio, any number of stop() calls may run at once: they share one shutdown, each
        returns once the server has stopped, and the shortest grace wins (None: cancel at once).
        """
        if not self._started:
            # As grpcio: nothing to stop yet; the ports stay bound and start() still serves them
            # (they are released when the server is dropped, see __del__).
            return
        stopping = self._stopping
        if stopping is None:
            # Everything that must happen once is done here, before the first await, so a
            # concurrent stop() always finds the shutdown under way.
            for server in self._servers:
                server.close()  # no new connections
            stopping = self._stopping = asyncio.ensure_future(self._drain())
        if grace is None:
            await self._cancel_in_flight()
        else:
            try:
                await asyncio.wait_for(asyncio.shield(stopping), grace)
            except asyncio.TimeoutError:
                await self._cancel_in_flight()
        await asyncio.shield(stopping)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Wait until the server has stopped; True if ``timeout`` ran out first (as in grpcio)."""
        if self._terminated is None:
            self._terminated = asyncio.Event()
        if self._terminated.is_set():
            return False
        try:
            await asyncio.wait_for(self._terminated.wait(), timeout)
        except asyncio.TimeoutError:
            return True
        return False

    def __del__(self) -> None:
        # A server dropped before it started still holds its listening sockets: release them
        # (a started server releases them when it stops).
        if not getattr(self, "_started", True):
            with contextlib.suppress(Exception):
                self._close_ports()

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _check_interceptors(interceptors: Sequence[Any]) -> None:
        """grpc.aio takes grpc.aio.ServerInterceptors only (ours or grpcio's): ValueError."""
        invalid = [item for item in interceptors if not _is_aio_interceptor(item)]
        if invalid:
            raise ValueError(
                f"Interceptor must be ServerInterceptor, the following are invalid: {invalid}"
            )

    async def _drain(self) -> None:
        """The shutdown: GOAWAY on every connection, wait for them to end (stop() cancels the
        calls once the shortest grace has passed), then release the ports."""
        await self._context.terminated.set()
        while self._connections:
            await asyncio.wait(list(self._connections))
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._close_ports()
        if self._terminated is None:
            self._terminated = asyncio.Event()
        self._terminated.set()

    async def _cancel_in_flight(self) -> None:
        """Grace is over: cancel every call (they end UNAVAILABLE), then every connection."""
        await self.app.cancel_all()
        for task in list(self._connections):
            task.cancel()

    def _add_port(self, address: str, security: PortSecurity) -> int:
        if self._started:
            raise RuntimeError("ports must be added before the server starts")
        reuseport = bool(self.app.config.options.get("grpc.so_reuseport", 1))
        try:
            sock, port = _bind(address, reuseport=reuseport)
        except (OSError, ValueError) as exc:
            # grpcio's exception type for an address that cannot be bound (in use, not local,
            # not resolvable, not an address).
            raise RuntimeError(f"Failed to bind to address {address}: {exc}") from exc
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


def _bind(address: str, *, reuseport: bool = False) -> tuple[socket.socket, int]:
    """A listening socket for a grpcio-style address.

    ``reuseport`` sets SO_REUSEPORT (where the platform has it) on TCP sockets: the Server does,
    as grpcio does unless ``("grpc.so_reuseport", 0)``, so several processes can serve one port.
    ``asgi-grpc serve`` does not: it binds once and hands the socket to its workers, and a port
    that another server holds must stay an error there."""
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
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(sockaddr)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock, sock.getsockname()[1]


def _is_aio_interceptor(interceptor: Any) -> bool:
    if isinstance(interceptor, AioServerInterceptor):
        return True
    # grpcio's own grpc.aio.ServerInterceptor, without importing grpcio.
    return any(
        cls.__name__ == "ServerInterceptor" and cls.__module__ == "grpc.aio._interceptor"
        for cls in type(interceptor).__mro__
    )


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
