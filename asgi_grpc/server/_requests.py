"""The request side of one server call: ASGI ``receive()`` into a bounded message buffer.

:class:`RequestBuffer` pumps request body chunks from ``receive()``, parses them into messages
and keeps them until the handler reads them. What it holds for a handler that does not read is
bounded whatever the message sizes:

- every buffered message is charged its payload, its 5-byte prefix and :data:`MESSAGE_COST` for
  the Python objects that hold it, so a flood of empty messages fills the buffer as surely as
  a few large ones;
- chunks above :data:`SLICE` are parsed piecewise, checking the bound between pieces, so one
  chunk (up to a whole HTTP/2 stream window) cannot overshoot it by more than a piece;
- once over the bound the pump stops calling ``receive()``. An ASGI server that grants HTTP/2
  flow-control credit only when the app takes data (ours: ``_hypercorn_stream``) then holds the
  peer at its stream window.

Not reading must not mean not noticing that the client went away: a stopped pump still watches
for the stream's end through the server's ``asgi_grpc.stream_closed`` scope extension (a callable
returning a future that completes when the stream closes). Servers without it get the bound, and
the disconnect is seen when the handler reads again (or at the deadline).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

from .._core import HEADER_SIZE, MessageReader, ProtocolError, StatusCode
from ._memory import trim_soon
from ._types import BODY_LISTEN_EXTENSION, STREAM_CLOSED_EXTENSION, ASGIReceive, Scope

# Charged per buffered message on top of payload and prefix: a tuple, a deque slot and a bytes
# header (CPython, 64-bit). Makes the buffer's bound a bound on memory, not just on payload.
MESSAGE_COST = 96
# Chunks larger than this are parsed a piece at a time (a piece is stretched to the end of a
# message that is longer, so large messages are still parsed without copies).
SLICE = 64 * 1024
# The scope extension through which a server tells the app that a stream closed without the app
# having to call receive() (which would take, and credit, more request data).

_CANCELLED = ProtocolError(StatusCode.CANCELLED, "Client cancelled the call")

Message = tuple[bool, bytes]


class RequestBuffer:
    """Request messages of one streaming-request call, between ``receive()`` and the handler."""

    __slots__ = (
        "_buffered",
        "_closed",
        "_done",
        "_error",
        "_filled",
        "_limit",
        "_listen",
        "_loop",
        "_messages",
        "_on_disconnect",
        "_parked",
        "_reader",
        "_ready",
        "_receive",
        "_receive_nowait",
        "_space_waiter",
        "_stashed",
        "_waiter",
    )

    def __init__(
        self,
        scope: Scope,
        receive: ASGIReceive,
        reader: MessageReader,
        limit: int,
        on_disconnect: Callable[[], None],
    ) -> None:
        self._receive = receive
        self._reader = reader
        self._limit = limit
        self._on_disconnect = on_disconnect
        self._loop = asyncio.get_running_loop()
        self._messages: collections.deque[Message] = collections.deque()
        self._buffered = 0  # charged bytes of the messages in _messages
        self._done = False  # the body ended (or failed): nothing more will be queued
        self._error: ProtocolError | None = None
        self._filled = False  # the bound was reached at least once
        self._waiter: asyncio.Future[None] | None = None  # the handler, waiting for a message
        self._space_waiter: asyncio.Future[None] | None = None  # the pump, waiting for space
        self._ready: Callable[[], None] | None = None  # a sync handler's iterator, waiting
        extensions = scope.get("extensions", {})
        extension = extensions.get(STREAM_CLOSED_EXTENSION)
        self._closed: Callable[[], asyncio.Future[Any]] | None = (
            extension.get("future") if extension else None
        )
        # The server's body-listen extension (see _types), where ``receive`` is its own: input
        # is taken in the step that brings it (_on_input) while the pump is parked.
        self._listen: Any = None
        self._receive_nowait: Callable[[], Any] | None = None
        self._parked: asyncio.Future[None] | None = None  # the pump, parked
        self._stashed: Any = None  # input _on_input took and left to the pump
        offer = extensions.get(BODY_LISTEN_EXTENSION)
        owner: Any = getattr(receive, "__self__", None)
        if offer is not None and owner is not None and offer["owner"] == id(owner):
            self._listen = offer["listen"]
            self._receive_nowait = owner.receive_nowait

    @property
    def buffered(self) -> int:
        """Bytes charged for the messages waiting for the handler."""
        return self._buffered

    # ------------------------------------------------------------------ the pump (its own task)

    async def pump(self) -> None:
        """Move request messages from ``receive()`` into the buffer until the client goes away.

        Runs for the whole call: after the body ended it keeps waiting on ``receive()`` for the
        disconnect. Returns at the disconnect (after ``on_disconnect``), or when cancelled.

        With the server's body-listen extension the pump parks instead of waiting in
        ``receive()``, and :meth:`_on_input` queues the messages of each chunk in the step
        that brings it (a loop turn and a task step less per chunk); whatever else comes (the
        body's end, the disconnect, a large chunk, the bound reached) wakes the pump.
        """
        receive = self._receive
        receive_nowait = self._receive_nowait
        if receive_nowait is not None:
            self._listen.callback = self._on_input
        try:
            while True:
                if self._buffered > self._limit and not await self._wait_for_space():
                    break
                if receive_nowait is not None:
                    event = receive_nowait()  # (what came while the pump was busy)
                    if event is None:
                        parked = self._parked = self._loop.create_future()
                        try:
                            await parked
                        finally:
                            self._parked = None
                        event, self._stashed = self._stashed, None
                        if event is None:
                            continue
                else:
                    try:
                        event = await receive()
                    except ProtocolError as exc:
                        # An adapter that decodes the body (gRPC-Web text) found it malformed.
                        self._error = exc
                        self._done = True
                        self._wake()
                        continue
                if event["type"] != "http.request":
                    break
                if self._done:
                    continue  # the body failed to parse: drop the rest, keep watching
                body = event.get("body")
                if body and not await self._take(body):
                    break
                if not event.get("more_body", False):
                    self._finish()
        except asyncio.CancelledError:
            return
        finally:
            if receive_nowait is not None:
                self._listen.callback = None
        self._disconnected()

    def _on_input(self) -> None:
        """The body-listen callback: request input arrived. While the pump is parked, a chunk
        in the middle of the body is queued here, as the pump would; anything else is left to
        the pump, woken for it (and woken too once the bound is reached, to wait for space)."""
        parked = self._parked
        if parked is None or parked.done():
            return  # the pump is busy: it takes the input itself next
        receive_nowait = self._receive_nowait
        assert receive_nowait is not None
        event = receive_nowait()
        if event is None:
            return
        body = event.get("body")
        if (
            body
            and len(body) <= SLICE
            and not self._done
            and event["type"] == "http.request"
            and event.get("more_body", False)
        ):
            self._queue(body)
            if self._buffered <= self._limit:
                return
        else:
            self._stashed = event
        parked.set_result(None)

    async def _take(self, body: bytes) -> bool:
        """Parse ``body`` into the buffer, in pieces when it is large; False if the stream
        closed while waiting for space."""
        reader = self._reader
        size = len(body)
        if size <= SLICE:
            self._queue(body)
            return True
        view = memoryview(body)
        start = 0
        while start < size and not self._done:
            if self._buffered > self._limit and not await self._wait_for_space():
                return False
            stop = start + max(SLICE, reader.needed)
            self._queue(body if start == 0 and stop >= size else view[start:stop])
            start = stop
        return True

    def _queue(self, data: Any) -> None:
        try:
            messages = self._reader.feed(data)
        except ProtocolError as exc:
            self._error = exc
            self._done = True
            self._wake()
            return
        if messages:
            self._messages.extend(messages)
            cost = (HEADER_SIZE + MESSAGE_COST) * len(messages)
            for _, payload in messages:
                cost += len(payload)
            self._buffered += cost
            self._wake()

    def _finish(self) -> None:
        try:
            self._reader.close()
        except ProtocolError as exc:
            self._error = exc
        self._done = True
        self._wake()

    def _disconnected(self) -> None:
        if not self._done:
            self._error = _CANCELLED
            self._done = True
        # The call learns it was cancelled first: a sync handler's iterator, woken in this very
        # step (when_ready), tells a cancelled call (RpcError) from a broken body by it.
        self._on_disconnect()
        self._wake()

    async def _wait_for_space(self) -> bool:
        """Wait until the handler made room; False if the stream closed first."""
        self._filled = True
        waiter = self._space_waiter = self._loop.create_future()
        try:
            if self._closed is None:
                await waiter
                return True
            closed = self._closed()
            if not closed.done():
                await asyncio.wait((waiter, closed), return_when=asyncio.FIRST_COMPLETED)
            return not closed.done()
        finally:
            self._space_waiter = None

    def _wake(self) -> None:
        ready = self._ready
        if ready is not None:
            self._ready = None
            ready()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------------ the handler's side

    async def next(self) -> Message | None:
        """The next request message, or None once the client is done writing."""
        messages = self._messages
        while not messages:
            if self._error is not None:
                raise self._error
            if self._done:
                return None
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.pop()

    def when_ready(self, callback: Callable[[], None]) -> bool:
        """False when :meth:`next` would return at once (a message, the end or an error); else
        True, and ``callback`` is called once when it would, by what makes it so (on the loop,
        in the same step: a sync handler's iterator waits this way, and its worker is woken
        without a task, a future or a loop turn in between). The callback must not raise."""
        if self._messages or self._error is not None or self._done:
            return False
        self._ready = callback
        return True

    def take(self) -> Message | None:
        """What :meth:`next` returns (or raises) when :meth:`when_ready` is False."""
        if self._messages:
            return self.pop()
        if self._error is not None:
            raise self._error
        return None

    def pop(self) -> Message:
        """The first buffered message (there must be one: ``buffered`` is not 0), as
        :meth:`next` takes it; for a sync handler's iterator taking several in one hop."""
        message = self._messages.popleft()
        self._buffered -= len(message[1]) + HEADER_SIZE + MESSAGE_COST
        waiter = self._space_waiter
        if waiter is not None and not waiter.done() and self._buffered <= self._limit:
            waiter.set_result(None)
        return message

    def clear(self) -> None:
        """Drop what is buffered: the call is over and nobody will read it.

        Also ends the stream for a reader still waiting in :meth:`next` (a sync handler's
        worker thread, blocked in its request iterator): it gets the end of the requests (or
        the error already seen) instead of waiting for a message that will never be taken.
        """
        self._messages.clear()
        self._buffered = 0
        self._done = True
        if self._listen is not None:
            self._listen.callback = None  # (the stream holds it, and it holds this)
        self._wake()
        if self._filled:
            trim_soon()  # this call held its bound (and a window): give the memory back
