"""Channels whose calls go to an ASGI app in memory: the aio one and the blocking one.

:class:`InMemoryChannel` is the client's own ``grpc.aio`` channel (multi-callables, calls,
interceptors, compression, deadlines, metadata) with its connection pool swapped for
:class:`InMemoryPool`, whose one connection is an :class:`~._connection.AppConnection`.
``channel.http_client`` is an ``httpx.AsyncClient`` on ``httpx.ASGITransport`` for the same app,
for the app's REST routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from .._core import Compression, option_dict
from .._sync import _loop
from .._sync._channel import Channel as BlockingChannel
from ..client._address import TCPAddress
from ..client._channel import Channel as AioChannel
from ..client._connection import Connection, ConnectionSettings
from ..client._pool import ConnectionPool
from ..client._transport_errors import ConnectError
from ..server._types import ASGIApp
from ._app_server import AppServer, LifespanError, LifespanMode
from ._connection import AppConnection

__all__ = ["InMemoryChannel", "InMemoryPool", "blocking_channel_for", "channel_for"]

ChannelArgument = tuple[str, Any]


class InMemoryPool(ConnectionPool):
    """A connection pool whose connections are :class:`AppConnection` s to one app."""

    def __init__(self, server: AppServer, *, authority: str, settings: ConnectionSettings) -> None:
        host, _, port = authority.rpartition(":")
        address = TCPAddress(host, int(port)) if port.isdigit() else TCPAddress(authority, 80)
        super().__init__([address], authority=authority, settings=settings)
        self.app_server = server

    async def _connect(self) -> Connection:
        if self._closed:
            raise ConnectError("connection pool closed")
        try:
            await self.app_server.startup()  # once; a no-op without lifespan
        except LifespanError as exc:
            raise ConnectError(str(exc)) from exc
        connection = AppConnection(
            self.app_server,
            self._settings,
            on_capacity=self._on_capacity,
            on_goaway=self._on_goaway,
        )
        self._connections.append(connection)
        self._last = connection
        return connection


class InMemoryChannel(AioChannel):
    """A ``grpc.aio.Channel`` to an ASGI app in this event loop: no sockets, no server.

    Every call runs the app as a task with the ASGI scope Hypercorn gives an HTTP/2 request
    (``http_version`` "2", the ``http.response.trailers`` extension, ``client`` / ``server``
    addresses as given), full duplex with flow control, and the app sees ``http.disconnect``
    when the call is cancelled or its deadline passes. Options, compression and client
    interceptors are those of ``asgi_grpc.aio.insecure_channel``.

    ``lifespan``: ``False`` (default) sends no lifespan events; ``True`` runs the app's lifespan
    startup on ``async with`` (or before the first call) and its shutdown on ``close()``,
    failing if the app does not complete it; ``"auto"`` does the same but carries on without
    lifespan if the app does not support it, as Hypercorn does.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        options: Sequence[ChannelArgument] | None = None,
        compression: Compression | None = None,
        interceptors: Sequence[Any] | None = None,
        lifespan: LifespanMode = False,
        authority: str = "testserver",
        client: tuple[str, int] | None = ("127.0.0.1", 123),
        server: tuple[str, int] | None = ("127.0.0.1", 80),
        root_path: str = "",
        request_window: int = 1024 * 1024,
    ) -> None:
        super().__init__(authority, options, None, compression, interceptors)
        self.app = app
        self.app_server = AppServer(
            app,
            lifespan=lifespan,
            client=client,
            server=server,
            root_path=root_path,
            request_window=request_window,
        )
        opts = option_dict(options)
        # Replace what the base built for a network target (nothing of it has connected yet):
        # one in-memory pool, no name resolution, and REST calls to the app in memory too.
        self._pools = [
            InMemoryPool(
                self.app_server,
                authority=self._authority,
                settings=ConnectionSettings.from_options(opts),
            )
        ]
        self._resolved = True
        self.http_client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, root_path=root_path, client=client or ("", 0)),
            base_url=f"http://{self._authority}",
        )

    def __repr__(self) -> str:
        return f"<InMemoryChannel to {self.app!r}>"

    async def __aenter__(self) -> InMemoryChannel:
        await self.app_server.startup()
        return self

    async def close(self, grace: float | None = None) -> None:
        """Close the channel (as ``grpc.aio``), then run the app's lifespan shutdown."""
        try:
            await super().close(grace)
        finally:
            await self.app_server.shutdown()


def channel_for(
    app: ASGIApp,
    *,
    options: Sequence[ChannelArgument] | None = None,
    compression: Compression | None = None,
    interceptors: Sequence[Any] | None = None,
    lifespan: LifespanMode = False,
    authority: str = "testserver",
    client: tuple[str, int] | None = ("127.0.0.1", 123),
    server: tuple[str, int] | None = ("127.0.0.1", 80),
    root_path: str = "",
    request_window: int = 1024 * 1024,
) -> InMemoryChannel:
    """A ``grpc.aio`` channel to ``app`` (a ``GrpcApp``, or any ASGI app that mounts one),
    in memory. Use it as ``async with channel_for(app) as channel:``. See
    :class:`InMemoryChannel` for the arguments."""
    return InMemoryChannel(
        app,
        options=options,
        compression=compression,
        interceptors=interceptors,
        lifespan=lifespan,
        authority=authority,
        client=client,
        server=server,
        root_path=root_path,
        request_window=request_window,
    )


def blocking_channel_for(
    app: ASGIApp,
    *,
    options: Sequence[ChannelArgument] | None = None,
    compression: Compression | None = None,
    lifespan: LifespanMode = False,
    authority: str = "testserver",
    client: tuple[str, int] | None = ("127.0.0.1", 123),
    server: tuple[str, int] | None = ("127.0.0.1", 80),
    root_path: str = "",
) -> BlockingChannel:
    """A blocking ``grpc.Channel`` to ``app`` in memory: ``with blocking_channel_for(app) as
    channel:``. The app runs on asgi_grpc's background event loop (the one every blocking
    channel uses), so call it from any thread but not from inside a running event loop's
    callbacks that wait on it. With ``lifespan``, the startup runs here, before returning."""

    def make() -> AioChannel:
        return InMemoryChannel(
            app,
            options=options,
            compression=compression,
            lifespan=lifespan,
            authority=authority,
            client=client,
            server=server,
            root_path=root_path,
        )

    channel = BlockingChannel(authority, options, None, compression, aio_factory=make)
    if lifespan is not False:
        aio = channel._aio
        assert isinstance(aio, InMemoryChannel)
        try:
            _loop.run(aio.app_server.startup)
        except BaseException:
            channel.close()
            raise
    return channel
