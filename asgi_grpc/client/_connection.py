"""One HTTP/2 client connection on h2: full-duplex streams with trailers and flow control.

Why our own and not httpcore's: stock httpx drops trailers, sends a whole request body before
reading the response, runs one stream at a time against servers that name no stream limit, and
never acknowledges DATA that arrives for streams it has given up on (ARCHITECTURE.md).

Shape:

- :class:`Connection` is an :class:`asyncio.Protocol`. ``data_received`` feeds bytes straight
  into h2 and demultiplexes the events to per-stream state, with no reader task between the
  socket and the streams.
- Writes are coalesced: every operation only queues frames in h2, and one ``call_soon`` flush
  per loop turn hands them to the socket in a single ``write``. Streams woken by a read run
  before that flush, so the frames they queue in reaction leave in the same write as the acks.
- :class:`Stream` is a pull API for one request: ``send`` / ``end`` (request side, waiting for
  flow-control window), ``headers`` / ``read`` / ``trailers`` (response side) and ``close``
  (RST_STREAM(CANCEL) if the exchange is not over). Both sides can be used at once by
  different tasks: this is what bidirectional streaming needs.
- Flow control both ways: senders wait for window (WINDOW_UPDATE or SETTINGS); received DATA
  is acknowledged when the caller *reads* it, so what a stream buffers is bounded by its
  window. DATA for streams we closed or that were reset is acknowledged at once, so the
  connection window never starves.
- GOAWAY: streams above the peer's ``last_stream_id`` fail with a retryable
  :class:`ConnectionTerminated`; the others run to completion and the connection closes when
  the last one ends. h2 treats a received GOAWAY as the end of the connection (it refuses all
  later frames), which would break every in-flight stream during a graceful server shutdown, so
  the connection's h2 state machine ignores received GOAWAYs (:class:`_GoawayTolerantStateMachine`).
  That is the one place we lean on h2 beyond its documented API; the GOAWAY tests catch it if h2
  changes.

Errors reach callers only as the classes in :mod:`._transport_errors`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes

from .._core import Headers, StatusCode
from ._address import Address, UnixAddress
from ._transport_errors import (
    ConnectError,
    ConnectionTerminated,
    StreamClosed,
    StreamReset,
    TransportError,
)

__all__ = ["Connection", "ConnectionSettings", "Stream"]

_MiB = 1024 * 1024
_DEFAULT_WINDOW = 65535
_MAX_WINDOW = 2**31 - 1
_UNLIMITED = 2**32 + 1  # h2's value for "the peer named no MAX_CONCURRENT_STREAMS"


@dataclass(frozen=True, kw_only=True)
class ConnectionSettings:
    """HTTP/2 tuning for our side of a connection.

    The windows bound how much a peer may send before we read it (per stream, and over all
    streams of the connection). grpcio grows its windows by BDP probing up to a few MiB;
    fixed windows of that size give the same throughput on fast links without the probing.
    ``max_frame_size`` is the largest DATA frame we accept: larger frames mean fewer frames
    (and h2 events) per message.

    Keepalive (grpc's ``keepalive_time_ms`` / ``keepalive_timeout_ms`` /
    ``keepalive_permit_without_calls``): every ``keepalive_time`` seconds, while streams are
    open (or always, with ``keepalive_without_calls``), a PING goes out; no answer within
    ``keepalive_timeout`` fails the connection, so a peer that vanished without closing its
    socket is noticed. Off by default, like grpcio's client. Servers limit ping rates (grpcio:
    ``grpc.http2.min_ping_interval_without_data_ms``), so keep the period modest.
    """

    stream_window: int = 4 * _MiB
    connection_window: int = 16 * _MiB
    max_frame_size: int = 64 * 1024
    max_header_list_size: int = 64 * 1024
    connect_timeout: float | None = 20.0
    keepalive_time: float | None = None
    keepalive_timeout: float = 20.0
    # An int like grpc's 0/1 option ``grpc.keepalive_permit_without_calls``: non-zero pings
    # even when no call is open.
    keepalive_without_calls: int = 0

    def __post_init__(self) -> None:
        if not _DEFAULT_WINDOW <= self.stream_window <= _MAX_WINDOW:
            raise ValueError(f"stream_window must be in [65535, 2**31-1]: {self.stream_window}")
        if not _DEFAULT_WINDOW <= self.connection_window <= _MAX_WINDOW:
            raise ValueError(
                f"connection_window must be in [65535, 2**31-1]: {self.connection_window}"
            )
        if not 16384 <= self.max_frame_size <= 2**24 - 1:
            raise ValueError(f"max_frame_size must be in [16384, 2**24-1]: {self.max_frame_size}")
        if self.keepalive_time is not None and self.keepalive_time <= 0:
            raise ValueError(f"keepalive_time must be positive: {self.keepalive_time}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ConnectionSettings:
        """Settings from grpc channel options (``grpc.keepalive_time_ms``,
        ``grpc.keepalive_timeout_ms``, ``grpc.keepalive_permit_without_calls``) and our own
        ``asgi_grpc.http2.*`` ones (window sizes, max frame size, connect timeout in ms).
        Options that do not concern the connection are ignored."""
        values: dict[str, Any] = {}
        for option, (name, scale) in _OPTIONS.items():
            if option in options:
                value = options[option]
                values[name] = int(value) if scale == 1 else int(value) / scale
        if values.get("keepalive_time") is not None and values["keepalive_time"] >= _NEVER:
            values["keepalive_time"] = None  # grpc's INT_MAX means "never"
        return cls(**values)


# grpc option -> (ConnectionSettings field, divisor to our unit).
_OPTIONS: dict[str, tuple[str, int]] = {
    "grpc.keepalive_time_ms": ("keepalive_time", 1000),
    "grpc.keepalive_timeout_ms": ("keepalive_timeout", 1000),
    "grpc.keepalive_permit_without_calls": ("keepalive_without_calls", 1),
    "asgi_grpc.http2.stream_window_size": ("stream_window", 1),
    "asgi_grpc.http2.connection_window_size": ("connection_window", 1),
    "asgi_grpc.http2.max_frame_size": ("max_frame_size", 1),
    "asgi_grpc.connect_timeout_ms": ("connect_timeout", 1000),
}
_NEVER = (2**31 - 1) / 1000

_H2_CONFIG = h2.config.H2Configuration(
    client_side=True,
    header_encoding=None,
    # We build our own headers from validated parts (lower-case names, no connection-specific
    # headers), so h2's outbound checks only cost time. Inbound validation is also off: it is
    # a large share of h2's per-call cost, and a broken peer's headers fail later in gRPC
    # parsing (missing :status or content-type) with a clear status anyway.
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
)


class _GoawayTolerantStateMachine(h2.connection.H2ConnectionStateMachine):
    """h2's connection state machine, except that a received GOAWAY does not close it.

    h2 moves to CLOSED on GOAWAY and then rejects every later frame (even in the same read) as
    a protocol error, but RFC 9113 6.8 lets the peer finish streams up to ``last_stream_id``
    (grpcio's graceful shutdown does exactly that). We stop opening streams ourselves.
    """

    def process_input(self, input_: h2.connection.ConnectionInputs) -> list[h2.events.Event]:
        if input_ is h2.connection.ConnectionInputs.RECV_GOAWAY:
            return []
        return super().process_input(input_)


class _H2Connection(h2.connection.H2Connection):
    """h2's connection, counting open outbound streams in O(1).

    h2 counts them by walking every stream it holds, on each new stream (O(n) per stream with
    n in flight). :class:`Connection` keeps the count in ``open_streams`` instead; h2's own walk
    still runs every 256 streams, since it is also what purges closed streams from h2's table.
    """

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config)
        self.open_streams = 0
        self._opened = 0

    @property
    def open_outbound_streams(self) -> int:
        self._opened += 1
        if not self._opened & 255:
            return super().open_outbound_streams
        return self.open_streams


class Stream:
    """One HTTP/2 request/response exchange (one RPC).

    Response side: ``await headers()`` (the first HEADERS block, ``:status`` included), then
    ``await read()`` for body chunks until ``b""``, then ``await trailers()``. A trailers-only
    response (one HEADERS block that ends the stream) comes back from both ``headers()`` and
    ``trailers()``, with ``trailers_only`` set. ``trailers()`` discards body not yet read.

    Request side: ``await send(data)`` as often as needed, then ``await end()`` (or
    ``send(data, end_stream=True)``). Sending waits for flow-control window.

    ``close()`` ends the exchange for this side: a stream still open either way is reset with
    CANCEL. It is idempotent, and after it every method raises :class:`StreamClosed`. Readers
    and writers may be different tasks; more than one reader at a time is also safe.
    """

    __slots__ = (
        "_chunks",
        "_closed",
        "_conn",
        "_discard",
        "_ended",
        "_error",
        "_headers",
        "_local_ended",
        "_released",
        "_send_waiter",
        "_trailers",
        "_waiters",
        "stream_id",
        "trailers_only",
    )

    def __init__(self, conn: Connection, stream_id: int) -> None:
        self._conn = conn
        self.stream_id = stream_id
        self.trailers_only = False
        self._headers: Headers | None = None
        self._trailers: Headers | None = None
        # Body chunks with their flow-controlled length, acknowledged as they are read.
        self._chunks: collections.deque[tuple[bytes, int]] = collections.deque()
        self._ended = False  # the peer ended the stream normally (END_STREAM)
        self._local_ended = False  # we sent END_STREAM (or the stream is reset)
        self._error: TransportError | None = None  # reset or connection failure
        self._closed = False  # close() was called
        self._discard = False  # acknowledge and drop further DATA (body no longer wanted)
        self._released = False  # no longer counted by the connection
        self._waiters: list[asyncio.Future[None]] = []
        self._send_waiter: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<Stream {self.stream_id} on {self._conn!r}>"

    # -- state for callers -------------------------------------------------------------------

    @property
    def status(self) -> int:
        """The HTTP ``:status`` of the response (0 before headers or when missing)."""
        if self._headers is not None:
            for name, value in self._headers:
                if name == b":status":
                    return int(value)
        return 0

    @property
    def done(self) -> bool:
        """The response is over: ended, reset, failed or closed."""
        return self._ended or self._error is not None or self._closed

    @property
    def error(self) -> TransportError | None:
        return self._error

    @property
    def connection(self) -> Connection:
        return self._conn

    # -- response side -----------------------------------------------------------------------

    async def headers(self) -> Headers:
        """The response's first HEADERS block (``:status`` included)."""
        while self._headers is None:
            self._check_readable()
            if self._ended:
                raise ConnectionTerminated(
                    "stream ended without response headers", status=StatusCode.INTERNAL
                )
            await self._wait()
        return self._headers

    async def read(self) -> bytes:
        """The response body received so far and not yet read (waiting for some if there is
        none), ``b""`` once the body is over. Chunk boundaries carry no meaning."""
        while True:
            if self._chunks:
                return self._take()
            if self._ended:
                return b""
            self._check_readable()
            await self._wait()

    def read_nowait(self) -> bytes | None:
        """Like :meth:`read`, but ``None`` instead of waiting."""
        if self._chunks:
            return self._take()
        if self._ended:
            return b""
        self._check_readable()
        return None

    def _take(self) -> bytes:
        """All buffered chunks at once: one read and one acknowledgement for however many
        DATA frames arrived (a stream of small messages arrives as many small frames)."""
        chunks = self._chunks
        if len(chunks) == 1:
            data, length = chunks.popleft()
        else:
            data = b"".join([chunk for chunk, _ in chunks])
            length = sum([n for _, n in chunks])
            chunks.clear()
        self._conn._acknowledge(self.stream_id, length)
        return data

    async def trailers(self) -> Headers:
        """The trailers, once the stream has ended; body not read yet is discarded.

        Empty when the peer ended the stream without trailers (not a gRPC response).
        """
        self._drop_body()
        while not self._ended:
            self._check_readable()
            await self._wait()
        return self._trailers if self._trailers is not None else []

    def _check_readable(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed:
            raise StreamClosed()

    async def _wait(self) -> None:
        future = self._conn._loop.create_future()
        self._waiters.append(future)
        try:
            await future
        finally:
            # Normally _wake() already emptied the list; a cancelled wait removes itself.
            if future in self._waiters:
                self._waiters.remove(future)

    def _wake(self) -> None:
        waiters = self._waiters
        if waiters:
            self._waiters = []
            for future in waiters:
                if not future.done():
                    future.set_result(None)

    def _drop_body(self) -> None:
        """Stop buffering body: acknowledge what is held and everything that comes later."""
        self._discard = True
        chunks = self._chunks
        if chunks:
            total = sum(length for _, length in chunks)
            chunks.clear()
            self._conn._acknowledge(self.stream_id, total)

    # -- request side ------------------------------------------------------------------------

    async def send(self, data: bytes, *, end_stream: bool = False) -> None:
        """Send request body bytes, waiting for flow-control window as needed."""
        conn = self._conn
        offset, total = 0, len(data)
        while True:
            if self._local_ended:
                raise self._send_error()
            if conn._write_paused:
                await conn._writable()
                continue
            offset = conn._send_data(self, data, offset, end_stream)
            if offset >= total:
                return
            await self._wait_window()

    async def end(self) -> None:
        """Half-close: the request is complete."""
        await self.send(b"", end_stream=True)

    def _send_error(self) -> TransportError:
        if self._error is not None:
            return self._error
        if self._closed:
            return StreamClosed()
        return StreamClosed("request already ended")

    async def _wait_window(self) -> None:
        conn = self._conn
        future = conn._loop.create_future()
        self._send_waiter = future
        conn._blocked.add(self)
        try:
            await future
        finally:
            self._send_waiter = None
            conn._blocked.discard(self)

    def _wake_sender(self) -> None:
        future = self._send_waiter
        if future is not None and not future.done():
            future.set_result(None)

    # -- ending ------------------------------------------------------------------------------

    def close(self) -> None:
        """Done with this stream. Resets it (CANCEL) unless the exchange finished both ways."""
        if self._closed:
            return
        self._closed = True
        self._drop_body()
        if not self._released:
            self._conn._close_stream(self)
        self._wake()
        self._wake_sender()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    # -- events from the connection ----------------------------------------------------------

    def _on_data(self, data: bytes, length: int) -> None:
        if self._discard:
            self._conn._acknowledge(self.stream_id, length)
        else:
            self._chunks.append((data, length))
            self._wake()

    def _on_end(self) -> None:
        self._ended = True
        self._wake()
        if self._local_ended:
            self._conn._release(self)

    def _fail(self, error: TransportError) -> None:
        """Reset by the peer or lost with the connection: nothing more comes either way."""
        self._local_ended = True
        if not self._ended:
            self._error = error
            self._drop_body()
        self._wake()
        self._wake_sender()
        self._conn._release(self)


class Connection(asyncio.Protocol):
    """A client HTTP/2 connection. Make one with :meth:`connect`, open streams with
    :meth:`start_stream` (the pool does both)."""

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        on_capacity: Callable[[], None] | None = None,
        name: str = "",
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._settings = settings
        self._on_capacity = on_capacity
        self.name = name
        h2conn = _H2Connection(_H2_CONFIG)
        # Set before the preface goes out, so our SETTINGS carry these values and streams are
        # created with our window from the start (h2 takes initial_values as already in force).
        h2conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: settings.stream_window,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: settings.max_frame_size,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: settings.max_header_list_size,
            },
        )
        h2conn.max_inbound_frame_size = settings.max_frame_size
        h2conn.state_machine = _GoawayTolerantStateMachine()
        self._h2 = h2conn
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, Stream] = {}
        self._blocked: set[Stream] = set()  # streams waiting for send window
        self._active = 0  # streams h2 counts as open
        self._ready: asyncio.Future[None] = self._loop.create_future()
        self._lost: asyncio.Future[None] = self._loop.create_future()  # connection_lost ran
        self._flush_scheduled = False
        self._pending_acks: dict[int, int] = {}
        self._carry = b""  # output taken out of h2 before a read, sent at the next flush
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closed = False
        self._full = False  # h2 refused a stream for the peer's limit; cleared on a release
        self._draining = False  # GOAWAY received or sent, or stream ids used up: no new streams
        self._error: TransportError | None = None
        self._keepalive: asyncio.TimerHandle | None = None
        self._ping_timeout: asyncio.TimerHandle | None = None
        self._handlers: dict[type[h2.events.Event], Callable[[Any], None]] = {
            h2.events.ResponseReceived: self._on_response,
            h2.events.DataReceived: self._on_data,
            h2.events.TrailersReceived: self._on_trailers,
            h2.events.StreamEnded: self._on_stream_ended,
            h2.events.StreamReset: self._on_stream_reset,
            h2.events.WindowUpdated: self._on_window_updated,
            h2.events.RemoteSettingsChanged: self._on_settings,
            h2.events.ConnectionTerminated: self._on_goaway,
            h2.events.PingAckReceived: self._on_ping_ack,
        }

    def __repr__(self) -> str:
        state = "closed" if self._closed else "draining" if self._draining else "open"
        return f"<Connection {self.name} {state} streams={self._active}>"

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        address: Address,
        *,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        settings: ConnectionSettings | None = None,
        on_capacity: Callable[[], None] | None = None,
    ) -> Connection:
        """Connect, speak the HTTP/2 preface, and return once the peer's SETTINGS are in
        (so its stream limit is known before the first stream). Fails with ConnectError."""
        settings = settings or ConnectionSettings()
        loop = asyncio.get_running_loop()
        connection = cls(settings, on_capacity=on_capacity, name=str(address))
        kwargs: dict[str, Any] = {}
        if ssl_context is not None:
            kwargs["ssl"] = ssl_context
            if server_hostname is not None:
                kwargs["server_hostname"] = server_hostname
            elif isinstance(address, UnixAddress):
                kwargs["server_hostname"] = "localhost"

        async def establish() -> None:
            if isinstance(address, UnixAddress):
                await loop.create_unix_connection(lambda: connection, address.path, **kwargs)
            else:
                await loop.create_connection(
                    lambda: connection, address.host, address.port, **kwargs
                )
            await connection._ready

        try:
            await asyncio.wait_for(establish(), settings.connect_timeout)
        except asyncio.TimeoutError:
            connection._abort()
            raise ConnectError(f"timed out connecting to {address}") from None
        except ConnectError:
            connection._abort()
            raise
        except (OSError, ssl.SSLError, ValueError) as exc:
            connection._abort()
            raise ConnectError(f"failed to connect to {address}: {exc}") from exc
        except BaseException:
            connection._abort()
            raise
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() != "h2":
            self._fail_ready(ConnectError("the server did not negotiate HTTP/2 (ALPN h2)"))
            transport.abort()
            return
        h2conn = self._h2
        h2conn.initiate_connection()
        increment = self._settings.connection_window - _DEFAULT_WINDOW
        if increment > 0:
            h2conn.increment_flow_control_window(increment)
        transport.write(h2conn.data_to_send())
        if self._settings.keepalive_time is not None:
            self._keepalive = self._loop.call_later(
                self._settings.keepalive_time, self._keepalive_tick
            )

    # -- keepalive ---------------------------------------------------------------------------

    def _keepalive_tick(self) -> None:
        interval = self._settings.keepalive_time
        if self._closed or interval is None:
            return
        self._keepalive = self._loop.call_later(interval, self._keepalive_tick)
        if self._ping_timeout is not None:
            return  # the last ping is still out; its own timer judges it
        if self._active or self._settings.keepalive_without_calls:
            self._h2.ping(b"agkalive")
            self._schedule_flush()
            self._ping_timeout = self._loop.call_later(
                self._settings.keepalive_timeout, self._keepalive_expired
            )

    def _on_ping_ack(self, event: h2.events.PingAckReceived) -> None:
        if self._ping_timeout is not None:
            self._ping_timeout.cancel()
            self._ping_timeout = None

    def _keepalive_expired(self) -> None:
        self._ping_timeout = None
        error = ConnectionTerminated(
            f"keepalive ping not answered within {self._settings.keepalive_timeout}s"
        )
        self._shutdown(error)
        if self._transport is not None:
            self._transport.abort()

    def _stop_timers(self) -> None:
        for timer in (self._keepalive, self._ping_timeout):
            if timer is not None:
                timer.cancel()
        self._keepalive = self._ping_timeout = None

    def _fail_ready(self, error: TransportError) -> None:
        if not self._ready.done():
            self._ready.set_exception(error)
            # Mark retrieved: nobody may be waiting any more (connect timed out).
            self._ready.exception()

    def _abort(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.abort()

    # -- capacity, for the pool --------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def active_streams(self) -> int:
        return self._active

    @property
    def max_concurrent_streams(self) -> int:
        """The peer's limit (2**32+1 when it named none)."""
        return self._h2.remote_settings.max_concurrent_streams

    @property
    def available(self) -> bool:
        """Can take a new stream now."""
        return (
            not self._closed
            and not self._draining
            and not self._full
            and self._active < self._h2.remote_settings.max_concurrent_streams
        )

    @property
    def idle(self) -> bool:
        return self._active == 0

    # -- streams -----------------------------------------------------------------------------

    def start_stream(self, headers: Headers, *, end_stream: bool = False) -> Stream:
        """Open a stream and queue its HEADERS (pseudo-headers first, lower-case names).

        Synchronous, so a caller that checked :attr:`available` cannot lose the slot. Raises
        ConnectionTerminated if the connection cannot take it after all; the pool then picks
        another connection.
        """
        if self._closed or self._draining:
            raise ConnectionTerminated("connection is closing", retryable=True)
        h2conn = self._h2
        try:
            stream_id = h2conn.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:
            self._start_draining()
            raise ConnectionTerminated("stream ids exhausted", retryable=True) from None
        stream = Stream(self, stream_id)
        try:
            h2conn.send_headers(stream_id, headers, end_stream=end_stream)
        except h2.exceptions.TooManyStreamsError:
            # h2 counts more open streams than we do: take no more until one of ours ends,
            # so the pool moves on instead of retrying this connection in a tight loop.
            self._full = True
            raise ConnectionTerminated("peer stream limit reached", retryable=True) from None
        self._streams[stream_id] = stream
        self._active += 1
        h2conn.open_streams = self._active
        if end_stream:
            stream._local_ended = True
        self._schedule_flush()
        return stream

    def _send_data(self, stream: Stream, data: bytes, offset: int, end_stream: bool) -> int:
        """Queue as much of ``data[offset:]`` as the windows allow; return the new offset."""
        h2conn = self._h2
        stream_id = stream.stream_id
        total = len(data)
        try:
            if offset >= total:
                if end_stream:
                    h2conn.end_stream(stream_id)
                    self._local_end(stream)
                return total
            window = h2conn.local_flow_control_window(stream_id)
            max_frame = h2conn.max_outbound_frame_size
            while window > 0 and offset < total:
                size = min(window, max_frame, total - offset)
                chunk = data if size == total else data[offset : offset + size]
                offset += size
                last = end_stream and offset >= total
                h2conn.send_data(stream_id, chunk, end_stream=last)
                window -= size
            if end_stream and offset >= total:
                self._local_end(stream)
        except h2.exceptions.StreamClosedError:
            # Reset by the peer in an event we have not dispatched yet, or by us.
            stream._local_ended = True
            raise stream._send_error() from None
        finally:
            self._schedule_flush()
        return offset

    def _local_end(self, stream: Stream) -> None:
        stream._local_ended = True
        if stream._ended:
            self._release(stream)

    def _close_stream(self, stream: Stream) -> None:
        """The caller closed ``stream`` before the exchange was over both ways."""
        if not self._closed:
            if stream._ended and not stream._local_ended:
                # The response is complete; a polite END_STREAM finishes our side.
                self._h2.end_stream(stream.stream_id)
            else:
                self._h2.reset_stream(stream.stream_id, ErrorCodes.CANCEL)
            self._schedule_flush()
        stream._local_ended = True
        self._release(stream)

    def _release(self, stream: Stream) -> None:
        if stream._released:
            return
        stream._released = True
        self._streams.pop(stream.stream_id, None)
        self._active -= 1
        self._h2.open_streams = self._active
        self._full = False
        if self._draining and not self._active:
            self._close_transport()
        elif self._on_capacity is not None:
            self._on_capacity()

    def _acknowledge(self, stream_id: int, length: int) -> None:
        """Hand ``length`` bytes of window back to the peer, at the next flush: one h2 call
        per stream per loop turn however many chunks were read."""
        if length:
            acks = self._pending_acks
            acks[stream_id] = acks.get(stream_id, 0) + length
            self._schedule_flush()

    def _apply_acks(self) -> None:
        acks, self._pending_acks = self._pending_acks, {}
        if self._closed:
            return
        acknowledge = self._h2.acknowledge_received_data
        for stream_id, length in acks.items():
            # Closed streams are fine: h2 then only credits the connection window.
            acknowledge(length, stream_id)

    # -- writing -----------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._pending_acks:
            self._apply_acks()
        data = self._h2.data_to_send()
        if self._carry:
            data, self._carry = self._carry + data, b""
        if data and self._transport is not None and not self._closed:
            self._transport.write(data)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiters, self._drain_waiters = self._drain_waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    async def _writable(self) -> None:
        if self._closed:
            raise self._error or ConnectionTerminated("connection closed")
        future = self._loop.create_future()
        self._drain_waiters.append(future)
        await future

    # -- reading -----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        h2conn = self._h2
        if self._flush_scheduled:
            # h2 drops unsent output when it reads a GOAWAY: take what is queued out of h2
            # first; the coming flush sends it ahead of anything newer.
            self._carry += h2conn.data_to_send()
        try:
            events = h2conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._protocol_error(exc)
            return
        handlers = self._handlers
        for event in events:
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)
        self._schedule_flush()

    def _on_response(self, event: h2.events.ResponseReceived) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is None:
            return
        headers: Headers = event.headers
        stream._headers = headers
        if event.stream_ended is not None:
            stream.trailers_only = True
            stream._trailers = headers
        stream._wake()

    def _on_data(self, event: h2.events.DataReceived) -> None:
        length: int = event.flow_controlled_length
        stream = self._streams.get(event.stream_id)
        if stream is None:
            # Late DATA for a stream we closed: give the window back now or it is lost.
            if length:
                self._acknowledge(event.stream_id, length)
            return
        stream._on_data(event.data, length)

    def _on_trailers(self, event: h2.events.TrailersReceived) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is not None:
            stream._trailers = event.headers

    def _on_stream_ended(self, event: h2.events.StreamEnded) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is not None:
            stream._on_end()

    def _on_stream_reset(self, event: h2.events.StreamReset) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is not None:
            stream._fail(StreamReset(int(event.error_code)))

    def _on_window_updated(self, event: h2.events.WindowUpdated) -> None:
        if event.stream_id:
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream._wake_sender()
        else:
            for stream in list(self._blocked):
                stream._wake_sender()

    def _on_settings(self, event: h2.events.RemoteSettingsChanged) -> None:
        changed = event.changed_settings
        if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in changed:
            for stream in list(self._blocked):
                stream._wake_sender()
        if not self._ready.done():
            self._ready.set_result(None)
        elif (
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS in changed
            and self._on_capacity is not None
        ):
            self._on_capacity()

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        last_stream_id = event.last_stream_id or 0
        error_code = int(event.error_code or 0)
        detail = f"GOAWAY ({_error_name(error_code)})"
        if event.additional_data:
            detail += f": {event.additional_data.decode('utf-8', 'replace')}"
        for stream_id, stream in list(self._streams.items()):
            if stream_id > last_stream_id:
                stream._fail(
                    ConnectionTerminated(
                        f"stream refused by {detail}", retryable=True, error_code=error_code
                    )
                )
        if not self._ready.done():
            self._fail_ready(ConnectError(f"connection refused by {detail}"))
        self._start_draining()

    def _start_draining(self) -> None:
        if self._draining:
            return
        self._draining = True
        if not self._active:
            self._close_transport()
        elif self._on_capacity is not None:
            self._on_capacity()

    def _protocol_error(self, exc: h2.exceptions.ProtocolError) -> None:
        """The peer broke HTTP/2: h2 queued a GOAWAY; send it and fail everything."""
        error = ConnectionTerminated(
            f"HTTP/2 protocol error from peer: {exc}", status=StatusCode.INTERNAL
        )
        self._flush()
        self._shutdown(error)
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)
        message = f"connection lost: {exc}" if exc else "connection closed by peer"
        self._shutdown(ConnectionTerminated(message))
        self._fail_ready(ConnectError(message))

    def _shutdown(self, error: TransportError) -> None:
        self._stop_timers()
        if self._closed and not self._streams:
            return
        self._closed = True
        self._error = error
        for stream in list(self._streams.values()):
            stream._fail(
                ConnectionTerminated(error.message, status=error.status)
                if isinstance(error, ConnectionTerminated)
                else error
            )
        for future in self._drain_waiters:
            if not future.done():
                future.set_exception(error)
                future.exception()
        self._drain_waiters.clear()
        if self._on_capacity is not None:
            self._on_capacity()

    # -- closing -----------------------------------------------------------------------------

    def _close_transport(self) -> None:
        self._stop_timers()
        if self._transport is not None and not self._transport.is_closing():
            self._flush()
            self._transport.close()
        self._closed = True

    def close(self) -> None:
        """Close now: GOAWAY, and every open stream fails with ConnectionTerminated."""
        if self._transport is None or self._transport.is_closing():
            self._closed = True
            return
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.close_connection()
        self._draining = True
        self._flush()
        self._shutdown(
            ConnectionTerminated("connection closed locally", status=StatusCode.CANCELLED)
        )
        self._transport.close()

    async def aclose(self) -> None:
        """Close, and wait (briefly) until the socket is gone: a TLS transport needs a few loop
        turns for its close_notify; one left behind is only freed by the GC (ResourceWarning)."""
        self.close()
        if self._transport is not None and not self._lost.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._lost), 1.0)


def _error_name(code: int) -> str:
    try:
        return ErrorCodes(code).name
    except ValueError:
        return hex(code)
