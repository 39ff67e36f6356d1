"""A pool of HTTP/2 connections to one target: the lean path a channel opens calls through.

- Connections open lazily, on the first stream, one connect at a time (concurrent callers wait
  for the same connect instead of racing to open many).
- A stream goes to the first connection with room under the peer's MAX_CONCURRENT_STREAMS;
  when all are full another connection opens (up to ``max_connections``, then callers wait).
  grpcio servers name no limit by default, so one connection normally carries everything.
- Closed and draining (GOAWAY) connections take no new streams and are dropped.
- Streams a GOAWAY or REFUSED_STREAM proves were never processed are retryable:
  :meth:`ConnectionPool.request` re-sends them on another connection by itself, and callers of
  :meth:`ConnectionPool.open_stream` see ``error.retryable`` and may do the same.
- Addresses are tried in order at each connect; the first that accepts wins.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Sequence

from .._core import Headers
from ._address import Address
from ._connection import Connection, ConnectionSettings, Stream
from ._transport_errors import ConnectError, TransportError

__all__ = ["ConnectionPool"]


class ConnectionPool:
    """HTTP/2 connections to one target (one ``:authority``), shared by all its calls.

    ``ssl_context`` switches to TLS (``https``); it must offer ALPN ``h2`` (the transport's
    contexts do). ``server_hostname`` overrides the name checked against the certificate
    (grpc's ``ssl_target_name_override``).
    """

    def __init__(
        self,
        addresses: Sequence[Address],
        *,
        authority: str,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        settings: ConnectionSettings | None = None,
        max_connections: int | None = None,
    ) -> None:
        if not addresses:
            raise ValueError("a pool needs at least one address")
        self.addresses = tuple(addresses)
        self.authority = authority
        self.scheme = b"https" if ssl_context is not None else b"http"
        self._ssl_context = ssl_context
        self._server_hostname = server_hostname
        self._settings = settings or ConnectionSettings()
        self._max_connections = max_connections
        self._connections: list[Connection] = []
        self._connecting: asyncio.Future[Connection] | None = None
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False
        self._authority = authority.encode("idna" if not authority.isascii() else "ascii")
        self._next_address = 0

    def __repr__(self) -> str:
        return f"<ConnectionPool {self.authority} connections={len(self._connections)}>"

    @property
    def connections(self) -> list[Connection]:
        """The live connections (a copy)."""
        return [c for c in self._connections if not c.closed]

    def request_headers(self, path: bytes, headers: Headers, authority: bytes | None) -> Headers:
        """Pseudo-headers for a gRPC POST to ``path``, then ``headers``."""
        return [
            (b":method", b"POST"),
            (b":scheme", self.scheme),
            (b":path", path),
            (b":authority", authority or self._authority),
            *headers,
        ]

    # -- opening streams ---------------------------------------------------------------------

    async def open_stream(
        self,
        path: bytes | str,
        headers: Headers,
        *,
        body: bytes = b"",
        end_stream: bool = False,
        authority: bytes | None = None,
    ) -> Stream:
        """Open a POST stream to ``path`` with ``headers`` (no pseudo-headers: those are
        added here), send ``body``, and half-close if ``end_stream``."""
        if isinstance(path, str):
            path = path.encode("ascii")
        full = self.request_headers(path, headers, authority)
        stream = await self.open_raw(full, end_stream=end_stream and not body)
        if body:
            try:
                await stream.send(body, end_stream=end_stream)
            except TransportError:
                # A server may answer before it has read the whole request, then reset the
                # stream (NO_ERROR) to stop the upload (RFC 9113 8.1): its response stands.
                if not stream._ended:
                    stream.close()
                    raise
            except BaseException:
                stream.close()
                raise
        return stream

    async def open_raw(self, headers: Headers, *, end_stream: bool = False) -> Stream:
        """Open a stream with complete ``headers`` (pseudo-headers included)."""
        while True:
            connection = self._pick()
            if connection is None:
                connection = await self._acquire()
            try:
                return connection.start_stream(headers, end_stream=end_stream)
            except TransportError:
                # The connection filled up or started closing; pick again.
                continue

    async def request(
        self,
        path: bytes | str,
        headers: Headers,
        body: bytes,
        *,
        attempts: int = 6,
        authority: bytes | None = None,
    ) -> Stream:
        """A whole request (unary or server-streaming call): send ``body`` and half-close,
        then wait for the response headers.

        Streams the server never processed (GOAWAY, REFUSED_STREAM) are re-sent, up to
        ``attempts`` times in all. grpcio servers refuse streams in a race at their stream
        limit: they count a finished stream until their write of its trailers completes, so
        a stream opened the moment those trailers arrive can be refused. Retries after the
        first back off a little (1, 2, 4... ms) to let the server catch up.
        """
        for attempt in range(1, attempts + 1):
            stream = await self.open_stream(
                path, headers, body=body, end_stream=True, authority=authority
            )
            try:
                await stream.headers()
            except TransportError as exc:
                stream.close()
                if exc.retryable and attempt < attempts:
                    if attempt > 1:
                        await asyncio.sleep(0.001 * 2 ** (attempt - 2))
                    continue
                raise
            except BaseException:
                stream.close()
                raise
            return stream
        raise AssertionError("unreachable")  # pragma: no cover

    def _pick(self) -> Connection | None:
        for connection in self._connections:
            if connection.available:
                return connection
        return None

    async def _acquire(self) -> Connection:
        """Slow path: no connection has room. Connect, or wait for room."""
        while True:
            if self._closed:
                raise ConnectError("connection pool closed")
            self._connections = [c for c in self._connections if not c.closed]
            connection = self._pick()
            if connection is not None:
                return connection
            if self._connecting is None and (
                self._max_connections is None or len(self._connections) < self._max_connections
            ):
                self._connecting = asyncio.ensure_future(self._connect())
                self._connecting.add_done_callback(self._connect_done)
            if self._connecting is not None:
                # Shielded: one caller giving up must not cancel the connect others wait on.
                await asyncio.shield(self._connecting)
            else:
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)

    async def _connect(self) -> Connection:
        errors: list[str] = []
        count = len(self.addresses)
        for i in range(count):
            address = self.addresses[(self._next_address + i) % count]
            try:
                connection = await Connection.connect(
                    address,
                    ssl_context=self._ssl_context,
                    server_hostname=self._server_hostname,
                    settings=self._settings,
                    on_capacity=self._on_capacity,
                )
            except ConnectError as exc:
                errors.append(exc.message)
                continue
            self._next_address = (self._next_address + i) % count
            if self._closed:
                connection.close()
                raise ConnectError("connection pool closed")
            self._connections.append(connection)
            return connection
        raise ConnectError("; ".join(errors))

    def _connect_done(self, future: asyncio.Future[Connection]) -> None:
        self._connecting = None
        if not future.cancelled():
            # Retrieve the exception: every waiter may have given up already.
            future.exception()
        self._on_capacity()

    def _on_capacity(self) -> None:
        """A connection may have room (a stream ended, limits changed, one closed)."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # -- closing -----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every connection; open streams fail with ConnectionTerminated."""
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        connections, self._connections = self._connections, []
        self._on_capacity()
        if connections:
            await asyncio.gather(*(connection.aclose() for connection in connections))
