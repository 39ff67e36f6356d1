"""The per-stream half of our Hypercorn HTTP/2 protocol: a non-blocking request body buffer.

Stock Hypercorn hands each request body chunk to the app through a small queue (10 items) and
awaits ``queue.put`` from the connection's single read loop, granting HTTP/2 flow-control credit at
once. A handler that does not read its body therefore blocks the read loop of the whole connection
(head-of-line blocking across RPCs). :class:`GrpcHTTPStream` instead appends chunks to a deque
without awaiting, and credit for a chunk is granted (``consumed``) only when the app's
``receive()`` takes it, so what a stream can buffer is bounded by its HTTP/2 receive window: the
credit is the frame's whole flow-controlled length (padding included), returned only once the app
has taken the bytes. Small chunks are merged as they arrive, so a window's worth of one-byte DATA
frames costs about a window of memory, not a Python object per frame.

The response side (``app_send``) is stock, except that ``http.response.trailers`` sent before any
``http.response.start`` becomes a :class:`TrailersOnly` event: one HEADERS frame with END_STREAM,
which is what gRPC calls a trailers-only response.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from time import time
from typing import Any, cast

from hypercorn.asyncio.task_group import _handle
from hypercorn.config import Config
from hypercorn.protocol.events import Body, EndBody, Event, Request, StreamClosed
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream
from hypercorn.typing import ASGIReceiveEvent, ASGISendEvent, TaskGroup, WorkerContext
from hypercorn.utils import build_and_validate_headers

from .._h2data import DataParts
from ._types import (
    BODY_LISTEN_EXTENSION,
    BODY_PARTS_EXTENSION,
    BODY_SINK_EXTENSION,
    RESPONSE_EXTENSION,
    STREAM_CLOSED_EXTENSION,
    TRAILERS_ONLY_EXTENSION,
)

_DISCONNECT: ASGIReceiveEvent = {"type": "http.disconnect"}
_TE_TRAILERS = (b"te", b"trailers")

# The protocol's side of RESPONSE_EXTENSION: (stream id, headers, body parts, trailers).
Respond = Callable[
    [int, list[tuple[bytes, bytes]], list[bytes], list[tuple[bytes, bytes]]], Awaitable[None]
]

# Chunks shorter than this are appended to the previous one instead of queued on their own.
_SMALL_CHUNK = 1024


async def _unused_put(event: ASGIReceiveEvent) -> None:
    """The ``app_put`` of a GrpcHTTPStream: never called (its app reads through ``receive``)."""


async def _unused_receive() -> ASGIReceiveEvent:  # pragma: no cover - never called
    raise RuntimeError("a GrpcHTTPStream's app reads through the stream's own receive()")


class AppSpawner:
    """The task group a :class:`GrpcHTTPStream` spawns its app through, one per connection.

    Hypercorn's ``TaskGroup.spawn_app`` (0.18) makes, for every request, an ``asyncio.Queue``
    for a queue-backed ``receive`` (and a closure and a partial): a GrpcHTTPStream never uses
    the queue, its app reads through the stream's own ``receive()``. This spawns the app as
    ``spawn_app`` does (Hypercorn's ``_handle``: errors logged, ``send(None)`` at the end),
    without the queue, and with the thread helpers made once per connection.
    """

    __slots__ = ("_group", "_loop", "_sync_spawn")

    def __init__(self, group: TaskGroup) -> None:
        self._group = group
        self._loop = asyncio.get_running_loop()
        self._sync_spawn = partial(self._loop.run_in_executor, None)

    def _call_soon(self, func: Callable[..., Any], *args: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(func(*args), self._loop).result()

    async def spawn_app(
        self, app: Any, config: Config, scope: Any, send: Callable[..., Awaitable[None]]
    ) -> Callable[[ASGIReceiveEvent], Awaitable[None]]:
        self._group.spawn(
            _handle, app, config, scope, _unused_receive, send, self._sync_spawn, self._call_soon
        )
        return _unused_put

    def spawn(self, func: Callable[..., Any], *args: Any) -> None:
        self._group.spawn(func, *args)


class _ClosedSignal:
    """The stream-closed extension's callable: a future that completes when the stream closes,
    made when first asked for. Apart from the stream, so that the scope (which the stream holds)
    does not hold the stream back: no reference cycle for the garbage collector."""

    __slots__ = ("_future", "closed")

    def __init__(self) -> None:
        self.closed = False
        self._future: asyncio.Future[None] | None = None

    def __call__(self) -> asyncio.Future[None]:
        future = self._future
        if future is None:
            future = self._future = asyncio.get_running_loop().create_future()
            if self.closed:
                future.set_result(None)
        return future

    def set(self) -> None:
        self.closed = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)


class _AppHooks:
    """The app's hooks into one stream, for the body-sink and body-listen extensions (see
    _types): ``push`` (the protocol's ``push_body`` for this stream, refused once the stream
    closed) and ``flush``; ``callback``, the app's listener. Apart from the stream, as
    _ClosedSignal: the scope holds this, and must not hold the stream."""

    __slots__ = ("_push", "_stream_id", "callback", "closed", "flush")

    def __init__(
        self,
        sink: tuple[Callable[[int, bytes], bool], Callable[[], None]] | None,
        stream_id: int,
    ) -> None:
        self._push: Callable[[int, bytes], bool] | None = None
        self.flush: Callable[[], None] | None = None
        if sink is not None:
            self._push, self.flush = sink
        self._stream_id = stream_id
        self.closed = False
        self.callback: Callable[[], None] | None = None

    def __call__(self, data: bytes) -> bool:
        push = self._push
        return push is not None and not self.closed and push(self._stream_id, data)


@dataclass(frozen=True)
class TrailersOnly(Event):
    """A complete response in one HEADERS frame (``:status`` 200 plus these headers), END_STREAM."""

    headers: list[tuple[bytes, bytes]]


class GrpcHTTPStream(HTTPStream):
    """An HTTP/2 request stream whose body is buffered without blocking the connection.

    ``consumed(stream_id, flow_controlled_bytes)`` is the protocol's callback that returns
    flow-control credit to the peer; it is called when the app takes chunks, and for whatever is
    still buffered when the stream closes (so the connection window never leaks).
    """

    def __init__(
        self,
        app: Any,
        config: Config,
        context: WorkerContext,
        task_group: TaskGroup,
        ssl: bool,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        send: Callable[[Event], Awaitable[None]],
        stream_id: int,
        consumed: Callable[[int, int], None],
        push_body: tuple[Callable[[int, bytes], bool], Callable[[], None]] | None = None,
        listen_later: Callable[[GrpcHTTPStream], None] | None = None,
        respond: Respond | None = None,
    ) -> None:
        super().__init__(app, config, context, task_group, ssl, client, server, send, stream_id)
        # Hypercorn's task group spawns ``self.app`` with its own queue-backed receive; we hand
        # the app our receive instead, through the bound method ``_call_app``, set as ``self.app``
        # only while the request is handled (see handle): kept there, it would tie the stream
        # into a reference cycle that only the garbage collector frees.
        self._inner_app = app
        self._consumed = consumed
        self._chunks: deque[bytes | bytearray | memoryview] = deque()
        # BODY_PARTS_EXTENSION: the app marks it "wanted" (see _types), once it has checked
        # that its receive is ours (a middleware's may rewrite bodies: it gets them joined).
        # By id, not a reference: the scope holds this, and must not hold the stream.
        self._parts: dict[str, Any] = {"owner": id(self)}
        self._unacknowledged = 0  # flow-controlled bytes buffered and not yet credited
        self._ended = False  # END_STREAM received
        self._end_delivered = False  # the app was told more_body=False
        self._disconnected = False
        self._waiter: asyncio.Future[None] | None = None
        self._closed = _ClosedSignal()
        self._listen = hooks = _AppHooks(push_body, stream_id)
        # Both extensions' offer (one dict: what each reads is in it).
        self._hooks: dict[str, Any] = {
            "owner": id(self),
            "push": hooks,
            "flush": hooks.flush,
            "listen": hooks,
        }
        # The protocol's: calls notify_listener once the events of the current read are
        # handled (one call for all the chunks a read brought, not one per DATA frame).
        self._listen_later = listen_later
        self._listen_queued = False
        self._respond = respond
        self._respond_offer = {"owner": id(self)}

    async def _call_app(
        self,
        scope: Any,
        receive: Callable[[], Awaitable[ASGIReceiveEvent]],
        send: Callable[[ASGISendEvent], Awaitable[None]],
        sync_spawn: Callable[..., Any],
        call_soon: Callable[..., Any],
    ) -> None:
        extensions = scope["extensions"]
        extensions[TRAILERS_ONLY_EXTENSION] = {}
        extensions[STREAM_CLOSED_EXTENSION] = {"future": self._closed}
        extensions[BODY_PARTS_EXTENSION] = self._parts
        extensions[BODY_LISTEN_EXTENSION] = self._hooks
        if self._listen.flush is not None:
            extensions[BODY_SINK_EXTENSION] = self._hooks
        if self._respond is not None:
            extensions[RESPONSE_EXTENSION] = self._respond_offer
        await self._inner_app(scope, self.receive, send, sync_spawn, call_soon)

    # -- fed by the protocol's read loop; never awaits anything --------------------------------

    def feed(self, data: bytes | DataParts, flow_controlled_length: int) -> None:
        if self._disconnected:
            self._consumed(self.stream_id, flow_controlled_length)
            return
        if isinstance(data, DataParts):
            self._chunks.extend(data.parts)  # a large frame's pieces (see DataParts)
        elif data:
            chunks = self._chunks
            if len(data) < _SMALL_CHUNK and chunks:
                last = chunks[-1]
                if type(last) is bytearray:
                    last += data
                elif len(last) < _SMALL_CHUNK:
                    merged = bytearray(last)
                    merged += data
                    chunks[-1] = merged
                else:
                    chunks.append(data)
            else:
                chunks.append(data)
        self._unacknowledged += flow_controlled_length
        self._wake()

    def end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self._listen.callback is not None:
            if self._listen_later is None:
                self.notify_listener()
            elif not self._listen_queued:
                self._listen_queued = True
                self._listen_later(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def notify_listener(self) -> None:
        """Tell the app's body-listen callback that input arrived (it may take it now, with
        :meth:`receive_nowait`)."""
        self._listen_queued = False
        callback = self._listen.callback
        if callback is not None:
            callback()

    async def handle(self, event: Event) -> None:
        if isinstance(event, Body):
            self.feed(event.data, len(event.data))
        elif isinstance(event, EndBody):
            self.end()
        elif isinstance(event, StreamClosed):
            if self.closed:
                return
            self.closed = True
            self._disconnected = True
            self._chunks.clear()
            if self._unacknowledged:
                self._consumed(self.stream_id, self._unacknowledged)
                self._unacknowledged = 0
            hooks = self._listen
            callback = hooks.callback
            if callback is not None:
                hooks.callback = None  # (it holds the app's side, which holds this)
                callback()  # (now: nothing later would)
            self._wake()
            self._closed.set()
            self._listen.closed = True
            if self.state != ASGIHTTPState.CLOSED and hasattr(self, "start_time"):
                # No response summary: the stream closed before the response did (as stock).
                await self.config.log.access(
                    self.scope,
                    None,  # type: ignore[arg-type]
                    time() - self.start_time,
                )
        elif isinstance(event, Request):
            self.app = self._call_app
            try:
                await super().handle(event)
            finally:
                self.app = self._inner_app

    # -- the app's side --------------------------------------------------------------------------

    async def receive(self) -> ASGIReceiveEvent:
        """``http.request`` chunks in order (everything buffered, joined), the last one with
        ``more_body=False``; ``http.disconnect`` as soon as the stream closes, even with chunks
        still buffered (they are dropped: nobody will answer them)."""
        while True:
            event = self.receive_nowait()
            if event is not None:
                return event
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None

    def receive_nowait(self) -> ASGIReceiveEvent | None:
        """What :meth:`receive` returns now, or None when it would wait."""
        if self._disconnected:
            return _DISCONNECT
        if self._chunks:
            chunks = self._chunks
            credit, self._unacknowledged = self._unacknowledged, 0
            self._consumed(self.stream_id, credit)
            more_body = not self._ended
            self._end_delivered = not more_body
            if "wanted" in self._parts and (len(chunks) > 1 or type(chunks[0]) is not bytes):
                parts = list(chunks)
                chunks.clear()
                event = {
                    "type": "http.request",
                    "body": b"",
                    "more_body": more_body,
                    BODY_PARTS_EXTENSION: parts,
                }
                return cast(ASGIReceiveEvent, event)  # (http.request, our extension's key)
            body = bytes(chunks.popleft()) if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            return {"type": "http.request", "body": body, "more_body": more_body}
        if self._unacknowledged:  # padding-only or empty DATA frames
            credit, self._unacknowledged = self._unacknowledged, 0
            self._consumed(self.stream_id, credit)
        if self._ended and not self._end_delivered:
            self._end_delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return None

    async def app_send(self, message: ASGISendEvent | None) -> None:
        if message is not None and message["type"] == RESPONSE_EXTENSION:
            await self._send_response(message)
            return
        if self.closed and message is not None and message["type"] == "http.response.body":
            # The stream is gone (reset, or the connection lost): the body is dropped without
            # waiting on anything. Yield to the loop anyway, so the disconnect reaches the app
            # and cancels a handler that only writes; else it would run hot here, starving
            # every other connection until it had written its whole answer into the void.
            await asyncio.sleep(0)
            return
        if (
            message is not None
            and message["type"] == "http.response.trailers"
            and self.state == ASGIHTTPState.REQUEST
            and not self.closed
        ):
            # Stock Hypercorn sends these as response HEADERS followed by an empty DATA frame
            # with END_STREAM, which gRPC clients reject. One HEADERS frame with END_STREAM is a
            # complete HTTP/2 response (and gRPC's trailers-only response).
            headers = build_and_validate_headers(message.get("headers", []))
            self.response = {
                "type": "http.response.start",
                "status": 200,
                "headers": headers,
                "trailers": False,
            }
            await self.send(TrailersOnly(stream_id=self.stream_id, headers=headers))
            self.state = ASGIHTTPState.CLOSED
            await self.config.log.access(self.scope, self.response, time() - self.start_time)
            await self.send(StreamClosed(stream_id=self.stream_id))
            return
        await super().app_send(message)

    async def _send_response(self, message: Any) -> None:
        """RESPONSE_EXTENSION's message (see _types): what ``app_send`` does for the start,
        body and trailers messages it stands for, in one step: the headers and trailers
        validated as Hypercorn validates them, the stream's response state and access log
        as after its trailers, and the whole response handed to the protocol at once."""
        body: list[bytes] = message["body"]
        if (
            self._respond is None
            or self.closed
            or self.state != ASGIHTTPState.REQUEST
            or self.scope["method"] == "HEAD"  # (stock sends no body for HEAD)
            or _TE_TRAILERS not in self.scope["headers"]  # (nor trailers without te: trailers)
        ):
            # What the stock path makes of the messages it stands for (nothing, once closed).
            await self.app_send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": message["headers"],
                    "trailers": True,
                }
            )
            parts = body or [b""]
            for part in parts[:-1]:
                await self.app_send({"type": "http.response.body", "body": part, "more_body": True})
            await self.app_send(
                {"type": "http.response.body", "body": parts[-1], "more_body": False}
            )
            await self.app_send(
                {
                    "type": "http.response.trailers",
                    "headers": message["trailers"],
                    "more_trailers": False,
                }
            )
            return
        headers = build_and_validate_headers(message["headers"])
        trailers = build_and_validate_headers(message["trailers"])
        # (What stock keeps, for the access log: the start message, headers as the app gave.)
        self.response = {
            "type": "http.response.start",
            "status": 200,
            "headers": message["headers"],
            "trailers": True,
        }
        self.state = ASGIHTTPState.CLOSED
        await self._respond(self.stream_id, headers, body, trailers)
        await self.config.log.access(self.scope, self.response, time() - self.start_time)
        await self.send(StreamClosed(stream_id=self.stream_id))
