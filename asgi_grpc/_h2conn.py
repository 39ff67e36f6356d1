"""What the client's and the server's h2 connections both change in h2
(:mod:`asgi_grpc.client._h2`, :mod:`asgi_grpc.server._hypercorn_h2`).

- Received frames are not formatted for h2's trace log: h2's ``_receive_frame`` starts with
  ``logger.trace("Received frame: %s", repr(frame))``, the repr of every frame (flags sorted,
  payload hexlified) built for a logger that drops it. With a real logger configured, h2's
  own method runs.
- Header blocks are framed without h2's frame objects (``send_headers``: the side's
  ``_send_headers_directly``, then :meth:`FastH2Connection._write_headers`), unless a priority
  is given or a trace logger is configured:
  h2 built a ``HeadersFrame`` (three mixin ``__init__``s and a flag set), its validation flags
  and a bytes copy of every header for each block.
- Repeated header lists are HPACK-encoded once while the table stands still
  (:class:`asgi_grpc._hpack.CachingEncoder`).
"""

from __future__ import annotations

import struct
from typing import Any

import h2.config
import h2.connection
import h2.exceptions
from h2.errors import ErrorCodes
from h2.stream import H2Stream, StreamInputs
from hyperframe.frame import RstStreamFrame

from ._hpack import CachingEncoder

__all__ = ["FastH2Connection"]

_HEADERS, _CONTINUATION = 0x1, 0x9
_END_STREAM, _END_HEADERS = 0x1, 0x4
_FRAME_HEADER = struct.Struct(">HBBBL")  # length (24 bits: 16 + 8), type, flags, stream id


class FastH2Connection(h2.connection.H2Connection):
    """h2's connection with the changes in the module docstring; each side subclasses it."""

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config=config)
        self.encoder = CachingEncoder()
        self._trace_frames = not isinstance(config.logger, h2.config.DummyLogger)

    def send_headers(
        self,
        stream_id: int,
        headers: Any,
        end_stream: bool = False,
        priority_weight: int | None = None,
        priority_depends_on: int | None = None,
        priority_exclusive: bool | None = None,
    ) -> None:
        if (
            self._trace_frames
            or priority_weight is not None
            or priority_depends_on is not None
            or priority_exclusive is not None
            or not self._send_headers_directly(stream_id, headers, end_stream)
        ):
            super().send_headers(
                stream_id,
                headers,
                end_stream,
                priority_weight,
                priority_depends_on,
                priority_exclusive,
            )

    def _send_headers_directly(self, stream_id: int, headers: Any, end_stream: bool) -> bool:
        """h2's ``send_headers`` for the cases a side knows (False, before any change of state:
        h2's own method runs instead); each side's steps end in :meth:`_write_headers`."""
        return False

    def _write_headers(
        self, stream: H2Stream, stream_id: int, headers: Any, end_stream: bool
    ) -> None:
        """What h2's ``H2Stream.send_headers`` does for headers or trailers on ``stream`` (the
        connection's own state machine has taken SEND_HEADERS), in the same order: the stream's
        state machine moves before the block is encoded (encoding changes the HPACK context for
        good), then the HEADERS (+ CONTINUATION) bytes are written directly."""
        machine = stream.state_machine
        machine.process_input(StreamInputs.SEND_HEADERS)
        block = self.encoder.encode(headers)
        if end_stream:
            machine.process_input(StreamInputs.SEND_END_STREAM)
        if machine.trailers_sent and not end_stream:
            raise h2.exceptions.ProtocolError("Trailers must have END_STREAM set.")
        size = self.max_outbound_frame_size
        flags = _END_STREAM if end_stream else 0
        out = self._data_to_send
        if len(block) <= size:
            out += _frame_header(len(block), _HEADERS, flags | _END_HEADERS, stream_id)
            out += block
            return
        last = len(block) - size
        for start in range(0, len(block), size):
            piece = block[start : start + size]
            kind = _HEADERS if start == 0 else _CONTINUATION
            kind_flags = (flags if start == 0 else 0) | (_END_HEADERS if start >= last else 0)
            out += _frame_header(len(piece), kind, kind_flags, stream_id)
            out += piece

    def _receive_frame(self, frame: Any) -> Any:
        if self._trace_frames:
            return super()._receive_frame(frame)
        # h2's, without its first line (the trace log's repr).
        try:
            frames, events = self._frame_dispatch_table[frame.__class__](frame)
        except h2.exceptions.StreamClosedError as e:
            if self._stream_is_closed_by_reset(e.stream_id):
                reset = RstStreamFrame(e.stream_id)
                reset.error_code = e.error_code
                self._prepare_for_sending([reset])
                events = e._events
            else:
                raise
        except h2.exceptions.StreamIDTooLowError as e:
            if self._stream_is_closed_by_reset(e.stream_id):
                reset = RstStreamFrame(e.stream_id)
                reset.error_code = ErrorCodes.STREAM_CLOSED
                self._prepare_for_sending([reset])
                events = []
            elif self._stream_is_closed_by_end(e.stream_id):
                raise h2.exceptions.StreamClosedError(e.stream_id) from e
            else:
                raise
        else:
            if frames:  # (most frames answer nothing: no call)
                self._prepare_for_sending(frames)
        return events


def _frame_header(length: int, kind: int, flags: int, stream_id: int) -> bytes:
    return _FRAME_HEADER.pack(length >> 8, length & 0xFF, kind, flags, stream_id)
