"""One HTTP/2 request/response exchange on a client :class:`~._connection.Connection`."""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Any

from .._core import Headers, StatusCode, parse_http_status
from ._transport_errors import ConnectionTerminated, StreamClosed, TransportError

if TYPE_CHECKING:
    from ._connection import Connection

# Below this many bytes, buffered chunks are joined into one piece by read_parts.
_JOIN_BELOW = 64 * 1024

__all__ = ["BodyReader", "Stream"]


class BodyReader:
    """The response-body reads shared by :class:`Stream` and the gRPC-Web stream: a subclass
    keeps its received chunks in ``_chunks``, sets ``_ended`` at the end of the body, and
    defines how buffered chunks are taken (``_take``, and ``_take_parts`` where keeping them
    apart saves a copy), how a failed or closed stream raises, and how to wait for more."""

    __slots__ = ()

    _chunks: collections.deque[Any]
    _ended: bool

    def _take(self) -> bytes:
        raise NotImplementedError

    def _check_readable(self) -> None:
        raise NotImplementedError

    async def _wait(self) -> None:
        raise NotImplementedError

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

    async def read_parts(self) -> list[bytes]:
        """Like :meth:`read`, but the body received so far as a list of pieces (``[]`` once
        the body is over): one piece when it is small, else the chunks as they arrived, so
        that a caller parsing messages out of them (which joins a message's pieces anyway)
        does not copy a large body twice."""
        while True:
            if self._chunks:
                return self._take_parts()
            if self._ended:
                return []
            self._check_readable()
            await self._wait()

    def read_parts_nowait(self) -> list[bytes] | None:
        """Like :meth:`read_parts`, but ``None`` instead of waiting."""
        if self._chunks:
            return self._take_parts()
        if self._ended:
            return []
        self._check_readable()
        return None

    def _take_parts(self) -> list[bytes]:
        return [self._take()]


class Stream(BodyReader):
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
        """The HTTP ``:status`` of the response: 0 before headers or when missing, -1 when
        it is not a three-digit number (see :func:`~asgi_grpc._core.parse_http_status`)."""
        if self._headers is not None:
            for name, value in self._headers:
                if name == b":status":
                    return parse_http_status(value)
        return 0

    @property
    def ended(self) -> bool:
        """The peer ended the response normally (END_STREAM)."""
        return self._ended

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

    def _take_parts(self) -> list[bytes]:
        chunks = self._chunks
        if len(chunks) == 1:
            return [self._take()]
        parts = [chunk for chunk, _ in chunks]
        if sum(map(len, parts)) < _JOIN_BELOW:
            return [self._take()]  # small frames (small messages): one piece to parse
        length = sum([n for _, n in chunks])
        chunks.clear()
        self._conn._acknowledge(self.stream_id, length)
        return parts

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
        if not self._local_ended:
            # The response is complete before our request is: the exchange is over (a gRPC
            # server ends the call with its trailers), so free our half at once with
            # RST_STREAM(NO_ERROR) (RFC 9113 8.1), as grpcio does; otherwise the stream keeps
            # a slot of the peer's MAX_CONCURRENT_STREAMS until the caller closes it.
            self._conn._reset_stream(self, 0)
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
