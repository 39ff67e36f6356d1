"""Hypercorn 0.18 as an HTTP/2 server fit for gRPC: :class:`GrpcH2Protocol`.

:func:`~._hypercorn_install.install` swaps :class:`GrpcH2Protocol` (a subclass of Hypercorn's
``H2Protocol``) into ``hypercorn.protocol``, the module whose ``ProtocolWrapper`` builds the
protocol of every HTTP/2 connection (ALPN h2, prior knowledge and h2c upgrade alike), so servers
started by our code and by the ``hypercorn module:app`` CLI both get it. HTTP/1.1 stays stock.
Hypercorn is not forked: the stream layer (``HTTPStream``), the ASGI plumbing, the TCP server and
the worker are stock.

What the protocol changes, and why (each has a regression test in ``tests/hypercorn/``):

a. DATA (or any other event) for a stream that is no longer in ``self.streams`` (the app answered
   before reading the whole body) raised KeyError and tore down every stream on the connection.
   Each event is now checked as it is handled; such DATA is acknowledged (so the connection
   window does not starve) and dropped.
b. ``keep_alive_max_requests`` closed HTTP/2 connections with in-flight streams unanswered. Here it
   starts a graceful drain (below) instead.
c. Head-of-line blocking: request bodies go to a per-stream buffer without awaiting, and flow
   control credit is returned only when the app's ``receive()`` takes a chunk (see
   ``_hypercorn_stream``). Bound on buffering: each stream holds at most its receive window
   (``h2_stream_window_size``, 1 MiB + 16 KiB by default; a large DATA frame is held as views
   of the reads that brought it, each at least half of its read, so at most twice that stays
   alive: ``_h2data.DataParts``), a connection at most
   ``h2_max_concurrent_streams`` times that. The connection window is made at least that large,
   so streams whose apps do not read can never starve the others of connection-level credit.
d. Graceful shutdown: when the worker's ``terminated`` event is set, every connection at once
   sends GOAWAY(NO_ERROR, 2^31-1) and a PING; when the PING is answered (every stream the client
   opened before it saw the GOAWAY has then arrived) or after a second, GOAWAY(NO_ERROR, last
   stream id). Streams opened after that are refused (RST_STREAM REFUSED_STREAM, which gRPC
   clients retry elsewhere), in-flight streams are served to the end, and the connection closes
   when idle. This is the same two-step GOAWAY as grpc-go and grpc-core servers. GOAWAY frames are
   written by hand (why: ``_hypercorn_writer``).
e. ``http.response.trailers`` with no prior ``http.response.start`` is sent as one HEADERS frame
   with END_STREAM (gRPC's trailers-only response: ``_hypercorn_writer``); ``scope["extensions"]``
   carries ``"asgi_grpc.trailers_only"`` to say so.
f. An app that dies mid-response left its stream open forever (the client waited for its
   deadline); the stream is now reset with INTERNAL_ERROR.
g. Hostile clients (tests in ``tests/hostile/test_server_h2*.py``): the h2 connection is
   :class:`~._hypercorn_h2.GrpcH2Connection` (SETTINGS first after the preface, frame lengths
   and header blocks bounded as frames arrive, one stream over the limit refused with
   REFUSED_STREAM instead of a GOAWAY); request headers and trailers are validated (RFC 9113 8.2,
   8.3: a malformed request is reset with PROTOCOL_ERROR, a header list over the advertised
   size is refused like HTTP 431, as RESOURCE_EXHAUSTED for gRPC); PINGs follow grpc-core's
   keepalive policy (GOAWAY ENHANCE_YOUR_CALM "too_many_pings"); streams reset before their
   answer spend a budget (GOAWAY ENHANCE_YOUR_CALM "too_many_resets"); frames the client provokes
   but does not read stop the read loop past ``_MAX_PENDING``; after a connection error the
   input is dropped for a second before the close, so that the GOAWAY reaches the client. See
   ``_hypercorn_limits``. Cleartext garbage instead of a request is refused by
   :class:`~._hypercorn_h11.GrpcH11Protocol`.
h. After our END_STREAM, a request the client has not ended is reset with NO_ERROR (RFC 9113
   8.1; grpc-go and grpc-core do the same), so it stops holding a slot of the stream limit
   (``_hypercorn_writer``).

Where it is: :class:`GrpcH2Protocol` (this module) holds the connection's state, set up in its
``__init__``, its lifecycle (preface, idle timer, graceful drain, aborts, close) and the read side
(h2 events to streams); the writer side (the app's response events, flow-controlled framing and
the socket writes, with what it changes for speed) is its base class
:class:`~._hypercorn_writer.H2Writer`. :func:`~._hypercorn_install.install` puts it in place.

Speed: the writer's is described in ``_hypercorn_writer``; here, the connection's idle timer is
a ``call_later`` instead of a task per request, armed once and left running while requests come
and go (``_on_idle_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hypercorn.asyncio.worker_context import WorkerContext as AsyncioWorkerContext
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.events import (
    Body,
    EndBody,
    Request,
    StreamClosed,
)
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.utils import filter_pseudo_headers
from hyperframe.frame import PingFrame

from ._h2_streams import bound_closed_streams
from ._hypercorn_config import (
    DEFAULT_CONNECTION_WINDOW,
    DEFAULT_MAX_PING_STRIKES,
    DEFAULT_MIN_PING_INTERVAL,
    DEFAULT_RESET_BURST,
    DEFAULT_RESET_RATE,
    DEFAULT_STREAM_WINDOW,
    grpc_config,
    options_to_settings,
)
from ._hypercorn_h2 import GrpcH2Connection
from ._hypercorn_limits import PingPolicy, ResetBudget, check_request_headers, check_trailers
from ._hypercorn_stream import AppSpawner, GrpcHTTPStream
from ._hypercorn_writer import (
    _DRAIN_ANNOUNCED,
    _DRAIN_FINAL,
    _DRAIN_NONE,
    H2Writer,
    _goaway,
    _Outbound,
)
from ._types import TRAILERS_ONLY_EXTENSION

__all__ = [
    "TRAILERS_ONLY_EXTENSION",
    "GrpcH2Protocol",
    "grpc_config",
    "options_to_settings",
]

_MAX_WINDOW = 2**31 - 1
_DEFAULT_WINDOW = 65_535  # RFC 9113's initial window, before any SETTINGS or WINDOW_UPDATE
_MIN_FRAME, _MAX_FRAME = 2**14, 2**24 - 1

# GOAWAY's "every stream may still arrive" id, and how long to wait for the PING that follows it.
_GOAWAY_ALL = 2**31 - 1
_DRAIN_PING = b"asgigrpc"
_DRAIN_PING_TIMEOUT = 1.0

# Frames the read loop makes the server send (SETTINGS and PING acks, RST_STREAMs, WINDOW_UPDATEs)
# wait for the writer; once this many bytes of them wait (the client is not reading), the read loop
# waits too, so a client cannot grow them without bound (grpc-core: max_pending_induced_frames).
_MAX_PENDING = 256 * 1024

# After a connection error, how long the client's input is read and dropped before the close.
_LINGER = 1.0

# Fairness between connections. A read (up to 64 KiB) is handed to h2 in one piece, which for
# a flood of tiny frames (empty DATA, SETTINGS, WINDOW_UPDATE: 9 bytes each) is ~7,000 frames
# and a few hundred ms of Python with no turn for any other connection. So once a read yielded
# more than _DENSE_EVENTS events, the connection's next reads are handed over _DENSE_SLICE bytes
# at a time, with a turn of the event loop between pieces; a connection of ordinary frames (a
# few events per read) pays nothing for it.
_DENSE_EVENTS = 256
_DENSE_SLICE = 4096

# What a connection reads from its socket at a time, and the StreamReader's limit
# (start_server's ``limit``: reading pauses past twice that). With 64 KiB reads and asyncio's
# 64 KiB limit, a 1 MiB message took 16+ reads, each a StreamReader wake-up, a task step, a trip
# through Hypercorn and h2, and the transport paused and resumed reading (two epoll_ctl calls)
# for every 256 KiB it received. Connections are now read through _hypercorn_tcp.SocketInput
# (whatever the transport reads at a time, 256 KiB, with the same limits); these still apply to
# a connection it leaves to the StreamReader (Hypercorn's MAX_RECV, set by install).
READ_SIZE = 256 * 1024
# Reads larger than this are handed to h2 this much at a time (the flood check's unit).
_READ_SLICE = 64 * 1024


_REFUSED_GRPC = [
    (b":status", b"200"),
    (b"content-type", b"application/grpc"),
    (b"grpc-status", b"8"),  # RESOURCE_EXHAUSTED, as grpc-core answers oversized metadata
    (b"grpc-message", b"request metadata is larger than the server's limit"),
]
_REFUSED_HTTP = [(b":status", b"431")]


class GrpcH2Protocol(H2Writer):
    """Hypercorn's HTTP/2 protocol with the fixes and speed-ups listed in the module docstring
    (its writer side, the base class :class:`~._hypercorn_writer.H2Writer`, in that module's).

    Only for the asyncio worker (it uses asyncio futures directly); under any other worker,
    constructing it returns a stock ``H2Protocol``.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        context = kwargs.get("context", args[2] if len(args) > 2 else None)
        if not isinstance(context, AsyncioWorkerContext):
            return H2Protocol(*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config: Config = self.config
        # Our own headers are built by Hypercorn (lower-cased and validated there), so h2 need
        # not validate and normalise them again on every HEADERS frame.
        max_header_list = int(config.h2_max_header_list_size)
        self._max_header_list = max_header_list
        self.connection: GrpcH2Connection = GrpcH2Connection(
            h2.config.H2Configuration(
                client_side=False,
                header_encoding=None,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
                # grpcio clients send metadata values as given, spaces at either end included;
                # h2's inbound checks would fail the whole connection on one such value, where
                # grpcio's server accepts it. check_request_headers and check_trailers validate
                # instead (one pass; a malformed request resets its stream only).
                validate_inbound_headers=False,
            ),
            max_header_list,
        )
        bound_closed_streams(self.connection)  # h2 keeps 65,536 closed streams (see _h2_streams)
        max_streams = int(config.h2_max_concurrent_streams)
        stream_window = min(
            int(getattr(config, "h2_stream_window_size", DEFAULT_STREAM_WINDOW)),
            _MAX_WINDOW // max(1, max_streams),
        )
        self._connection_window = min(
            _MAX_WINDOW,
            max(
                int(getattr(config, "h2_connection_window_size", DEFAULT_CONNECTION_WINDOW)),
                stream_window * max_streams,
            ),
        )
        # Hypercorn sets ``DEFAULT_MAX_INBOUND_FRAME_SIZE``, which h2 never reads: h2 announces
        # SETTINGS_MAX_FRAME_SIZE from ``local_settings`` and enforces ``max_inbound_frame_size``.
        frame_size = max(_MIN_FRAME, min(int(config.h2_max_inbound_frame_size), _MAX_FRAME))
        codes = h2.settings.SettingCodes
        self.connection.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                codes.MAX_CONCURRENT_STREAMS: max_streams,
                codes.MAX_HEADER_LIST_SIZE: max_header_list,
                codes.ENABLE_CONNECT_PROTOCOL: 1,
                codes.INITIAL_WINDOW_SIZE: stream_window,
                codes.MAX_FRAME_SIZE: frame_size,
            },
        )
        self.connection.max_inbound_frame_size = frame_size

        self._loop = asyncio.get_running_loop()
        self._out: dict[int, _Outbound] = {}
        self._ready: deque[int] = deque()  # round-robin of streams with framable data
        # Bytes to write, in order (response payloads as views of the app's chunks).
        self._pending: list[bytes | memoryview] = []
        self._unwritten = 0  # response messages and ends queued since the last write
        self._wake = asyncio.Event()  # wakes the writer
        self._seen_request = False
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_since: float | None = None  # when the last stream ended; None while busy
        self._drain = _DRAIN_NONE
        self._drain_timer: asyncio.TimerHandle | None = None
        self._last_stream_id = _GOAWAY_ALL
        self._final_goaway_sent = False
        self._terminated_waiter: asyncio.Future[Any] | None = None
        self._written = asyncio.Event()  # the writer has written what was pending
        self._pings = PingPolicy(
            float(getattr(config, "h2_min_ping_interval_without_data", DEFAULT_MIN_PING_INTERVAL)),
            int(getattr(config, "h2_max_ping_strikes", DEFAULT_MAX_PING_STRIKES)),
            bool(getattr(config, "h2_keepalive_permit_without_calls", False)),
        )
        self._resets = ResetBudget(
            int(getattr(config, "h2_max_reset_burst", DEFAULT_RESET_BURST)),
            float(getattr(config, "h2_reset_rate", DEFAULT_RESET_RATE)),
        )
        self._refused = 0  # streams h2 refused over the stream limit, counted so far
        self._dense = False  # the last read was a burst of tiny frames (see _DENSE_EVENTS)
        self._spawner: AppSpawner | None = None  # spawns the apps of GrpcHTTPStreams
        self._aborted = False  # a connection error was sent: input is dropped until the close
        self._linger: asyncio.TimerHandle | None = None
        self._closing: asyncio.Future[None] | None = None
        self._writing = False  # a write to the socket is under way
        # Streams whose app listens for request input (body-listen extension) and got some in
        # the read being handled: told once its events are (_handle_events).
        self._listeners: list[GrpcHTTPStream] = []
        # What each GrpcHTTPStream gets (bound once, not per stream).
        self._stream_hooks = (
            (self.push_body, self.flush_now),
            self._listeners.append,
            self.respond,
        )

    # -- lifecycle -------------------------------------------------------------------------------

    async def initiate(
        self, headers: list[tuple[bytes, bytes]] | None = None, settings: bytes | None = None
    ) -> None:
        if settings is not None:
            self.connection.initiate_upgrade_connection(settings)
        else:
            self.connection.initiate_connection()
        if self._connection_window > _DEFAULT_WINDOW:
            self.connection.increment_flow_control_window(self._connection_window - _DEFAULT_WINDOW)
        await self.send(RawData(data=self.connection.data_to_send()))
        self.task_group.spawn(self.send_task)
        # Outside the connection's task group (which would wait for it); cancelled on close.
        terminated = asyncio.ensure_future(self.context.terminated.wait())
        terminated.add_done_callback(self._on_terminated)
        self._terminated_waiter = terminated
        if headers is not None:  # h2c upgrade: the HTTP/1.1 request becomes stream 1
            await self._request_received(h2.events.RequestReceived(stream_id=1, headers=headers))
            if 1 in self.streams:
                await self.streams[1].handle(EndBody(stream_id=1))
                self._notify_listeners()

    def _on_terminated(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and not self.closed:
            self._begin_drain()

    def _begin_drain(self) -> None:
        """Step one of the graceful close: GOAWAY(2^31-1) and a PING (see module docstring)."""
        if self._drain != _DRAIN_NONE or self.closed:
            return
        self._drain = _DRAIN_ANNOUNCED
        self._pull()
        self._pending.append(_goaway(_GOAWAY_ALL))
        self._pending.append(bytes(PingFrame(0, opaque_data=_DRAIN_PING).serialize()))
        self._drain_timer = self._loop.call_later(_DRAIN_PING_TIMEOUT, self._drain_final)
        self._wake.set()

    def _drain_final(self) -> None:
        """Step two: GOAWAY with the last stream we serve; the writer closes once idle."""
        if self._drain != _DRAIN_ANNOUNCED or self.closed:
            return
        self._drain = _DRAIN_FINAL
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        self._last_stream_id = self.connection.highest_inbound_stream_id
        self._pull()
        self._pending.append(_goaway(self._last_stream_id))
        self._final_goaway_sent = True
        self._wake.set()

    def _on_idle_timeout(self) -> None:
        """The idle timer: armed when the connection first goes idle and left running while
        requests come and go (a TimerHandle per request would be made and cancelled each time,
        and each new one at the head of the loop's timers wakes a waiting loop: asgi_grpc/_wake.py);
        when it fires early it is armed again for the rest of the current idle spell."""
        self._idle_timer = None
        since = self._idle_since
        if since is None or self.streams or self.closed:
            return  # busy: armed again when it goes idle
        remaining = since + float(self.config.keep_alive_timeout) - self._loop.time()
        if remaining > 0:
            self._idle_timer = self._loop.call_later(remaining, self._on_idle_timeout)
        else:
            self._begin_drain()

    async def handle(self, event: Event) -> None:
        if isinstance(event, RawData):
            data = event.data
            start = 0
            if not self._dense:
                if len(data) <= _READ_SLICE:
                    self._dense = await self._receive(data) > _DENSE_EVENTS
                    return
                # A large read (see READ_SIZE): _READ_SLICE at a time, so that a flood of tiny
                # frames is noticed as soon as with reads of that size.
                view = memoryview(data)  # (h2 copies what it is given into its buffer)
                gathering = self.connection.incoming_buffer.gathering
                while start < len(data):
                    # Bytes that only continue a large DATA frame being gathered cannot hide
                    # a flood: they go in one piece (a 1 MiB request took 16 trips through h2
                    # and the event handling, most of them for a piece of one frame).
                    size = max(_READ_SLICE, gathering())
                    count = await self._receive(view[start : start + size])
                    start += size
                    if count < 0:
                        return
                    if count > _DENSE_EVENTS:
                        self._dense = True
                        break
                if start >= len(data):
                    return
            # A burst of tiny frames: a piece at a time, other connections served in between.
            events = 0
            for piece in range(start, len(data), _DENSE_SLICE):
                if piece:
                    await asyncio.sleep(0)
                count = await self._receive(data[piece : piece + _DENSE_SLICE])
                if count < 0:
                    return
                events += count
            self._dense = events > _DENSE_EVENTS
        elif isinstance(event, Closed):
            await self._on_closed()

    async def _receive(self, data: bytes | memoryview) -> int:
        """Hand ``data`` to h2 and handle its events; their number, -1 once the connection ended."""
        if self.closed or self._aborted:
            return -1  # after a connection error: dropped (see _abort)
        try:
            events = self.connection.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            # h2 has queued a GOAWAY with the error; send it, then close.
            await self._abort(None, str(error).encode("latin-1", "replace")[:256])
            return -1
        refused = self.connection.refused_streams
        if refused != self._refused:
            count, self._refused = refused - self._refused, refused
            if not self._resets.spend(self._loop.time(), count):
                await self._abort(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, b"too_many_resets")
                return -1
        await self._handle_events(events)
        if self._pending and sum(map(len, self._pending)) > _MAX_PENDING:
            # The client sends faster than it reads what it provokes: stop reading from it
            # until the writer has caught up (TCP then slows the client down).
            self._written.clear()
            self._wake.set()
            await self._written.wait()
        return len(events)

    async def _abort(self, error_code: int | None, debug: bytes) -> None:
        """End the connection with GOAWAY(``error_code``, the last stream id) and close.

        ``error_code`` None: h2 has already queued the GOAWAY (it raised a ProtocolError).
        Closing a socket with unread input makes the kernel send a TCP RST, and a client that
        gets the RST before it has read the GOAWAY loses it (and the reason). So the input is
        read and dropped for a moment (a "lingering close") before the socket is closed.
        """
        if self.closed or self._aborted:
            return
        self._aborted = True
        self._pull()
        if error_code is not None:
            self._pending.append(
                _goaway(self.connection.highest_inbound_stream_id, error_code, debug)
            )
        self._final_goaway_sent = True
        with contextlib.suppress(Exception):
            # Bounded: a client that does not read would otherwise keep us here.
            await asyncio.wait_for(self._write_pending(), _DRAIN_PING_TIMEOUT)
        self._linger = self._loop.call_later(_LINGER, self._close_after_linger)

    def _close_after_linger(self) -> None:
        if not self.closed:
            self._closing = asyncio.ensure_future(self.send(Closed()))

    async def _on_closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._written.set()
        for timer in (self._idle_timer, self._drain_timer, self._linger):
            if timer is not None:
                timer.cancel()
        if self._terminated_waiter is not None:
            self._terminated_waiter.cancel()
        # Last words, if the socket still takes them: what is already framed, and a GOAWAY so
        # that a client racing a new request against an idle close knows it was not processed.
        self._pull()
        if not self._final_goaway_sent:
            self._final_goaway_sent = True
            self._pending.append(_goaway(self.connection.highest_inbound_stream_id))
        if not self._writing:
            # Not while a write is under way: this is then either that write failing (the
            # server's send lock is held by our own caller: writing again would deadlock, and
            # the streams below would never close) or a peer that stopped reading.
            with contextlib.suppress(Exception):
                await self._write_pending()
        for stream_id in list(self.streams):
            await self._close_stream(stream_id)
        for out in self._out.values():
            out.release()
        self._out.clear()
        self._ready.clear()
        self._wake.set()

    # -- the read side ---------------------------------------------------------------------------

    async def _handle_events(self, events: list[h2.events.Event]) -> None:
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                stream_id = event.stream_id
                stream = self.streams.get(stream_id)
                if isinstance(stream, GrpcHTTPStream):
                    stream.feed(event.data, event.flow_controlled_length)
                elif stream is None:
                    # The app has already finished this stream (e.g. it answered without reading
                    # the body): drop the data, but give the connection its credit back (not
                    # the stream: that would only ask for more data nobody reads).
                    self._discarded(event.flow_controlled_length)
                else:  # (a large frame's DataParts joined: Hypercorn's streams take bytes)
                    await stream.handle(Body(stream_id=stream_id, data=bytes(event.data)))
                    self._consumed(stream_id, event.flow_controlled_length)
            elif isinstance(event, h2.events.WindowUpdated):
                # Second: grpcio's clients send two (connection and stream) with every message
                # after one they received.
                self._reschedule(event.stream_id)
            elif isinstance(event, h2.events.RequestReceived):
                if not self._refuse_bad_request(event):
                    await self._request_received(event)
            elif isinstance(event, h2.events.StreamEnded):
                stream = self.streams.get(event.stream_id)
                if isinstance(stream, GrpcHTTPStream):
                    stream.end()
                elif stream is not None:
                    await stream.handle(EndBody(stream_id=event.stream_id))
            elif isinstance(event, h2.events.StreamReset):
                reset = self._out.pop(event.stream_id, None)
                if reset is not None:
                    reset.release()
                    # Reset by the client before we answered it: count it against the
                    # rapid-reset budget.
                    if event.remote_reset and not self._resets.spend(self._loop.time()):
                        await self._abort(
                            h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, b"too_many_resets"
                        )
                        return
                await self._close_stream(event.stream_id)
            elif isinstance(event, h2.events.TrailersReceived):
                reason = check_trailers(event.headers)
                if reason is not None:
                    await self._malformed(event.stream_id)
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                    self._reschedule(None)
            elif isinstance(event, h2.events.PingReceived):
                if self._pings.received(self._loop.time(), bool(self.streams)):
                    await self._abort(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, b"too_many_pings")
                    return
            elif isinstance(event, h2.events.PingAckReceived):
                if event.ping_data == _DRAIN_PING:
                    self._drain_final()
            elif isinstance(event, h2.events.ConnectionTerminated):
                # h2 refuses to send anything once it has received a GOAWAY, so in-flight
                # streams cannot be answered: close, as stock Hypercorn does.
                await self.send(Closed())
                return
            # PriorityUpdated is ignored: RFC 9113 deprecates stream priorities.
        if self._listeners:
            self._notify_listeners()
        self._pull()
        if self._pending:
            self._wake.set()

    def _notify_listeners(self) -> None:
        listeners = self._listeners
        while listeners:
            batch = listeners[:]
            listeners.clear()
            for stream in batch:
                stream.notify_listener()

    def _refuse_bad_request(self, event: h2.events.RequestReceived) -> bool:
        """Refuse a request whose headers are malformed or too large; True if refused.

        Not for the HTTP/1.1 request of an h2c upgrade, which h11 has parsed (and whose
        headers Hypercorn turns into an HTTP/2 request of its own shape).
        """
        refusal = check_request_headers(event.headers, self._max_header_list)
        if refusal is None:
            return False
        stream_id = event.stream_id
        if not refusal.too_large:
            # Malformed (RFC 9113 8.1.1): a stream error, the connection carries on.
            self.connection.reset_stream(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return True
        # Over the advertised SETTINGS_MAX_HEADER_LIST_SIZE (but decodable): refuse this request
        # alone, as HTTP 431 (RFC 9113 10.5.1), which for gRPC is RESOURCE_EXHAUSTED as
        # grpc-core answers; then reset the request if it is still open.
        grpc = any(
            name == b"content-type" and value.startswith(b"application/grpc")
            for name, value in event.headers
        )
        self._pings.reset()
        self.connection.send_headers(
            stream_id, _REFUSED_GRPC if grpc else _REFUSED_HTTP, end_stream=True
        )
        self._end_request(stream_id)
        return True

    async def _request_received(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        if self._drain == _DRAIN_FINAL and stream_id > self._last_stream_id:
            # Opened after our final GOAWAY: never processed, so the client may retry it.
            self.connection.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        await self._create_stream(event)
        if not self._seen_request:
            # Stops TCPServer's idle task for good: from here our own timer (call_later, no task
            # per request) closes the connection gracefully after keep_alive_timeout idle.
            self._seen_request = True
            await self.send(Updated(idle=False))
        self._idle_since = None
        if self.keep_alive_requests >= self.config.keep_alive_max_requests or (
            self.context.terminated.is_set()
        ):
            self._begin_drain()

    async def _malformed(self, stream_id: int) -> None:
        """RST_STREAM PROTOCOL_ERROR for a malformed message on an open stream; the app sees
        the stream close (http.disconnect)."""
        out = self._out.pop(stream_id, None)
        if out is not None:
            out.release()
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.connection.reset_stream(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
        await self._close_stream(stream_id)

    async def _create_stream(self, request: h2.events.RequestReceived) -> None:
        # check_request_headers has checked the pseudo-headers, which come first.
        method = raw_path = None
        for name, value in request.headers:
            if name == b":method":
                method = value.decode("latin-1").upper()
            elif name == b":path":
                raw_path = value
            elif name[:1] != b":":
                break
        if method is None or raw_path is None:  # plain CONNECT (a tunnel): not served
            self.connection.reset_stream(request.stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        stream_id = request.stream_id
        args = (
            self.app,
            self.config,
            self.context,
            self.task_group,
            self.ssl,
            self.client,
            self.server,
            self.stream_send,
            stream_id,
        )
        stream: GrpcHTTPStream | WSStream
        if method == "CONNECT":
            stream = WSStream(*args)
        else:
            spawner = self._spawner
            if spawner is None:
                spawner = self._spawner = AppSpawner(self.task_group)
            stream = GrpcHTTPStream(
                self.app,
                self.config,
                self.context,
                spawner,  # type: ignore[arg-type]  # the part of a TaskGroup streams use
                self.ssl,
                self.client,
                self.server,
                self.stream_send,
                stream_id,
                consumed=self._consumed,
                push_body=self._stream_hooks[0],
                listen_later=self._stream_hooks[1],
                respond=self._stream_hooks[2],
            )
        self.streams[stream_id] = stream
        self._out[stream_id] = _Outbound()
        await stream.handle(
            Request(
                stream_id=stream_id,
                headers=filter_pseudo_headers(request.headers),
                http_version="2",
                method=method,
                raw_path=raw_path,
                state=self.connection_state,
            )
        )
        self.keep_alive_requests += 1
        await self.context.mark_request()
        if stream.closed:  # refused at once (server_names): it never sends StreamClosed
            await self._close_stream(stream_id)

    def _consumed(self, stream_id: int, flow_controlled_length: int) -> None:
        """Give ``flow_controlled_length`` bytes of credit back to the peer (connection and
        stream, the WINDOW_UPDATEs batched: ``FastH2Connection.acknowledge_received``)."""
        if self.closed or flow_controlled_length <= 0:
            return
        self.connection.acknowledge_received(flow_controlled_length, stream_id)
        self._queue_credit()

    def _discarded(self, flow_controlled_length: int) -> None:
        """Credit the connection only, for ``flow_controlled_length`` bytes dropped unread."""
        if self.closed or flow_controlled_length <= 0:
            return
        self.connection.credit_connection(flow_controlled_length)
        self._queue_credit()

    def _queue_credit(self) -> None:
        # The WINDOW_UPDATEs h2 framed, if any, for the writer's next turn.
        data = self.connection.data_to_send()
        if data:
            self._pending.append(data)
            self._wake.set()

    async def _close_stream(self, stream_id: int) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return
        out = self._out.get(stream_id)
        if out is not None and not out.ended and out.trailers is None and not self.closed:
            if isinstance(stream, WSStream):
                # A WebSocket closed by the client ends without EndData: end the stream after
                # what is queued (its close frame), as the RFC 8441 stream should.
                out.ended = True
                self._schedule(stream_id, out)
            else:
                # The app finished without ending its response (it crashed mid-body): tell
                # the client, instead of leaving the stream open forever.
                del self._out[stream_id]
                out.release()
                with contextlib.suppress(h2.exceptions.ProtocolError):
                    self.connection.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                    self._wake.set()
        await stream.handle(StreamClosed(stream_id=stream_id))
        # After the stream's last credit (StreamClosed gives back what it had buffered): later
        # DATA on it only credits the connection (_discarded).
        self.connection.forget_credit(stream_id)
        if not self.streams and not self.closed:
            if self._drain == _DRAIN_FINAL:
                self._wake.set()  # the writer closes once the last bytes are out
            elif self._drain == _DRAIN_NONE:
                self._idle_since = self._loop.time()
                if self._idle_timer is None:
                    self._idle_timer = self._loop.call_later(
                        float(self.config.keep_alive_timeout), self._on_idle_timeout
                    )
