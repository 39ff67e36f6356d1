"""A pool of HTTP/2 connections to one target: the lean path a channel opens calls through.

- Connections open lazily, on the first stream, one connect at a time (concurrent callers wait
  for the same connect instead of racing to open many).
- A stream goes to the first connection with room under the peer's MAX_CONCURRENT_STREAMS;
  when all are busy (full of our streams) another connection opens (up to ``max_connections``,
  then callers wait). grpcio servers name no limit by default, so one connection normally
  carries everything. A connection that is open but takes no stream while carrying none of
  ours (a peer that says MAX_CONCURRENT_STREAMS=0) is waited on, as grpcio does, rather than
  answered with another connection: another would say the same.
- Reconnect backoff, grpc's (``doc/connection-backoff.md``): after a failed connect, or a
  connection that closed or said GOAWAY before answering any stream, the next connect waits
  (1 s, then 1.6x, 20% jitter, up to 120 s; the ``grpc.*_reconnect_backoff_ms`` options). While
  it waits and no connection is up, streams fail at once with the last error (ConnectError,
  UNAVAILABLE), as grpcio's calls do in TRANSIENT_FAILURE; an answered stream resets it. So a
  lying server costs one connection per backoff step, never a storm.
- A GOAWAY ENHANCE_YOUR_CALM "too_many_pings" doubles the keepalive time of later
  connections, as grpc-core does.
- Closed and draining (GOAWAY) connections take no new streams and are dropped.
- Streams a GOAWAY or REFUSED_STREAM proves were never processed are retryable:
  :meth:`ConnectionPool.request` re-sends them on another connection by itself, and callers of
  :meth:`ConnectionPool.open_stream` see ``error.retryable`` and may do the same.
- Addresses are tried in order at each connect; the first that accepts wins.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import ssl
from collections.abc import Sequence

from h2.errors import ErrorCodes

from .._core import Headers
from ._address import Address
from ._connection import Connection, ConnectionSettings, Stream
from ._transport_errors import ConnectError, TransportError

__all__ = ["ConnectionPool"]

logger = logging.getLogger("asgi_grpc.client")


class Backoff:
    """grpc's connection backoff: ``initial`` seconds, times 1.6 per step up to ``maximum``,
    with 20% jitter, never under ``minimum``."""

    __slots__ = ("current", "initial", "maximum", "minimum")

    def __init__(self, settings: ConnectionSettings) -> None:
        self.initial = settings.reconnect_initial
        self.minimum = settings.reconnect_min
        self.maximum = settings.reconnect_max
        self.current = self.initial

    def reset(self) -> None:
        self.current = self.initial

    def next(self) -> float:
        delay = max(self.minimum, self.current * random.uniform(0.8, 1.2))
        self.current = min(self.current * 1.6, self.maximum)
        return delay


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
        self._backoff = Backoff(self._settings)
        self._last: Connection | None = None  # the latest connection, until judged
        self._retry_at = 0.0  # loop time before which no connect starts
        self._last_error = ""

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
                if not stream.ended:
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
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise ConnectError("connection pool closed")
            self._connections = [c for c in self._connections if not c.closed]
            connection = self._pick()
            if connection is not None:
                return connection
            wait: float | None = None
            if self._connecting is None and self._may_open():
                wait = self._judge_last() - loop.time()
                if wait <= 0:
                    self._connecting = asyncio.ensure_future(self._connect())
                    self._connecting.add_done_callback(self._connect_done)
                elif not self._live():
                    # TRANSIENT_FAILURE: fail now with the reason, connect after the backoff.
                    raise ConnectError(f"{self._last_error} (reconnecting in {wait:.1f}s)")
            if self._connecting is not None:
                # Shielded: one caller giving up must not cancel the connect others wait on.
                await asyncio.shield(self._connecting)
                continue
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                if wait is None:
                    await waiter
                else:
                    await asyncio.wait_for(waiter, wait)
            except asyncio.TimeoutError:
                pass  # the backoff is over: connect
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def _live(self) -> bool:
        return any(not c.closed and not c.draining for c in self._connections)

    def _may_open(self) -> bool:
        """Another connection may help: every live one is busy with our streams."""
        if self._max_connections is not None and len(self._connections) >= self._max_connections:
            return False
        return all(c.active_streams or c.closed or c.draining for c in self._connections)

    def _judge_last(self) -> float:
        """The loop time the next connect may start.

        The latest connection succeeded (backoff reset) if it answered a stream, or if it
        stayed up at least as long as the next backoff step (a connection a server closes when
        idle, say): reconnecting at once is then no faster than the backoff would allow. One
        that ended sooner without answering (a peer saying SETTINGS then GOAWAY, or closing)
        counts as a failed attempt: one more backoff step.
        """
        last = self._last
        if last is not None:
            if last.proven:
                self._backoff.reset()
                self._last = None
            elif last.ended_at is not None:
                lived = last.ended_at - (last.ready_at or last.ended_at)
                if lived >= self._backoff.current:
                    self._backoff.reset()
                    self._last = None
                else:
                    self._fail_attempt(last.end_reason or "connection closed")
        return self._retry_at

    def _fail_attempt(self, reason: str) -> None:
        self._last = None
        self._last_error = reason
        self._retry_at = asyncio.get_running_loop().time() + self._backoff.next()

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
                    on_goaway=self._on_goaway,
                )
            except ConnectError as exc:
                errors.append(exc.message)
                continue
            self._next_address = (self._next_address + i) % count
            if self._closed:
                connection.close()
                raise ConnectError("connection pool closed")
            self._connections.append(connection)
            self._last = connection
            return connection
        self._fail_attempt("; ".join(errors))
        raise ConnectError(self._last_error)

    def _connect_done(self, future: asyncio.Future[Connection]) -> None:
        self._connecting = None
        if not future.cancelled():
            # Retrieve the exception: every waiter may have given up already.
            future.exception()
        self._on_capacity()

    def _on_goaway(self, connection: Connection, error_code: int, data: bytes) -> None:
        if (
            error_code == ErrorCodes.ENHANCE_YOUR_CALM
            and data == b"too_many_pings"
            and connection.pinged  # a peer saying so unprompted is just refusing us
        ):
            # The peer serves, it only wants fewer pings: reconnect at once (no backoff) with
            # the keepalive time doubled, as grpc-core does.
            connection.proven = True
            old = self._settings.keepalive_time
            self._settings = self._settings.throttled()
            logger.error(
                "%s: GOAWAY ENHANCE_YOUR_CALM too_many_pings; keepalive time %ss -> %ss",
                self.authority,
                old,
                self._settings.keepalive_time,
            )

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
