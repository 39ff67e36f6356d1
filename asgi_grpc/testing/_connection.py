"""A client connection whose peer is an ASGI app in the same event loop: no sockets, no h2.

:class:`AppConnection` is a :class:`~asgi_grpc.client._connection.Connection` to the channel's
pool, and its streams are the client's own :class:`~asgi_grpc.client._stream.Stream`: the call
code above them runs exactly as over the wire (same stream states, same trailers-only detection,
same header size limit). Only the HTTP/2 part is replaced: instead of queueing frames in h2, each
stream has an :class:`Exchange` that runs the app as a task, with the ASGI scope Hypercorn would
build, and maps what the app sends onto the stream's events.

Flow control is kept, per stream, because it is what makes full duplex honest:

- request side: the client's ``send`` hands bytes to the exchange while less than the server's
  stream window (``AppServer.request_window``) is buffered and unread by the app; beyond that
  it waits, as it would for WINDOW_UPDATE. The app's ``receive()`` takes everything buffered
  (joined), as asgi_grpc's Hypercorn stream does, and so frees the window.
- response side: the app's ``send`` of a body chunk returns once the client holds less than its
  stream window of unread response bytes (the client acknowledges bytes as its caller reads).

Resets: a client ``close()``/cancel/deadline before the exchange is over (RST_STREAM CANCEL on
the wire) closes the server side: the app's ``receive()`` returns ``http.disconnect`` and what
it sends later is dropped. Once the response is complete the server side is closed too, so
``receive()`` then returns ``http.disconnect``, as with Hypercorn. An app that raises or returns
mid-response gets its stream reset (INTERNAL_ERROR); one that returns before starting a response
gets a 500, as from Hypercorn.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from collections.abc import Callable, Iterable

from h2.errors import ErrorCodes

from .._core import Headers, StatusCode
from ..client._connection import Connection, ConnectionSettings, Stream
from ..client._h2 import header_list_size
from ..client._transport_errors import ConnectionTerminated, StreamReset
from ..server._types import STREAM_CLOSED_EXTENSION, Message
from ._app_server import AppServer

__all__ = ["AppConnection", "Exchange"]

logger = logging.getLogger("asgi_grpc.testing")

#: How long closing the connection waits for apps to end after their disconnect.
CLOSE_GRACE = 5.0


class _State(enum.Enum):
    REQUEST = enum.auto()  # no response yet
    RESPONSE = enum.auto()  # headers sent, body going
    TRAILERS = enum.auto()  # body over, trailers to come
    CLOSED = enum.auto()  # response complete


class AppConnection(Connection):
    """A connection to an :class:`AppServer`: every stream runs the app as its own task."""

    def __init__(
        self,
        server: AppServer,
        settings: ConnectionSettings,
        *,
        on_capacity: Callable[[], None] | None = None,
        on_goaway: Callable[[Connection, int, bytes], None] | None = None,
    ) -> None:
        super().__init__(settings, on_capacity=on_capacity, on_goaway=on_goaway, name="in-memory")
        self.app_server = server
        self._exchanges: dict[int, Exchange] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_stream_id = 1
        self.ready_at = self._loop.time()

    # -- what the pool asks ------------------------------------------------------------------

    @property
    def available(self) -> bool:
        return not self._closed and not self._draining

    def start_stream(self, headers: Headers, *, end_stream: bool = False) -> Stream:
        if self._closed or self._draining:
            raise ConnectionTerminated("connection is closing", retryable=True)
        stream_id = self._next_stream_id
        self._next_stream_id += 2
        stream = Stream(self, stream_id)
        self._streams[stream_id] = stream
        self._active += 1
        if end_stream:
            stream._local_ended = True
        exchange = Exchange(self, stream, headers, end_stream)
        self._exchanges[stream_id] = exchange
        # Runs from the next loop turn, as a request would reach a server after our flush.
        task = self._loop.create_task(exchange.run(), name=f"asgi_grpc in-memory {stream_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return stream

    # -- what the streams ask (the request side and resets) --------------------------------

    def _send_data(self, stream: Stream, data: bytes, offset: int, end_stream: bool) -> int:
        exchange = self._exchanges.get(stream.stream_id)
        if exchange is None or exchange.closed:
            # The server side is gone (reset, or answered and closed): as h2 would refuse.
            stream._local_ended = True
            raise stream._send_error()
        total = len(data)
        room = self.app_server.request_window - exchange.buffered
        if offset < total and room > 0:
            end = min(total, offset + room)
            exchange.feed(data if offset == 0 and end == total else data[offset:end])
            offset = end
        self.pings_without_data = 0
        if end_stream and offset >= total:
            exchange.end_request()
            self._local_end(stream)
        return offset

    async def _writable(self) -> None:
        if self._closed:
            raise self._error or ConnectionTerminated("connection closed")

    def _acknowledge(self, stream_id: int, length: int) -> None:
        exchange = self._exchanges.get(stream_id)
        if exchange is not None and length:
            exchange.acknowledged(length)

    def _close_stream(self, stream: Stream) -> None:
        """The caller closed ``stream`` before the exchange was over both ways."""
        exchange = self._exchanges.get(stream.stream_id)
        if exchange is not None:
            if stream._ended and not stream._local_ended:
                exchange.end_request()  # the polite END_STREAM of a complete response
            else:
                exchange.reset()  # RST_STREAM(CANCEL)
        stream._local_ended = True
        self._release(stream)

    def _reset_stream(self, stream: Stream, error_code: int) -> None:
        stream._local_ended = True
        exchange = self._exchanges.get(stream.stream_id)
        if exchange is not None:
            exchange.reset()
        stream._wake_sender()

    def _schedule_flush(self) -> None:
        pass  # nothing is ever queued for a socket

    def _forget(self, stream_id: int) -> None:
        self._exchanges.pop(stream_id, None)

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close now: open streams fail (ConnectionTerminated), apps see ``http.disconnect``."""
        if self._closed:
            return
        self._draining = True
        self._shutdown(
            ConnectionTerminated("connection closed locally", status=StatusCode.CANCELLED)
        )
        for exchange in list(self._exchanges.values()):
            exchange.reset()

    async def aclose(self) -> None:
        """Close, and wait for the apps to end (cancelled after :data:`CLOSE_GRACE` s)."""
        self.close()
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=CLOSE_GRACE)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CLOSE_GRACE)


