"""How the server reads its sockets: :class:`GrpcTCPServer`, Hypercorn's asyncio ``TCPServer``
reading through :class:`SocketInput` instead of an ``asyncio.StreamReader``.

A ``StreamReader`` copies every byte it receives before Hypercorn sees it: ``feed_data`` extends
a bytearray, and ``read(n)`` copies out of it (``bytes(buffer[:n])`` on CPython 3.11: a bytearray
slice, then ``bytes`` of it; ``bytes(memoryview(buffer)[:n])`` from 3.12). On 1 MiB requests
those three copies were a fifth of the server's instructions (bench/README.md, "What bought
what"). :class:`SocketInput` keeps the
``bytes`` objects the transport hands over and gives them to Hypercorn as they are; the frame
buffer keeps views of them for large DATA frames (``asgi_grpc._h2data``), so a request payload is
copied once, when its frame is complete.

It is swapped in as the transport's protocol when the connection starts (``set_protocol``, public
asyncio API; the same for asyncio's socket and TLS transports and for uvloop's), ahead of the
``StreamReaderProtocol`` that ``asyncio.start_server`` made, and forwards to that protocol
everything but the received bytes: ``pause_writing``/``resume_writing`` (so the ``StreamWriter``'s
``drain()`` still waits for the socket), ``eof_received`` (its answer too: keep a half-closed
TCP connection open, close a TLS one) and ``connection_lost`` (``drain()`` and ``wait_closed()``).

Backpressure is the ``StreamReader``'s, with ``start_server(limit=READ_SIZE)``: the connection's
read loop stops reading while the protocol holds it (frames the client provokes but does not
read, over ``_MAX_PENDING``); the bytes received meanwhile are buffered, and past
:data:`HIGH_WATER` the transport stops reading from the socket (TCP then slows the client down)
until the loop has taken the buffer down to :data:`LOW_WATER`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from ssl import SSLError
from typing import Any

from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.events import Closed, RawData

__all__ = ["HIGH_WATER", "LOW_WATER", "GrpcTCPServer", "SocketInput"]

# What a connection buffers before the transport stops reading, and where it starts again: the
# StreamReader's limits with start_server(limit=256 KiB) (pause past twice the limit, resume at
# the limit). A read is at most 256 KiB (asyncio's and uvloop's socket transports).
LOW_WATER = 256 * 1024
HIGH_WATER = 2 * LOW_WATER
# Chunks waiting together are handed over in one piece while they add up to no more than this
# (a copy of small chunks, which h2's frame buffer would copy anyway; large ones go alone).
_MERGE = 64 * 1024


class SocketInput(asyncio.Protocol):
    """The bytes a connection receives, as the transport's protocol: ``read()`` returns what
    has arrived (the transport's own ``bytes`` objects), ``b""`` at the end of input.

    ``stream_protocol`` is the ``StreamReaderProtocol`` it replaces: everything but the data is
    forwarded to it (see the module docstring). No ``__slots__``: bench/wire_timeline.py wraps
    ``data_received`` on the instance.
    """

    def __init__(self, transport: asyncio.BaseTransport, stream_protocol: Any) -> None:
        self._transport: Any = transport
        self._stream_protocol = stream_protocol
        self._loop = asyncio.get_running_loop()
        self._chunks: deque[bytes] = deque()
        self._size = 0  # bytes in _chunks
        self._eof = False
        self._exception: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False  # we paused the transport's reading

    # -- the transport's side --------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if not data:
            return
        if type(data) is not bytes:
            # Kept without a copy only when immutable: a transport could reuse its buffer.
            data = bytes(data)
        self._chunks.append(data)
        self._size += len(data)
        self._wake()
        if self._size > HIGH_WATER and not self._paused:
            try:
                self._transport.pause_reading()
            except NotImplementedError:
                return  # (as StreamReader: a transport that cannot pause is read unbounded)
            self._paused = True

    def eof_received(self) -> bool | None:
        self._eof = True
        self._wake()
        answer: bool | None = self._stream_protocol.eof_received()
        return answer

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self._eof = True
        else:
            self._exception = exc
        self._wake()
        self._stream_protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self._stream_protocol.pause_writing()

    def resume_writing(self) -> None:
        self._stream_protocol.resume_writing()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- the read loop's side --------------------------------------------------------------------

    def put_back(self, data: bytes) -> None:
        """``data`` received before this took over: read before anything else."""
        if data:
            self._chunks.appendleft(data)
            self._size += len(data)

    async def read(self) -> bytes:
        """The next bytes received (the transport's chunk, or small chunks joined), ``b""`` at
        the end of input; raises the error that ended the connection, as StreamReader does."""
        chunks = self._chunks
        while not chunks or self._exception is not None:
            if self._exception is not None:
                raise self._exception
            if self._eof:
                return b""
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        data = chunks.popleft()
        size = len(data)
        if size < _MERGE and chunks and size + len(chunks[0]) <= _MERGE:
            parts = [data]
            while chunks and size + len(chunks[0]) <= _MERGE:
                part = chunks.popleft()
                parts.append(part)
                size += len(part)
            data = b"".join(parts)
        self._size -= size
        if self._paused and self._size <= LOW_WATER:
            self._paused = False
            self._transport.resume_reading()
        return data


async def take_over(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> SocketInput | None:
    """Put a :class:`SocketInput` in place of ``reader`` on ``writer``'s transport, with what
    ``reader`` had received; None (read through ``reader``, as stock Hypercorn) if the input has
    already ended or failed.

    A client that sent bytes and then half-closed before this runs (the connection's first task
    step) loses its end of input here (``reader`` cannot say it has one while it holds data);
    the connection then ends as an idle one does (``keep_alive_timeout``). HTTP/2 clients do not
    half-close.
    """
    transport = writer.transport
    if transport.is_closing() or reader.at_eof() or reader.exception() is not None:
        return None
    source = SocketInput(transport, transport.get_protocol())
    transport.set_protocol(source)
    # From here the StreamReader gets nothing more: take what it holds (never waits: at EOF,
    # read(-1) returns the buffer).
    reader.feed_eof()
    source.put_back(await reader.read(-1))
    return source


class GrpcTCPServer(TCPServer):
    """Hypercorn's asyncio ``TCPServer``, reading through a :class:`SocketInput`."""

    _input: SocketInput | None = None

    async def run(self) -> None:
        self._input = await take_over(self.reader, self.writer)
        await super().run()

    async def _read_data(self) -> None:
        source = self._input
        if source is None:
            await super()._read_data()
            return
        handle = self.protocol.handle
        timeout = self.config.read_timeout
        while True:
            try:
                if timeout is None:
                    data = await source.read()
                else:
                    data = await asyncio.wait_for(source.read(), timeout)
            except (ConnectionError, OSError, asyncio.TimeoutError, TimeoutError, SSLError):
                break  # (the errors stock Hypercorn's loop ends on)
            if not data:
                break
            await handle(RawData(data))
        await handle(Closed())
