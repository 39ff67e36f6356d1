"""Hypercorn 0.18 as an HTTP/2 server fit for gRPC: :func:`install` and :func:`grpc_config`.

:func:`install` swaps :class:`GrpcH2Protocol` (a subclass of Hypercorn's ``H2Protocol``) into
``hypercorn.protocol``, the module whose ``ProtocolWrapper`` builds the protocol of every HTTP/2
connection (ALPN h2, prior knowledge and h2c upgrade alike), so servers started by our code and by
the ``hypercorn module:app`` CLI both get it. HTTP/1.1 stays stock. Hypercorn is not forked: the
stream layer (``HTTPStream``), the ASGI plumbing, the TCP server and the worker are stock.

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
   (``h2_stream_window_size``, 1 MiB by default), a connection at most
   ``h2_max_concurrent_streams`` times that. The connection window is made at least that large,
   so streams whose apps do not read can never starve the others of connection-level credit.
d. Graceful shutdown: when the worker's ``terminated`` event is set, every connection at once
   sends GOAWAY(NO_ERROR, 2^31-1) and a PING; when the PING is answered (every stream the client
   opened before it saw the GOAWAY has then arrived) or after a second, GOAWAY(NO_ERROR, last
   stream id). Streams opened after that are refused (RST_STREAM REFUSED_STREAM, which gRPC
   clients retry elsewhere), in-flight streams are served to the end, and the connection closes
   when idle. This is the same two-step GOAWAY as grpc-go and grpc-core servers. GOAWAY frames are
   written by hand, because h2's ``close_connection`` moves its state machine to CLOSED, after
   which no in-flight stream could be answered.
e. ``http.response.trailers`` with no prior ``http.response.start`` is sent as one HEADERS frame
   with END_STREAM (gRPC's trailers-only response); ``scope["extensions"]`` carries
   ``"asgi_grpc.trailers_only"`` to say so.
f. An app that dies mid-response left its stream open forever (the client waited for its
   deadline); the stream is now reset with INTERNAL_ERROR.

Speed (see ``bench/hypercorn_raw.py``): a single writer task frames DATA round-robin over the
streams that have data (no ``priority`` tree: RFC 9113 deprecates priorities) in frames as large as
the window and the peer's frame size allow, coalescing small chunks, and writes everything produced
in a loop turn with one socket write; h2 does not re-validate or normalise the headers we send;
the connection's idle timer is armed and disarmed with ``call_later`` instead of a task per request.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
from collections import deque
from importlib.metadata import version
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hypercorn.protocol
import hyperframe.frame
from hypercorn.asyncio.worker_context import WorkerContext as AsyncioWorkerContext
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.events import (
    Body,
    Data,
    EndBody,
    EndData,
    InformationalResponse,
    Request,
    Response,
    StreamClosed,
    Trailers,
)
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.utils import filter_pseudo_headers
from hyperframe.frame import GoAwayFrame, PingFrame

from ._h2_streams import bound_closed_streams
from ._hypercorn_stream import TRAILERS_ONLY_EXTENSION, GrpcHTTPStream, TrailersOnly

__all__ = [
    "TRAILERS_ONLY_EXTENSION",
    "GrpcH2Protocol",
    "grpc_config",
    "install",
    "is_installed",
]

_SUPPORTED = "0.18."

MiB = 1024 * 1024
DEFAULT_STREAM_WINDOW = 1 * MiB
DEFAULT_CONNECTION_WINDOW = 16 * MiB
_MAX_WINDOW = 2**31 - 1
_DEFAULT_WINDOW = 65_535  # RFC 9113's initial window, before any SETTINGS or WINDOW_UPDATE
_MIN_FRAME, _MAX_FRAME = 2**14, 2**24 - 1

# Per-stream outbound buffering: an app's send() waits once this much is queued for its stream and
# resumes when the writer has framed it down to the low-water mark.
_SEND_HIGH_WATER = 256 * 1024
_SEND_LOW_WATER = 64 * 1024
# Most bytes framed for one stream per round of the round-robin, so one stream with a large
# window cannot delay the others' frames by more than this.
_ROUND_QUANTUM = 256 * 1024

# GOAWAY's "every stream may still arrive" id, and how long to wait for the PING that follows it.
_GOAWAY_ALL = 2**31 - 1
_DRAIN_PING = b"asgigrpc"
_DRAIN_PING_TIMEOUT = 1.0

_DRAIN_NONE, _DRAIN_ANNOUNCED, _DRAIN_FINAL = 0, 1, 2


def _goaway(last_stream_id: int) -> bytes:
    return bytes(GoAwayFrame(0, last_stream_id=last_stream_id, error_code=0).serialize())


class _Outbound:
    """Response body bytes of one stream waiting for the writer and for flow control."""

    __slots__ = ("chunks", "ended", "offset", "queued", "size", "trailers", "waiter")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.offset = 0  # bytes of chunks[0] already framed
        self.size = 0
        self.ended = False
        self.trailers: list[tuple[bytes, bytes]] | None = None
        self.queued = False  # in the writer's round-robin queue
        self.waiter: asyncio.Future[None] | None = None  # a send() waiting for low water

    def take(self, n: int) -> bytes:
        """The next ``n`` buffered bytes (``n <= size``), copying each byte once."""
        chunks = self.chunks
        self.size -= n
        first = chunks[0]
        available = len(first) - self.offset
        if available > n:
            self.offset += n
            return first[self.offset - n : self.offset]
        if available == n and self.offset == 0:
            chunks.popleft()
            return first
        parts = []
        while n:
            first = chunks[0]
            piece = first[self.offset : self.offset + n]
            if self.offset + len(piece) == len(first):
                chunks.popleft()
                self.offset = 0
            else:
                self.offset += len(piece)
            parts.append(piece)
            n -= len(piece)
        return b"".join(parts)

    def release(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class GrpcH2Protocol(H2Protocol):
    """Hypercorn's HTTP/2 protocol with the fixes and speed-ups listed in the module docstring.

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
        self.connection = h2.connection.H2Connection(
            config=h2.config.H2Configuration(
                client_side=False,
                header_encoding=None,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
                # grpcio clients send metadata values as given, spaces at either end included;
                # h2's inbound checks would fail the whole connection on one such value, where
                # grpcio's server accepts it. gRPC parsing validates what it uses (content type,
                # te, timeout, metadata), and _create_stream checks the pseudo-headers itself.
                validate_inbound_headers=False,
            )
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
                codes.MAX_HEADER_LIST_SIZE: int(config.h2_max_header_list_size),
                codes.ENABLE_CONNECT_PROTOCOL: 1,
                codes.INITIAL_WINDOW_SIZE: stream_window,
                codes.MAX_FRAME_SIZE: frame_size,
            },
        )
        self.connection.max_inbound_frame_size = frame_size

        self._loop = asyncio.get_running_loop()
        self._out: dict[int, _Outbound] = {}
        self._ready: deque[int] = deque()  # round-robin of streams with framable data
        self._pending: list[bytes] = []  # bytes to write, in order
        self._wake = asyncio.Event()  # wakes the writer
        self._seen_request = False
        self._idle_timer: asyncio.TimerHandle | None = None
        self._drain = _DRAIN_NONE
        self._drain_timer: asyncio.TimerHandle | None = None
        self._last_stream_id = _GOAWAY_ALL
        self._final_goaway_sent = False
        self._terminated_waiter: asyncio.Future[Any] | None = None
        self._writing = False  # a write to the socket is under way

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
        self._idle_timer = None
        if not self.streams:
            self._begin_drain()

    async def handle(self, event: Event) -> None:
        if isinstance(event, RawData):
            if self.closed:
                return
            try:
                events = self.connection.receive_data(event.data)
            except h2.exceptions.ProtocolError:
                # h2 has queued a GOAWAY with the error; send it, then close.
                self._pull()
                await self._write_pending()
                await self.send(Closed())
            else:
                await self._handle_events(events)
        elif isinstance(event, Closed):
            await self._on_closed()

    async def _on_closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        for timer in (self._idle_timer, self._drain_timer):
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

    # -- the writer --------------------------------------------------------------------------------

    def _pull(self) -> None:
        """Move what h2 has framed to our output, keeping order with hand-written frames."""
        data = self.connection.data_to_send()
        if data:
            self._pending.append(data)

    async def _write_pending(self) -> None:
        if self._pending:
            data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._pending.clear()
            self._writing = True
            try:
                await self.send(RawData(data=data))
            finally:
                self._writing = False

    async def _flush(self) -> None:
        # Stock helpers that still call this (server push) just hand their bytes to the writer.
        self._pull()
        self._wake.set()

    async def send_task(self) -> None:
        """The connection's only writer after the preface: frames DATA round-robin, then writes
        everything produced (by it, the read loop and the apps) since its last write at once."""
        wake = self._wake
        while True:
            if not self._ready:  # streams out of budget but not of window go round again
                await wake.wait()
            wake.clear()
            if self.closed:
                return
            if self._ready:
                self._produce()
            self._pull()
            if self._pending:
                await self._write_pending()  # drains above the transport's high-water mark
            if self._drain == _DRAIN_FINAL and not self.streams and not self._out:
                await self._on_closed()
                await self.send(Closed())
                return

    def _produce(self) -> None:
        connection = self.connection
        ready = self._ready
        for _ in range(len(ready)):
            stream_id = ready.popleft()
            out = self._out.get(stream_id)
            if out is None:
                continue
            out.queued = False
            done = False
            try:
                budget = _ROUND_QUANTUM
                window = 1
                while out.size and budget > 0:
                    window = connection.local_flow_control_window(stream_id)
                    if window <= 0:
                        break
                    n = min(out.size, window, connection.max_outbound_frame_size, budget)
                    budget -= n
                    data = out.take(n)
                    if not out.size and out.ended and out.trailers is None:
                        connection.send_data(stream_id, data, end_stream=True)
                        done = True
                    else:
                        connection.send_data(stream_id, data)
                if not out.size and not done:
                    if out.trailers is not None:
                        connection.send_headers(stream_id, out.trailers, end_stream=True)
                        done = True
                    elif out.ended:
                        connection.end_stream(stream_id)
                        done = True
                elif out.size and window > 0:
                    out.queued = True
                    ready.append(stream_id)  # out of budget, not of window: next round
                    self._wake.set()  # ... which nothing else would start
            except h2.exceptions.ProtocolError:
                done = True  # reset by the peer, or the connection is gone
            if done:
                del self._out[stream_id]
                out.release()
            elif out.size <= _SEND_LOW_WATER:
                out.release()

    def _schedule(self, stream_id: int, out: _Outbound) -> None:
        if not out.queued:
            out.queued = True
            self._ready.append(stream_id)
        self._wake.set()

    async def _window_updated(self, stream_id: int | None) -> None:
        if not stream_id:
            for sid, out in self._out.items():
                if out.size or out.ended or out.trailers is not None:
                    self._schedule(sid, out)
        else:
            one = self._out.get(stream_id)
            if one is not None and one.size:
                self._schedule(stream_id, one)

    # -- the app side: stream events from HTTPStream ---------------------------------------------

    async def stream_send(self, event: StreamEvent) -> None:
        stream_id = event.stream_id
        try:
            if isinstance(event, (Body, Data)):
                out = self._out.get(stream_id)
                if out is None or not event.data:
                    return
                out.chunks.append(event.data)
                out.size += len(event.data)
                self._schedule(stream_id, out)
                if out.size >= _SEND_HIGH_WATER:
                    out.waiter = self._loop.create_future()
                    try:
                        await out.waiter
                    finally:
                        out.waiter = None
            elif isinstance(event, (Response, InformationalResponse)):
                self.connection.send_headers(
                    stream_id,
                    [
                        (b":status", b"%d" % event.status_code),
                        *event.headers,
                        *self.config.response_headers("h2"),
                    ],
                )
                self._wake.set()
            elif isinstance(event, (EndBody, EndData)):
                out = self._out.get(stream_id)
                if out is not None and out.trailers is None:
                    out.ended = True
                    self._schedule(stream_id, out)
            elif isinstance(event, Trailers):
                out = self._out.get(stream_id)
                if out is None:
                    return
                if out.size:
                    out.trailers = event.headers
                    self._schedule(stream_id, out)
                else:
                    del self._out[stream_id]
                    self.connection.send_headers(stream_id, event.headers, end_stream=True)
                    self._wake.set()
            elif isinstance(event, TrailersOnly):
                if self._out.pop(stream_id, None) is None:
                    return
                self.connection.send_headers(
                    stream_id,
                    [
                        (b":status", b"200"),
                        *self.config.response_headers("h2"),
                        *event.headers,
                    ],
                    end_stream=True,
                )
                self._wake.set()
            elif isinstance(event, StreamClosed):
                await self._close_stream(stream_id)
            elif isinstance(event, Request):
                await self._create_server_push(event.stream_id, event.raw_path, event.headers)
        except h2.exceptions.ProtocolError:
            # The peer reset the stream, or the connection is closing: nobody is listening.
            return

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
                    # the body): drop the data, but give its credit back.
                    self._consumed(stream_id, event.flow_controlled_length)
                else:
                    await stream.handle(Body(stream_id=stream_id, data=event.data))
                    self._consumed(stream_id, event.flow_controlled_length)
            elif isinstance(event, h2.events.RequestReceived):
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
                await self._close_stream(event.stream_id)
            elif isinstance(event, h2.events.WindowUpdated):
                await self._window_updated(event.stream_id)
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                    await self._window_updated(None)
            elif isinstance(event, h2.events.PingAckReceived):
                if event.ping_data == _DRAIN_PING:
                    self._drain_final()
            elif isinstance(event, h2.events.ConnectionTerminated):
                # h2 refuses to send anything once it has received a GOAWAY, so in-flight
                # streams cannot be answered: close, as stock Hypercorn does.
                await self.send(Closed())
                return
            # PriorityUpdated is ignored: RFC 9113 deprecates stream priorities.
        self._pull()
        if self._pending:
            self._wake.set()

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
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self.keep_alive_requests >= self.config.keep_alive_max_requests or (
            self.context.terminated.is_set()
        ):
            self._begin_drain()

    async def _create_stream(self, request: h2.events.RequestReceived) -> None:
        method = raw_path = None
        for name, value in request.headers:
            if name == b":method":
                method = value.decode("latin-1").upper()
            elif name == b":path":
                raw_path = value
        if method is None or raw_path is None:  # h2 validates pseudo-headers; be safe anyway
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
            stream = GrpcHTTPStream(*args, consumed=self._consumed)
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
        """Give ``flow_controlled_length`` bytes of credit back to the peer (stream and
        connection; h2 batches the WINDOW_UPDATEs)."""
        if self.closed or flow_controlled_length <= 0:
            return
        try:
            self.connection.acknowledge_received_data(flow_controlled_length, stream_id)
        except h2.exceptions.ProtocolError:
            return
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
        if not self.streams and not self.closed:
            if self._drain == _DRAIN_FINAL:
                self._wake.set()  # the writer closes once the last bytes are out
            elif self._idle_timer is None and self._drain == _DRAIN_NONE:
                self._idle_timer = self._loop.call_later(
                    float(self.config.keep_alive_timeout), self._on_idle_timeout
                )


