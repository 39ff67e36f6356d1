"""DATA frames without copying their payloads, on h2, for the client and the server alike.

h2 copies every payload byte it sends four times (into its ``DataFrame``'s body, the frame's
serialization, its output buffer, and out of that buffer) and every byte it receives three
times (into its frame buffer, a bytearray slice of it, and the frame's payload), and its frame
buffer copied the rest of the buffer again after each frame. On 1 MiB messages those copies were
the largest share of either side's CPU. Here:

- :func:`data_frame_header` takes h2's ``send_data`` steps for one unpadded DATA frame (flow
  control and frame size checks, the connection and stream state machines, both windows) and
  returns the frame's 9-byte header: the caller writes the header and the payload (or a view of
  it) itself, after what h2 has queued before it, and the bytes are joined once for the socket.
- :func:`take_data_frame` builds the ``DataFrame`` h2 reads from an unpadded DATA frame at the
  start of a frame buffer, with one copy of the payload; :class:`DataFrameBuffer` is h2's frame
  buffer with that fast path (the client's; the server's adds its checks in ``check_header``).

The frame buffer also parses the two other frames a call brings in every time itself:

- a HEADERS frame that is a whole header block (END_HEADERS, no padding, no priority:
  response headers and trailers, request headers) becomes the ``HeadersFrame`` hyperframe would
  build (:func:`take_headers_frame`). hyperframe's parse ran three mixin ``__init__``s, built
  a flag set bit by bit and sliced the payload twice: about a tenth of the blocking client's CPU
  per unary call (two blocks a call).
- a WINDOW_UPDATE frame is applied by the connection during the read
  (``FastH2Connection._window_update``) and only its event comes out, in order with the
  other frames' events (grpcio sends two with every message after one it received).

Every other frame, a malformed one and any frame inside a header block go through h2's own
parse and its errors.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import h2.connection
import h2.events
import h2.exceptions
import h2.frame_buffer
from h2.connection import ConnectionInputs, ConnectionState
from h2.stream import StreamInputs, StreamState
from hyperframe.frame import DataFrame, Frame, HeadersFrame

__all__ = [
    "DataFrameBuffer",
    "DataParts",
    "data_frame_header",
    "take_data_frame",
    "take_headers_frame",
]

_DATA, _HEADERS, _WINDOW_UPDATE = 0x0, 0x1, 0x8
_END_STREAM = 0x1
_END_HEADERS = 0x4
_PADDED = 0x8
_PRIORITY = 0x20
_MAX_WINDOW = 2**31 - 1
_FRAME_HEADER = struct.Struct(">HBBBL")  # length (24 bits: 16 + 8), type, flags, stream id


class _Flags(frozenset[str]):
    """A received frame's flags: h2 only tests them, so each set is a constant. Shown as
    hyperframe's ``Flags`` are (a trace log's frame repr)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(sorted(self))


_NO_FLAGS = _Flags()
_END_STREAM_FLAGS = _Flags(("END_STREAM",))
_BLOCK_FLAGS = _Flags(("END_HEADERS",))
_LAST_BLOCK_FLAGS = _Flags(("END_HEADERS", "END_STREAM"))
_stock_next = h2.frame_buffer.FrameBuffer.__next__
# DATA frames from this size on are gathered piece by piece (DataFrameBuffer); pieces below
# _SMALL_PIECE are merged.
_COLLECT = 64 * 1024
_SMALL_PIECE = 1024


# Connection states where h2's SEND_DATA and SEND_HEADERS change nothing, and stream states
# where its SEND_DATA changes nothing (h2's transition tables: no side effect, same state).
_CONNECTION_OPEN = frozenset((ConnectionState.CLIENT_OPEN, ConnectionState.SERVER_OPEN))
_SENDING = frozenset((StreamState.OPEN, StreamState.HALF_CLOSED_REMOTE))
_STREAM_OPEN = StreamState.OPEN
_HALF_CLOSED_LOCAL = StreamState.HALF_CLOSED_LOCAL


def data_frame_header(
    conn: h2.connection.H2Connection, stream_id: int, length: int, end_stream: bool
) -> bytes:
    """h2's ``send_data`` for an unpadded DATA frame of ``length`` bytes, except that the frame
    is not queued: its 9-byte header is returned. Raises what h2 raises (a closed or unknown
    stream, FlowControlError, FrameTooLargeError, state machine errors), in h2's order."""
    window = conn.local_flow_control_window(stream_id)
    if length > window:
        raise h2.exceptions.FlowControlError(
            f"Cannot send {length} bytes, flow control window is {window}"
        )
    if length > conn.max_outbound_frame_size:
        raise h2.exceptions.FrameTooLargeError(
            f"Cannot send frame size {length}, max frame size is {conn.max_outbound_frame_size}"
        )
    # The transitions change nothing on an open connection and a stream we may send on (no side
    # effect either), and END_STREAM on an open stream only moves it to half-closed (local):
    # h2's machines are run only where they would do more (a state change or h2's error).
    if conn.state_machine.state not in _CONNECTION_OPEN:
        conn.state_machine.process_input(ConnectionInputs.SEND_DATA)
    stream = conn.streams[stream_id]
    machine = stream.state_machine
    state = machine.state
    if state not in _SENDING:
        machine.process_input(StreamInputs.SEND_DATA)
    if end_stream:
        if state is _STREAM_OPEN:  # (h2's table: to HALF_CLOSED_LOCAL, no side effect)
            machine.state = _HALF_CLOSED_LOCAL
        else:
            machine.process_input(StreamInputs.SEND_END_STREAM)
    stream.outbound_flow_control_window -= length
    conn.outbound_flow_control_window -= length
    flags = _END_STREAM if end_stream else 0
    return _FRAME_HEADER.pack(length >> 8, length & 0xFF, _DATA, flags, stream_id)


