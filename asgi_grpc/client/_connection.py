"""One HTTP/2 client connection on h2: full-duplex streams with trailers and flow control.

Why our own and not httpcore's: stock httpx drops trailers, sends a whole request body before
reading the response, runs one stream at a time against servers that name no stream limit, and
never acknowledges DATA that arrives for streams it has given up on (ARCHITECTURE.md).

Shape:

- :class:`Connection` is an :class:`asyncio.Protocol`. ``data_received`` feeds bytes straight
  into h2 and demultiplexes the events to per-stream state, with no reader task between the
  socket and the streams.
- Writes are coalesced: every operation only queues frames (in h2, or for DATA, a header and
  a view of the payload in ``_out``: no copies, see :mod:`asgi_grpc._h2data`), and one
  ``call_soon`` flush per loop turn hands them to the socket in a single ``write``. Streams
  woken by a read run before that flush, so the frames they queue in reaction leave in the
  same write as the acks.
  A burst (64 calls answered in one read start 64 new ones in one turn) is written every
  :data:`_WRITE_EVERY` request messages instead of at the end of the turn, so that the server
  works on the first requests while we produce the rest: with one write per turn both sides
  took turns, each idle while the other worked (bench/README.md, "what bought what").
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
  the last one ends (h2's own GOAWAY handling would break them: see :mod:`._h2`).
- A response whose END_STREAM comes before ours (a gRPC server ending a call with its status
  while we could still send) gets RST_STREAM(NO_ERROR) at once, so it stops counting against
  the peer's stream limit; a response header block over our limit fails its stream only.

Around it: :mod:`._stream` (the per-stream state and API), :mod:`._h2` (h2 configuration,
framing and flow control), :mod:`._keepalive` (grpc-core's keepalive policy) and
:mod:`._settings` (our tuning, from grpc channel options).

Errors reach callers only as the classes in :mod:`._transport_errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Any, cast

import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes

from .._core import Headers, StatusCode
from ._address import Address, UnixAddress
from ._h2 import (
    H2_CONFIG,
    GoawayTolerantStateMachine,
    H2Connection,
    error_name,
    header_list_size,
    send_windowed,
)
from ._keepalive import Keepalive
from ._settings import ConnectionSettings
from ._stream import Stream
from ._transport_errors import (
    ConnectError,
    ConnectionTerminated,
    StreamReset,
    TransportError,
)

__all__ = ["Connection", "ConnectionSettings", "Stream"]

_DEFAULT_WINDOW = 65535
#: How long a TLS close waits for the peer's close_notify before aborting the socket.
_TLS_CLOSE_GRACE = 0.02
#: Request messages queued in one loop turn before they are written without waiting for its end.
_WRITE_EVERY = 16


class Connection(asyncio.Protocol):
    """A client HTTP/2 connection. Make one with :meth:`connect`, open streams with
    :meth:`start_stream` (the pool does both)."""

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        on_capacity: Callable[[], None] | None = None,
        on_goaway: Callable[[Connection, int, bytes], None] | None = None,
        name: str = "",
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._settings = settings
        self._on_capacity = on_capacity
        self._on_goaway_cb = on_goaway
        self.name = name
        h2conn = H2Connection(H2_CONFIG, settings.max_header_list_size)
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
        h2conn.state_machine = GoawayTolerantStateMachine()
        self._h2 = h2conn
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, Stream] = {}
        self._blocked: set[Stream] = set()  # streams waiting for send window
        self._active = 0  # streams h2 counts as open
        self._ready: asyncio.Future[None] = self._loop.create_future()
        self._lost: asyncio.Future[None] = self._loop.create_future()  # connection_lost ran
        self._flush_scheduled = False
        self._unwritten = 0  # request messages queued since the last write
        self._pending_acks: dict[int, int] = {}
        # Output not yet written, in order: what was taken out of h2 (before a read, or ahead
        # of a DATA frame), DATA frame headers and request payloads (views, not copies).
        self._out: list[bytes | memoryview] = []
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closed = False
        self._full = False  # h2 refused a stream for the peer's limit; cleared on a release
        self._draining = False  # GOAWAY received or sent, or stream ids used up: no new streams
        self._error: TransportError | None = None
        #: A stream got response headers here: the peer serves (resets the pool's backoff).
        self.proven = False
        #: Why the connection stopped taking streams (GOAWAY, close), for the pool's errors.
        self.end_reason = ""
        #: Loop times the peer's SETTINGS arrived and the connection stopped taking streams.
        self.ready_at: float | None = None
        self.ended_at: float | None = None
        self.pings_without_data = 0  # reset by every HEADERS or DATA we send
        self.pinged = False  # a keepalive ping went out
        self._keepalive = Keepalive(self, settings, self._loop)
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
        on_goaway: Callable[[Connection, int, bytes], None] | None = None,
    ) -> Connection:
        """Connect, speak the HTTP/2 preface, and return once the peer's SETTINGS are in
        (so its stream limit is known before the first stream). Fails with ConnectError."""
        settings = settings or ConnectionSettings()
        loop = asyncio.get_running_loop()
        connection = cls(settings, on_capacity=on_capacity, on_goaway=on_goaway, name=str(address))
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
        # A stream transport, but not always an asyncio.Transport subclass (uvloop's is not).
        transport = cast(asyncio.Transport, transport)
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
        self._keepalive.start()

    # -- keepalive (the policy is in ._keepalive) ----------------------------------------------

    def send_ping(self, data: bytes) -> None:
        if not self._closed:
            self.pinged = True
            self._h2.ping(data)
            self._schedule_flush()

    def _on_ping_ack(self, event: h2.events.PingAckReceived) -> None:
        self._keepalive.acknowledged(event.ping_data)

    def keepalive_expired(self, timeout: float) -> None:
        """The keepalive watchdog fired: the peer is gone without a word."""
        self.end_reason = f"keepalive ping not answered within {timeout}s"
        self._shutdown(ConnectionTerminated(self.end_reason))
        if self._transport is not None:
            self._transport.abort()

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
            and self._active < self._h2.max_streams
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
        self.pings_without_data = 0
        if end_stream:
            stream._local_ended = True
        self._schedule_flush()
        return stream

    def _send_data(self, stream: Stream, data: bytes, offset: int, end_stream: bool) -> int:
        """Queue as much of ``data[offset:]`` as the windows allow; return the new offset."""
        try:
            offset = send_windowed(self._h2, stream.stream_id, data, offset, end_stream, self._out)
            if end_stream and offset >= len(data):
                self._local_end(stream)
            self._unwritten += 1
            if self._unwritten >= _WRITE_EVERY:
                self._write()
        except h2.exceptions.StreamClosedError:
            # Reset by the peer in an event we have not dispatched yet, or by us.
            stream._local_ended = True
            raise stream._send_error() from None
        finally:
            self.pings_without_data = 0
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

    def _reset_stream(self, stream: Stream, error_code: int) -> None:
        """Reset our side of ``stream`` (its response may still be read)."""
        stream._local_ended = True
        if not self._closed:
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                self._h2.reset_stream(stream.stream_id, error_code)
            self._schedule_flush()
        stream._wake_sender()

    def _release(self, stream: Stream) -> None:
        if stream._released:
            return
        stream._released = True
        self._streams.pop(stream.stream_id, None)
        self._h2.forget_credit(stream.stream_id)
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
        acknowledge = self._h2.acknowledge_received
        for stream_id, length in acks.items():
            # Closed streams are fine: only the connection window is credited.
            acknowledge(length, stream_id)

    # -- writing -----------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._write()

    def _write(self) -> None:
        """Hand everything queued to the socket (the scheduled flush still runs)."""
        self._unwritten = 0
        if self._pending_acks:
            self._apply_acks()
        out = self._out
        h2conn = self._h2
        if h2conn._data_to_send:
            out.append(h2conn.data_to_send())
        if not out:
            return
        # The one copy of the request payloads: into the bytes handed to the socket.
        first = out[0]
        data = first if len(out) == 1 and isinstance(first, bytes) else b"".join(out)
        out.clear()
        if self._transport is not None and not self._closed:
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
        if self._flush_scheduled and h2conn._data_to_send:
            # h2 drops unsent output when it reads a GOAWAY: take what is queued out of h2
            # first; the coming flush sends it ahead of anything newer.
            self._out.append(h2conn.data_to_send())
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
        if header_list_size(headers) > self._settings.max_header_list_size:
            self._refuse_headers(stream, headers)
            return
        self.proven = True
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
            headers: Headers = event.headers
            if header_list_size(headers) > self._settings.max_header_list_size:
                self._refuse_headers(stream, headers)
            else:
                stream._trailers = headers

    def _refuse_headers(self, stream: Stream, headers: Headers) -> None:
        """A header block over our limit fails its stream only (RESOURCE_EXHAUSTED, as
        grpcio), with RST_STREAM(CANCEL) so the peer stops sending; the connection stays."""
        limit = self._settings.max_header_list_size
        size = header_list_size(headers)
        if not stream._ended:
            self._reset_stream(stream, ErrorCodes.CANCEL)
        stream._fail(
            StreamReset(
                ErrorCodes.CANCEL,
                f"received metadata size exceeds limit ({size} vs. {limit})",
                status=StatusCode.RESOURCE_EXHAUSTED,
            )
        )

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
            self.ready_at = self._loop.time()
        elif (
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS in changed
            and self._on_capacity is not None
        ):
            self._on_capacity()

    def _on_goaway(self, event: h2.events.ConnectionTerminated) -> None:
        last_stream_id = event.last_stream_id or 0
        error_code = int(event.error_code or 0)
        detail = f"GOAWAY ({error_name(error_code)})"
        if event.additional_data:
            detail += f": {event.additional_data.decode('utf-8', 'replace')}"
        self.end_reason = f"connection refused by {detail}"
        for stream_id, stream in list(self._streams.items()):
            if stream_id > last_stream_id:
                stream._fail(
                    ConnectionTerminated(
                        f"stream refused by {detail}", retryable=True, error_code=error_code
                    )
                )
        if not self._ready.done():
            self._fail_ready(ConnectError(self.end_reason))
        self._start_draining()
        if self._on_goaway_cb is not None:
            self._on_goaway_cb(self, error_code, event.additional_data or b"")

    def _ended(self) -> None:
        if self.ended_at is None:
            self.ended_at = self._loop.time()

    def _start_draining(self) -> None:
        self._ended()
        if self._draining:
            return
        self._draining = True
        if not self._active:
            self._close_transport()
        elif self._on_capacity is not None:
            self._on_capacity()

    def _protocol_error(self, exc: h2.exceptions.ProtocolError) -> None:
        """The peer broke HTTP/2: h2 queued a GOAWAY; send it and fail everything."""
        self.end_reason = f"HTTP/2 protocol error from peer: {exc}"
        error = ConnectionTerminated(self.end_reason, status=StatusCode.INTERNAL)
        self._flush()
        self._shutdown(error)
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)
        message = f"connection lost: {exc}" if exc else "connection closed by peer"
        if not self.end_reason:
            self.end_reason = message
        self._shutdown(ConnectionTerminated(message))
        self._fail_ready(ConnectError(message))

    def _shutdown(self, error: TransportError) -> None:
        self._ended()
        self._keepalive.stop()
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
        self._keepalive.stop()
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
        """Close, and wait until the socket is gone, so that none is left to the GC
        (ResourceWarning).

        Over TLS, asyncio's close sends our close_notify and then waits for the peer's, which
        grpcio's server never sends (a 1 s wait per channel close): after a short grace for
        peers that do answer, the transport is aborted; our GOAWAY and close_notify have been
        handed to the socket by then.
        """
        self.close()
        transport = self._transport
        if transport is None or self._lost.done():
            return
        lost = asyncio.shield(self._lost)
        with contextlib.suppress(asyncio.TimeoutError):
            if transport.get_extra_info("ssl_object") is None:
                await asyncio.wait_for(lost, 1.0)
                return
            await asyncio.wait_for(lost, _TLS_CLOSE_GRACE)
        if not self._lost.done():
            transport.abort()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._lost), 1.0)
