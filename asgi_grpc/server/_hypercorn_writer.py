"""The writer side of :class:`~._hypercorn.GrpcH2Protocol`: what frames and writes its output.

:class:`H2Writer` is the base class of ``GrpcH2Protocol`` (itself a subclass of Hypercorn's
``H2Protocol``): it holds the methods that take the app's response events (``stream_send``, and the
``respond``/``push_body``/``flush_now`` extensions of ``_hypercorn_stream``), buffer each stream's
body (:class:`_Outbound`), frame it under flow control and write it to the socket. The read side
and the connection's lifecycle are in ``_hypercorn``, which initialises the state declared here
(in ``GrpcH2Protocol.__init__``: one place for all of it).
This module does not import ``_hypercorn``.

What it changes in Hypercorn, and why (the letters are those of ``_hypercorn``'s list; each has a
regression test in ``tests/hypercorn/``):

d. GOAWAY frames are written by hand (:func:`_goaway`), because h2's ``close_connection`` moves
   its state machine to CLOSED, after which no in-flight stream could be answered.
e. ``http.response.trailers`` with no prior ``http.response.start`` (``TrailersOnly``) is sent as
   one HEADERS frame with END_STREAM (gRPC's trailers-only response).
h. After our END_STREAM, a request the client has not ended is reset with NO_ERROR (RFC 9113
   8.1; grpc-go and grpc-core do the same), so it stops holding a slot of the stream limit
   (``_end_request``).

Speed (see ``bench/hypercorn_raw.py``): a single writer task frames DATA round-robin over the
streams that have data (no ``priority`` tree: RFC 9113 deprecates priorities) in frames as large as
the window and the peer's frame size allow, coalescing small chunks, and writes everything produced
in a loop turn with one socket write (or sooner, from the app's send, in long turns: see
``stream_send``); h2 does not re-validate or normalise the headers we send (set up in
``GrpcH2Protocol.__init__``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import h2.errors
import h2.exceptions
from hypercorn.events import Closed, RawData
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
from hyperframe.frame import GoAwayFrame

from .._h2data import data_frame_header
from ._hypercorn_h2 import GrpcH2Connection
from ._hypercorn_limits import PingPolicy
from ._hypercorn_stream import TrailersOnly

# Per-stream outbound buffering: an app's send() waits once this much is queued for its stream and
# resumes when the writer has framed it down to the low-water mark.
_SEND_HIGH_WATER = 256 * 1024
_SEND_LOW_WATER = 64 * 1024
# Most bytes framed for one stream per round of the round-robin, so one stream with a large
# window cannot delay the others' frames by more than this.
_ROUND_QUANTUM = 256 * 1024
# Response messages and response ends queued since the last write after which the app's send()
# writes them at once instead of leaving them to the writer's next turn (and, after a message,
# yields to the loop); also once a stream has this many bytes unframed. See stream_send.
_WRITE_EVERY = 32
_WRITE_BYTES = 64 * 1024
# Most bytes the writer frames for one socket write: rounds of the round-robin follow each other
# in one turn up to this (a 1 MiB response leaves in one write, not one per _ROUND_QUANTUM).
_WRITE_MAX = 2 * 1024 * 1024

# The graceful close's steps (see _hypercorn's module docstring, d): the writer closes the
# connection once the last is reached and no stream is left.
_DRAIN_NONE, _DRAIN_ANNOUNCED, _DRAIN_FINAL = 0, 1, 2


def _goaway(last_stream_id: int, error_code: int = 0, debug: bytes = b"") -> bytes:
    frame = GoAwayFrame(
        0, last_stream_id=last_stream_id, error_code=error_code, additional_data=debug
    )
    return bytes(frame.serialize())


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

    def take(self, n: int, into: list[bytes | memoryview]) -> None:
        """Append the next ``n`` buffered bytes (``n <= size``) to ``into``, as the chunks or
        views of them: no copy (the writer joins its output once for the socket)."""
        chunks = self.chunks
        self.size -= n
        while n:
            first = chunks[0]
            offset = self.offset
            available = len(first) - offset
            if available > n:
                self.offset = offset + n
                into.append(memoryview(first)[offset : offset + n])
                return
            into.append(memoryview(first)[offset:] if offset else first)
            chunks.popleft()
            self.offset = 0
            n -= available

    def release(self) -> bool:
        """Wake the send() waiting for low water, if any; True if one was waiting."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
            return True
        return False