def _new_data_frame(stream_id: int, end_stream: int, length: int, payload: bytes) -> DataFrame:
    frame = DataFrame.__new__(DataFrame)
    frame.stream_id = stream_id
    frame.flags = _END_STREAM_FLAGS if end_stream else _NO_FLAGS  # type: ignore[assignment]
    frame.pad_length = 0
    frame.body_len = length
    frame.data = payload
    return frame


def take_data_frame(stream_id: int, end_stream: int, data: bytearray, length: int) -> DataFrame:
    """The unpadded DATA frame at the start of ``data``, taken off it: what hyperframe's parse
    makes (h2 reads ``stream_id``, ``data``, ``flags`` and ``flow_controlled_length``), without
    its three ``__init__``s and the flag set built for each frame, and with one copy of the
    payload. The flags are immutable: h2 only tests a received frame's flags."""
    view = memoryview(data)
    payload = view[9 : 9 + length].tobytes()  # one copy (a bytearray slice is a copy too)
    view.release()
    del data[: 9 + length]  # from the front of a bytearray: no copy of the rest
    return _new_data_frame(stream_id, end_stream, length, payload)


def take_headers_frame(
    stream_id: int, end_stream: int, data: bytearray, length: int
) -> HeadersFrame:
    """The HEADERS frame carrying a whole header block (END_HEADERS set, PADDED and PRIORITY
    not) at the start of ``data``, taken off it: what hyperframe's parse makes (h2 reads
    ``stream_id``, ``data`` and ``flags``), with immutable flags as :func:`take_data_frame`."""
    frame = HeadersFrame.__new__(HeadersFrame)
    frame.stream_id = stream_id
    frame.flags = _LAST_BLOCK_FLAGS if end_stream else _BLOCK_FLAGS  # type: ignore[assignment]
    frame.body_len = length
    frame.pad_length = 0
    frame.depends_on = 0
    frame.stream_weight = 0
    frame.exclusive = False
    view = memoryview(data)
    frame.data = view[9 : 9 + length].tobytes()
    view.release()
    del data[: 9 + length]
    return frame


def _no_window_update(stream_id: int, increment: int) -> None:
    return None


class _LargeFrame:
    """A large DATA frame being received: its payload as the pieces that brought it."""

    __slots__ = ("end_stream", "have", "length", "pieces", "stream_id")

    def __init__(self, stream_id: int, end_stream: int, length: int) -> None:
        self.stream_id = stream_id
        self.end_stream = end_stream
        self.length = length
        self.have = 0
        self.pieces: list[bytes | bytearray | memoryview] = []

    def add(self, piece: memoryview, owner: object) -> None:
        """Keep ``piece`` (a view of ``owner``): as it is when ``owner`` is immutable bytes
        and the piece is at least half of it (a view keeps all of ``owner`` alive: the pieces
        of a frame hold at most twice its size, also once handed on as DataParts), else copied
        (small pieces merged into a bytearray, so a frame trickling in a byte at a time costs
        about its size, not an object per byte)."""
        pieces = self.pieces
        if len(piece) < _SMALL_PIECE or type(owner) is not bytes or 2 * len(piece) < len(owner):
            last = pieces[-1] if pieces else None
            if type(last) is bytearray and len(piece) < _SMALL_PIECE:
                last += piece
            elif len(piece) < _SMALL_PIECE:
                pieces.append(bytearray(piece))
            else:
                pieces.append(piece.tobytes())
        else:
            pieces.append(piece)
        self.have += len(piece)

    def frame(self, keep_parts: bool) -> DataFrame:
        payload: Any
        if keep_parts:
            payload = DataParts(self.pieces, self.length)
            self.pieces = []
        else:
            payload = b"".join(self.pieces)  # the one copy of the payload
            self.pieces.clear()
        return _new_data_frame(self.stream_id, self.end_stream, self.length, payload)


