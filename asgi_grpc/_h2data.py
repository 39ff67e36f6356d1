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
  buffer with that fast path (the client's; the server's has its own checks around it).
"""

from __future__ import annotations

import struct

import h2.connection
import h2.exceptions
import h2.frame_buffer
from h2.connection import ConnectionInputs
from h2.stream import StreamInputs
from hyperframe.frame import DataFrame, Frame

__all__ = ["DataFrameBuffer", "data_frame_header", "take_data_frame"]

_DATA = 0x0
_END_STREAM = 0x1
_PADDED = 0x8
_FRAME_HEADER = struct.Struct(">HBBBL")  # length (24 bits: 16 + 8), type, flags, stream id
_NO_FLAGS: frozenset[str] = frozenset()
_END_STREAM_FLAGS = frozenset(("END_STREAM",))
_stock_next = h2.frame_buffer.FrameBuffer.__next__


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
    conn.state_machine.process_input(ConnectionInputs.SEND_DATA)
    stream = conn.streams[stream_id]
    machine = stream.state_machine
    machine.process_input(StreamInputs.SEND_DATA)
    if end_stream:
        machine.process_input(StreamInputs.SEND_END_STREAM)
    stream.outbound_flow_control_window -= length
    conn.outbound_flow_control_window -= length
    flags = _END_STREAM if end_stream else 0
    return _FRAME_HEADER.pack(length >> 8, length & 0xFF, _DATA, flags, stream_id)


def take_data_frame(stream_id: int, end_stream: int, data: bytearray, length: int) -> DataFrame:
    """The unpadded DATA frame at the start of ``data``, taken off it: what hyperframe's parse
    makes (h2 reads ``stream_id``, ``data``, ``flags`` and ``flow_controlled_length``), without
    its three ``__init__``s and the flag set built for each frame, and with one copy of the
    payload. The flags are immutable: h2 only tests a received frame's flags."""
    frame = DataFrame.__new__(DataFrame)
    frame.stream_id = stream_id
    frame.flags = _END_STREAM_FLAGS if end_stream else _NO_FLAGS  # type: ignore[assignment]
    frame.pad_length = 0
    frame.body_len = length
    view = memoryview(data)
    frame.data = view[9 : 9 + length].tobytes()  # one copy (a bytearray slice is a copy too)
    view.release()
    del data[: 9 + length]  # from the front of a bytearray: no copy of the rest
    return frame


class DataFrameBuffer(h2.frame_buffer.FrameBuffer):
    """h2's frame buffer, with complete unpadded DATA frames (within the frame size limit, on a
    stream, outside a header block) taken by :func:`take_data_frame`; every other frame, and
    any error, is h2's. An incomplete DATA frame waits without a frame object per read."""

    def __next__(self) -> Frame:
        data = self._data
        if len(data) >= 9 and data[3] == _DATA and not data[4] & _PADDED:
            length = (data[0] << 16) | (data[1] << 8) | data[2]
            stream_id = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
            if length <= self.max_frame_size and stream_id and not self._headers_buffer:
                if len(data) < length + 9:
                    raise StopIteration
                return take_data_frame(stream_id, data[4] & _END_STREAM, data, length)
        return _stock_next(self)