# The module whose ProtocolWrapper builds HTTP/2 protocols (typed Any: we assign its global).
_wrapper_module: Any = hypercorn.protocol
_hyperframe: Any = hyperframe.frame
_stock_raw_data_repr = _hyperframe._raw_data_repr


def _raw_data_repr(data: bytes | None) -> str:
    """hyperframe's ``_raw_data_repr``, same output, without hexlifying the whole payload.

    h2 calls ``repr(frame)`` on every frame it receives (for a trace log it usually discards),
    and hyperframe hexlifies all of a DATA frame's payload to keep the first 20 hex digits:
    about a tenth of the server's CPU with 64 KiB messages.
    """
    if not data:
        return "None"
    r = binascii.hexlify(data[:11]).decode("ascii")
    if len(r) > 20:
        r = r[:20] + "..."
    return "<hex:" + r + ">"


def is_installed() -> bool:
    return _wrapper_module.H2Protocol is GrpcH2Protocol


def install() -> None:
    """Make every HTTP/2 connection Hypercorn accepts in this process use :class:`GrpcH2Protocol`.

    Idempotent. ``hypercorn.protocol.ProtocolWrapper`` looks ``H2Protocol`` up in its module's
    globals each time it builds a protocol, so replacing that one name is enough. Also makes
    hyperframe's DATA frame ``repr`` cheap (same output; see :func:`_raw_data_repr`).
    """
    if is_installed():
        return
    found = version("hypercorn")
    if not found.startswith(_SUPPORTED):
        raise RuntimeError(
            f"asgi_grpc patches Hypercorn {_SUPPORTED}x internals, found Hypercorn {found}: "
            "install hypercorn>=0.18,<0.19"
        )
    if _wrapper_module.H2Protocol is not H2Protocol:
        raise RuntimeError(
            "hypercorn.protocol.H2Protocol was already replaced by someone else "
            f"({_wrapper_module.H2Protocol!r}); refusing to stack patches"
        )
    _wrapper_module.H2Protocol = GrpcH2Protocol
    if version("hyperframe").startswith("6.") and _hyperframe._raw_data_repr is (
        _stock_raw_data_repr
    ):
        _hyperframe._raw_data_repr = _raw_data_repr