class DataParts:
    """A large received DATA frame's payload as the pieces that brought it (bytes, views of
    immutable bytes, or bytearrays of small pieces merged), not joined: the server's frame
    buffer hands these on (``DataFrameBuffer.keep_parts``), so that a gRPC request message
    spread over frames is joined once, by the message reader, instead of once per frame and
    again per message. h2 only takes its ``len()``; ``bytes()`` joins it."""

    __slots__ = ("length", "parts")

    def __init__(self, parts: list[bytes | bytearray | memoryview], length: int) -> None:
        self.parts = parts
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)

    def __getitem__(self, index: slice) -> bytes:
        # (The frame's repr for h2's trace log, when a logger is configured.)
        return bytes(self)[index]


class DataFrameBuffer(h2.frame_buffer.FrameBuffer):
    """h2's frame buffer, with complete unpadded DATA frames (within the frame size limit, on a
    stream, outside a header block) taken by :func:`take_data_frame`, whole header blocks in one
    HEADERS frame by :func:`take_headers_frame` and WINDOW_UPDATE frames applied during a read
    (module docstring); every other frame, and any error, is h2's. An incomplete DATA frame
    waits without a frame object per read, and one of :data:`_COLLECT` bytes or more is
    gathered as the pieces that bring it and joined once (h2 appended each piece to its buffer,
    grown by ``realloc``, then copied the payload out)."""

    # Large frames' payloads as DataParts (the server's buffer), else joined bytes.
    keep_parts = False

    def __init__(self, server: bool = False) -> None:
        super().__init__(server=server)
        self._large: _LargeFrame | None = None
        # While the connection takes frames (FastH2Connection._receive_data): where the events
        # of the WINDOW_UPDATE frames taken here go, in order with those of the frames returned,
        # and what applies one (its event, or None: h2's own path for that frame).
        self.events: list[h2.events.Event] | None = None
        self.window_update: Callable[[int, int], h2.events.Event | None] = _no_window_update

    def check_header(self, kind: int, flags: int, length: int) -> None:
        """Checks of a side on each frame's 9-byte header, before its body is buffered (the
        server's); raises h2's errors."""

    def add_data(self, data: Any) -> None:  # (h2: a buffer)
        large = self._large
        if large is None or large.have >= large.length:
            super().add_data(data)
            return
        view = memoryview(data)
        need = large.length - large.have
        owner = view.obj
        if len(view) <= need:
            large.add(view, owner)
        else:
            large.add(view[:need], owner)
            self._data += view[need:]

    def take_data(self, stream_id: int, end_stream: int, length: int) -> DataFrame:
        """The DATA frame whose header (checked by the caller) starts the buffer, or
        StopIteration until it is all here (a large one then gathered by add_data)."""
        data = self._data
        if len(data) >= length + 9:
            return take_data_frame(stream_id, end_stream, data, length)
        if length >= _COLLECT:
            large = _LargeFrame(stream_id, end_stream, length)
            view = memoryview(data)
            large.pieces.append(view[9:].tobytes())
            view.release()
            large.have = len(data) - 9
            data.clear()
            self._large = large
        raise StopIteration

    def gathering(self) -> int:
        """Bytes still to come of the large DATA frame being gathered (0: none is)."""
        large = self._large
        return 0 if large is None else large.length - large.have

    def large_frame(self) -> DataFrame | None:
        """A gathered large frame once complete (StopIteration while it is not)."""
        large = self._large
        if large is None:
            return None
        if large.have < large.length:
            raise StopIteration
        self._large = None
        return large.frame(self.keep_parts)

    def __next__(self) -> Frame:
        large = self.large_frame()
        if large is not None:
            return large
        data = self._data
        while len(data) >= 9:  # (again only after a WINDOW_UPDATE taken here)
            length = (data[0] << 16) | (data[1] << 8) | data[2]
            kind = data[3]
            flags = data[4]
            self.check_header(kind, flags, length)
            if length > self.max_frame_size or self._headers_buffer:
                break  # (h2's errors)
            if kind == _DATA:
                if not flags & _PADDED:
                    stream_id = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
                    if stream_id:  # (on stream 0: h2's error)
                        # (Not all here yet: StopIteration without the frame object h2
                        # would build on every read; a large frame is gathered as it comes.)
                        return self.take_data(stream_id, flags & _END_STREAM, length)
            elif kind == _HEADERS:
                if flags & (_END_HEADERS | _PADDED | _PRIORITY) == _END_HEADERS:
                    stream_id = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
                    if stream_id:
                        if len(data) < 9 + length:
                            raise StopIteration
                        return take_headers_frame(stream_id, flags & _END_STREAM, data, length)
            elif kind == _WINDOW_UPDATE and length == 4 and len(data) >= 13:
                increment = int.from_bytes(data[9:13], "big")
                if self.events is not None and 1 <= increment <= _MAX_WINDOW:
                    # (An increment of 0 or with the reserved bit: hyperframe's error.)
                    stream_id = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
                    event = self.window_update(stream_id, increment)
                    if event is not None:
                        del data[:13]
                        self.events.append(event)
                        continue
            break
        return _stock_next(self)