class Exchange:
    """The server side of one stream: the app's ``receive`` and ``send``."""

    __slots__ = (
        "_chunks",
        "_closed_future",
        "_conn",
        "_end_delivered",
        "_receive_waiter",
        "_request_ended",
        "_send_waiter",
        "_state",
        "_trailers",
        "_unread",
        "_wants_trailers",
        "_wants_trailers_response",
        "buffered",
        "closed",
        "scope",
        "stream",
    )

    def __init__(
        self, conn: AppConnection, stream: Stream, headers: Headers, end_stream: bool
    ) -> None:
        self._conn = conn
        self.stream = stream
        self.scope = conn.app_server.scope(headers)
        self._wants_trailers = any(
            name == b"te" and value == b"trailers" for name, value in self.scope["headers"]
        )
        self._chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0  # request bytes the app has not taken yet
        self._request_ended = end_stream
        self._end_delivered = False
        self.closed = False  # the server side of the stream is closed (reset or answered)
        self._state = _State.REQUEST
        self._trailers: Headers = []
        self._wants_trailers_response = False  # http.response.start said trailers: True
        self._unread = 0  # response bytes the client has not read yet
        self._receive_waiter: asyncio.Future[None] | None = None
        self._send_waiter: asyncio.Future[None] | None = None
        self._closed_future: asyncio.Future[None] | None = None  # made when first asked for
        # As our Hypercorn protocol: an app whose request buffer is full (it stopped calling
        # receive()) still learns that the stream closed.
        self.scope["extensions"][STREAM_CLOSED_EXTENSION] = {"future": self.closed_future}

    def closed_future(self) -> asyncio.Future[None]:
        """A future that completes when the server side of the stream closes."""
        future = self._closed_future
        if future is None:
            future = self._closed_future = asyncio.get_running_loop().create_future()
            if self.closed:
                future.set_result(None)
        return future

    # -- from the client ---------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self.buffered += len(data)
            self._wake_receiver()

    def end_request(self) -> None:
        self._request_ended = True
        self._wake_receiver()

    def reset(self) -> None:
        """The stream is closed for the server: ``http.disconnect`` from now on."""
        if self.closed:
            return
        self.closed = True
        self._chunks.clear()
        self.buffered = 0
        self._wake_receiver()
        self._wake_sender()
        closed = self._closed_future
        if closed is not None and not closed.done():
            closed.set_result(None)

    def acknowledged(self, length: int) -> None:
        self._unread -= length
        if self._unread < self._conn._settings.stream_window:
            self._wake_sender()

    # -- the app -----------------------------------------------------------------------------

    async def run(self) -> None:
        conn = self._conn
        try:
            await conn.app_server.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            self._finish_unanswered()
            raise
        except Exception:
            logger.exception("Error in ASGI application (in-memory %s)", self.scope["path"])
        self._finish_unanswered()

    def _finish_unanswered(self) -> None:
        """The app is over: what Hypercorn does with a response it left unfinished."""
        try:
            if self.closed or self._state is _State.CLOSED:
                return
            if self._state is _State.REQUEST:
                self._deliver_headers([(b":status", b"500"), (b"content-length", b"0")])
                self._end_response()
                return
            # Mid-response: RST_STREAM(INTERNAL_ERROR), so the client fails at once.
            stream = self._live_stream()
            if stream is not None:
                stream._fail(StreamReset(ErrorCodes.INTERNAL_ERROR))
            self.reset()
        finally:
            self._conn._forget(self.stream.stream_id)

    async def receive(self) -> Message:
        """``http.request`` with everything buffered (joined), the last with
        ``more_body=False``; ``http.disconnect`` once the stream is closed."""
        while True:
            if self.closed:
                return {"type": "http.disconnect"}
            chunks = self._chunks
            if chunks:
                body = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self.buffered = 0
                self.stream._wake_sender()  # window freed
                more_body = not self._request_ended
                self._end_delivered = not more_body
                return {"type": "http.request", "body": body, "more_body": more_body}
            if self._request_ended and not self._end_delivered:
                self._end_delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}
            waiter = self._conn._loop.create_future()
            self._receive_waiter = waiter
            try:
                await waiter
            finally:
                self._receive_waiter = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        state = self._state
        if kind == "http.response.start" and state is _State.REQUEST:
            self._wants_trailers_response = bool(message.get("trailers", False))
            self._state = _State.RESPONSE
            headers = _response_headers(message.get("headers", ()))
            self._deliver_headers([(b":status", b"%d" % int(message["status"])), *headers])
        elif kind == "http.response.body" and state is _State.RESPONSE:
            body = bytes(message.get("body", b""))
            if body:
                await self._deliver_data(body)
            if not message.get("more_body", False):
                if self._wants_trailers_response:
                    self._state = _State.TRAILERS
                else:
                    self._end_response()
        elif kind == "http.response.trailers" and state is _State.REQUEST:
            # Trailers before any start: one HEADERS frame with END_STREAM (trailers-only), as
            # asgi_grpc's Hypercorn sends it.
            headers = [(b":status", b"200"), *_response_headers(message.get("headers", ()))]
            self._state = _State.CLOSED
            self._deliver_headers(headers, end_stream=True)
            self.reset()
        elif kind == "http.response.trailers" and state is _State.TRAILERS:
            if self._wants_trailers:
                self._trailers += _response_headers(message.get("headers", ()))
            if not message.get("more_trailers", False):
                self._end_response(self._trailers if self._wants_trailers else None)
        elif kind == "http.response.early_hint" and state is _State.REQUEST:
            pass  # an informational (1xx) response: clients skip it
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} in response state {state.name}")

    # -- onto the client stream --------------------------------------------------------------

    def _live_stream(self) -> Stream | None:
        """The client stream, while it still listens (not closed or reset)."""
        if self.closed:
            return None
        stream = self.stream
        return stream if self._conn._streams.get(stream.stream_id) is stream else None

    def _deliver_headers(self, headers: Headers, *, end_stream: bool = False) -> None:
        stream = self._live_stream()
        if stream is None:
            return
        conn = self._conn
        if header_list_size(headers) > conn._settings.max_header_list_size:
            conn._refuse_headers(stream, headers)
            return
        conn.proven = True
        stream._headers = headers
        if end_stream:
            stream.trailers_only = True
            stream._trailers = headers
        stream._wake()
        if end_stream:
            stream._on_end()

    async def _deliver_data(self, body: bytes) -> None:
        stream = self._live_stream()
        if stream is None:
            return
        self._unread += len(body)
        stream._on_data(body, len(body))
        window = self._conn._settings.stream_window
        while self._unread >= window and not self.closed:
            waiter = self._conn._loop.create_future()
            self._send_waiter = waiter
            try:
                await waiter
            finally:
                self._send_waiter = None

    def _end_response(self, trailers: Headers | None = None) -> None:
        self._state = _State.CLOSED
        stream = self._live_stream()
        if stream is not None:
            if trailers is not None:
                if header_list_size(trailers) > self._conn._settings.max_header_list_size:
                    self._conn._refuse_headers(stream, trailers)
                    self.reset()
                    return
                stream._trailers = trailers
            stream._on_end()
        self.reset()  # the server side is closed once the response is: http.disconnect

    def _wake_receiver(self) -> None:
        waiter = self._receive_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_sender(self) -> None:
        waiter = self._send_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _response_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """What asgi_grpc's Hypercorn sends of the app's header list: names and values stripped
    (``build_and_validate_headers``), nothing else changed: its h2 does not normalise the
    server's own headers (so an upper-case name reaches the client as such, and a gRPC
    client then misses ``Content-Type``, over the wire as here)."""
    result: Headers = []
    for raw_name, value in headers:
        name = bytes(raw_name).strip()
        if name[:1] == b":":
            raise ValueError("Pseudo headers are not valid")
        result.append((name, bytes(value).strip()))
    return result