def grpc_config(**overrides: Any) -> Config:
    """A Hypercorn :class:`~hypercorn.config.Config` tuned for gRPC; ``overrides`` are set last.

    - no access log, no ``date``/``server`` response headers (gRPC clients would see them as
      initial metadata);
    - ``keep_alive_max_requests`` effectively unlimited (a connection carries millions of RPCs;
      with :func:`install` reaching it drains the connection gracefully anyway);
    - ``keep_alive_timeout`` 300 s: gRPC channels keep idle connections open, and reconnecting
      costs a handshake (closing is graceful, GOAWAY first); ``read_timeout`` off, since a
      long server stream legitimately reads nothing for long;
    - 1 MiB stream and 16 MiB (at least streams x stream window) connection receive windows, and
      a 1 MiB maximum inbound frame size, all announced in the server's SETTINGS;
    - ALPN ``h2`` then ``http/1.1``; ``graceful_timeout`` 10 s (set it to the server's grace).
    """
    config = Config()
    config.accesslog = None
    config.include_date_header = False
    config.include_server_header = False
    config.keep_alive_max_requests = 2**62
    config.keep_alive_timeout = 300.0
    config.read_timeout = None
    config.graceful_timeout = 10.0
    config.alpn_protocols = ["h2", "http/1.1"]
    config.h2_max_concurrent_streams = 100
    config.h2_max_inbound_frame_size = 1 * MiB
    config.h2_stream_window_size = DEFAULT_STREAM_WINDOW  # type: ignore[attr-defined]
    config.h2_connection_window_size = DEFAULT_CONNECTION_WINDOW  # type: ignore[attr-defined]
    for name, value in overrides.items():
        if name == "bind" or hasattr(config, name) or name.startswith("h2_"):
            setattr(config, name, value)
        else:
            raise TypeError(f"grpc_config() got an unknown Hypercorn setting {name!r}")
    return config