class H2Writer(H2Protocol):
    """The writer half of :class:`~._hypercorn.GrpcH2Protocol` (see the module docstring).

    Not built on its own: the attributes below are initialised by ``GrpcH2Protocol.__init__``
    (and Hypercorn's ``H2Protocol.__init__``), and ``_on_closed`` is the subclass's.
    """

    connection: GrpcH2Connection
    _loop: asyncio.AbstractEventLoop
    _out: dict[int, _Outbound]
    _ready: deque[int]
    _pending: list[bytes | memoryview]
    _unwritten: int
    _wake: asyncio.Event
    _written: asyncio.Event
    _writing: bool
    _drain: int
    _pings: PingPolicy
    _closing: asyncio.Future[None] | None
    _on_closed: Callable[[], Awaitable[None]]

    # -- the writer --------------------------------------------------------------------------------

    def _pull(self) -> None:
        """Move what h2 has framed to our output, keeping order with hand-written frames."""
        data = self.connection.data_to_send()
        if data:
            self._pending.append(data)

    async def _write_now(self) -> None:
        """Frame and write what is ready from the app's send(), ahead of the writer's turn."""
        if self.closed:
            return
        if self._ready:
            self._produce()
        self._pull()
        await self._write_pending()

    async def _count_end(self) -> None:
        """A response was completed: write now if enough are waiting (see stream_send)."""
        self._unwritten += 1
        if self._unwritten >= _WRITE_EVERY:
            await self._write_now()

    def _take_pending(self) -> bytes | None:
        """Everything produced since the last write, as the bytes for one socket write (the
        one copy of the response payloads), or None if there is nothing."""
        self._unwritten = 0
        pending = self._pending
        if not pending:
            return None
        first = pending[0]
        data = first if len(pending) == 1 and isinstance(first, bytes) else b"".join(pending)
        pending.clear()
        return data

    async def _write_pending(self) -> None:
        data = self._take_pending()
        if data is not None:
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
                framed, released = self._produce_turn(_WRITE_MAX)
                if released:
                    # A send() released at low water: let it queue what follows (a unary
                    # response's trailers) for this write instead of a write of its own.
                    await asyncio.sleep(0)
                    if self.closed:
                        return
                    self._produce_turn(_WRITE_MAX - framed)
            self._pull()
            if self._pending:
                await self._write_pending()  # drains above the transport's high-water mark
            self._written.set()
            if self._drain == _DRAIN_FINAL and not self.streams and not self._out:
                await self._on_closed()
                await self.send(Closed())
                return

    def _produce_turn(self, limit: int) -> tuple[int, bool]:
        """Frame rounds of the round-robin until nothing is framable or ``limit`` bytes are
        (give or take a round): (bytes framed, whether a send() waiting for low water was
        released). One write per round instead cost the client a wake-up and a read each."""
        released = False
        framed = 0
        while self._ready and framed < limit:
            round_framed, round_released = self._produce()
            framed += round_framed
            released = released or round_released
        return framed, released

    def _produce(self) -> tuple[int, bool]:
        """One round of the round-robin: (bytes framed, whether a waiting send() was released)."""
        framed = 0
        released = False
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
                # The quantum keeps one stream from delaying the others; a stream alone in the
                # round frames up to a write's worth, in frames as large as the client allows
                # (grpcio's client faults fewer pages in when a 1 MiB message comes in one DATA
                # frame than in four: bench/README.md, "Large messages").
                budget = _ROUND_QUANTUM if ready else _WRITE_MAX
                window = 1
                while out.size and budget > 0:
                    window = connection.local_flow_control_window(stream_id)
                    if window <= 0:
                        break
                    n = min(out.size, window, connection.max_outbound_frame_size, budget)
                    budget -= n
                    framed += n
                    self._pings.reset()
                    end = out.size == n and out.ended and out.trailers is None
                    header = data_frame_header(connection, stream_id, n, end)
                    # After what h2 has queued (headers, window updates), in order.
                    self._pull()
                    self._pending.append(header)
                    out.take(n, self._pending)
                    done = end
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
                if done:
                    self._end_request(stream_id)
            except h2.exceptions.ProtocolError:
                done = True  # reset by the peer, or the connection is gone
            if done or out.size <= _SEND_LOW_WATER:
                if done:
                    del self._out[stream_id]
                released = out.release() or released
        return framed, released

    def _end_request(self, stream_id: int) -> None:
        """After our END_STREAM: reset the request if the client has not ended it.

        The response is complete, so the client's half only holds a slot of the stream limit
        (and lets it keep sending DATA nobody reads). RFC 9113 8.1 allows RST_STREAM NO_ERROR
        here, and it is what grpc-go and grpc-core servers send; clients keep the response.
        """
        stream = self.connection.streams.get(stream_id)
        if stream is not None and not stream.closed:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.connection.reset_stream(stream_id, h2.errors.ErrorCodes.NO_ERROR)

    def _schedule(self, stream_id: int, out: _Outbound) -> None:
        if not out.queued:
            out.queued = True
            self._ready.append(stream_id)
        self._wake.set()

    async def _window_updated(self, stream_id: int | None) -> None:
        # (Hypercorn's name, async there; ours is _reschedule, called without an await.)
        self._reschedule(stream_id)

    def _reschedule(self, stream_id: int | None) -> None:
        """More send window (WINDOW_UPDATE or SETTINGS): queue the streams it may unblock."""
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
        """Queue the app's response events for the writer.

        The writer writes once per loop turn, after every app that ran in the turn. Two cases
        want a write sooner, and get it here, every :data:`_WRITE_EVERY` messages or responses
        (or :data:`_WRITE_BYTES` of one stream): a burst of unary calls (64 requests read at once
        are answered in one turn: one write, and the client idles until all are done while we
        idle after), and a streaming handler that never awaits (its stream would leave only
        when it ends). After such a write from a message the app also yields, so that other
        streams and the read loop run meanwhile. A yield per message instead costs a loop turn,
        an h2 DATA frame and a socket write each (bench/README.md, "what bought what").
        """
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
                else:
                    self._unwritten += 1
                    if self._unwritten >= _WRITE_EVERY or out.size >= _WRITE_BYTES:
                        await self._write_now()
                        await asyncio.sleep(0)
            elif isinstance(event, (Response, InformationalResponse)):
                self._pings.reset()
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
                    await self._count_end()
            elif isinstance(event, Trailers):
                out = self._out.get(stream_id)
                if out is None:
                    return
                if out.size:
                    out.trailers = event.headers
                    self._schedule(stream_id, out)
                else:
                    del self._out[stream_id]
                    self._pings.reset()
                    self.connection.send_headers(stream_id, event.headers, end_stream=True)
                    self._end_request(stream_id)
                    self._wake.set()
                await self._count_end()
            elif isinstance(event, TrailersOnly):
                if self._out.pop(stream_id, None) is None:
                    return
                self._pings.reset()
                self.connection.send_headers(
                    stream_id,
                    [
                        (b":status", b"200"),
                        *self.config.response_headers("h2"),
                        *event.headers,
                    ],
                    end_stream=True,
                )
                self._end_request(stream_id)
                self._wake.set()
                await self._count_end()
            elif isinstance(event, StreamClosed):
                await self._close_stream(stream_id)
            elif isinstance(event, Request):
                await self._create_server_push(event.stream_id, event.raw_path, event.headers)
        except h2.exceptions.ProtocolError:
            # The peer reset the stream, or the connection is closing: nobody is listening.
            return

    async def respond(
        self,
        stream_id: int,
        headers: list[tuple[bytes, bytes]],
        body: list[bytes],
        trailers: list[tuple[bytes, bytes]],
    ) -> None:
        """A whole response (RESPONSE_EXTENSION, server/_types.py): what :meth:`stream_send`
        does for its ``Response``, ``Body`` events and ``Trailers``, in one call: the headers
        sent, the body and trailers queued for the writer (counted as those events count).

        When this is the only stream on the connection, no other response can join the
        writer's next write, so the write is made now (:meth:`flush_now`: unless it would have
        to wait) instead of waking the writer: at one call in flight, a loop turn and a task
        step less per call. With more streams, the writer batches as it does for the events."""
        out = self._out.get(stream_id)
        if out is None:
            return  # reset by the peer (or the connection is gone): nobody is listening
        self._pings.reset()
        try:
            self.connection.send_headers(
                stream_id,
                [(b":status", b"200"), *headers, *self.config.response_headers("h2")],
            )
        except h2.exceptions.ProtocolError:
            return
        for part in body:
            if part:
                out.chunks.append(part)
                out.size += len(part)
        # The writer frames the body as far as flow control allows, then the trailers with
        # END_STREAM (_produce), as after the events.
        out.trailers = trailers
        if not out.queued:
            out.queued = True
            self._ready.append(stream_id)
        if len(self.streams) == 1:
            self.flush_now()
            return
        self._wake.set()
        self._unwritten += 1  # (the body's, as stream_send counts it; then the end's)
        await self._count_end()

    def push_body(self, stream_id: int, data: bytes) -> bool:
        """Queue response bytes as :meth:`stream_send` queues a ``Body``, without an await (the
        body-sink extension, server/_types.py); False, queuing nothing, where stream_send would
        write or wait after queuing them (the app then sends them as a body event), or when
        the stream's response is gone. The writer is not woken: :meth:`flush_now` must follow
        in the same loop turn (after a batch of pushes, of any streams)."""
        out = self._out.get(stream_id)
        if out is None or self.closed:
            return False
        size = out.size + len(data)
        if self._unwritten + 1 >= _WRITE_EVERY or size >= _WRITE_BYTES:
            return False
        out.chunks.append(data)
        out.size = size
        if not out.queued:
            out.queued = True
            self._ready.append(stream_id)
        self._unwritten += 1
        return True

    def flush_now(self) -> None:
        """Frame and write what is ready at once, if the write cannot have to wait (nothing
        is waiting for the socket, no write is under way); else wake the writer for it. After
        :meth:`push_body`: the write the writer would make on its next turn, made in this one,
        without waking it (a loop turn and a task step less per response)."""
        server: Any = getattr(self.send, "__self__", None)  # Hypercorn's TCPServer
        writer = getattr(server, "writer", None)
        lock = getattr(server, "send_lock", None)
        if (
            self.closed
            or self._writing
            or self._drain != _DRAIN_NONE
            or writer is None
            or lock is None
            or lock.locked()
            or writer.transport.is_closing()
            or writer.transport.get_write_buffer_size()
        ):
            self._wake.set()
            return
        if self._ready:
            self._produce_turn(_WRITE_MAX)
        self._pull()
        data = self._take_pending()
        if data is None:
            return
        try:
            writer.write(data)  # (what protocol_send does, whose drain() would not wait here)
        except (ConnectionError, RuntimeError):
            self._closing = asyncio.ensure_future(self.handle(Closed()))
            return
        self._written.set()
        if self._ready:  # (more than a write's worth: the writer takes the rest)
            self._wake.set()
