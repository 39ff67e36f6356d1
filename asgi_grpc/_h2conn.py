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
- Received frames are read by :class:`asgi_grpc._h2data.DataFrameBuffer` (DATA and whole
  HEADERS frames without hyperframe's parse; WINDOW_UPDATE frames applied during the read by
  :meth:`FastH2Connection._window_update`, their events in order with the others').
- Received data is credited back by :meth:`FastH2Connection.acknowledge_received`: a stream's
  first WINDOW_UPDATE is held back while the peer still has a quarter of the stream's window
  (a message that fits the window gets none), later ones come at half as h2 sends them, and
  none once the peer has ended its side of the stream (the connection is credited at once, as
  h2 does it).
- DATA in the middle of a message stream, and a header block on a stream that is already open
  (response headers and trailers on the client), take h2's steps without the ones that change
  nothing there or with our configuration: the connection's state-machine transition while it
  is open, the stream's for DATA, the header validation flags when inbound validation and
  normalization are off, two ``typing.cast`` calls. DATA that ends an open stream's message
  stream (a unary request's one DATA frame) does too, its stream moving to half-closed as in
  h2.
"""

from __future__ import annotations

import struct
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
from h2.connection import ConnectionInputs, ConnectionState, _decode_headers
from h2.errors import ErrorCodes
from h2.stream import H2Stream, StreamInputs, StreamState
from h2.utilities import is_informational_response
from hyperframe.exceptions import InvalidPaddingError
from hyperframe.frame import RstStreamFrame, WindowUpdateFrame

from ._h2data import DataFrameBuffer
from ._hpack import CachingEncoder

__all__ = ["FastH2Connection"]

_HEADERS, _CONTINUATION = 0x1, 0x9
_END_STREAM, _END_HEADERS = 0x1, 0x4
_FRAME_HEADER = struct.Struct(">HBBBL")  # length (24 bits: 16 + 8), type, flags, stream id
_MAX_WINDOW = 2**31 - 1
_new = object.__new__
_WindowUpdated = h2.events.WindowUpdated
_TrailersReceived = h2.events.TrailersReceived
_DataReceived = h2.events.DataReceived
_StreamEnded = h2.events.StreamEnded
# Stream states where DATA takes no change of state (h2's ``data_received``).
_RECEIVING = frozenset((StreamState.OPEN, StreamState.HALF_CLOSED_LOCAL))
_RECV_HEADERS = StreamInputs.RECV_HEADERS
_RECV_END_STREAM = StreamInputs.RECV_END_STREAM
# Stream states where h2 takes a WINDOW_UPDATE without a change of state (``window_updated``).
_WINDOW_OPEN = frozenset(
    (StreamState.OPEN, StreamState.HALF_CLOSED_LOCAL, StreamState.HALF_CLOSED_REMOTE)
)


class FastH2Connection(h2.connection.H2Connection):
    """h2's connection with the changes in the module docstring; each side subclasses it."""

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config=config)
        self.encoder = CachingEncoder()
        self._trace_frames = not isinstance(config.logger, h2.config.DummyLogger)
        self.incoming_buffer: DataFrameBuffer = DataFrameBuffer(server=not config.client_side)
        self.incoming_buffer.window_update = self._window_update
        # The state the connection's machine stays in while open (h2 has one per side).
        self._open = (
            ConnectionState.CLIENT_OPEN if config.client_side else ConnectionState.SERVER_OPEN
        )
        # Stream credit held back by acknowledge_received (bytes, by stream id).
        self._held_credit: dict[int, int] = {}
        self._credited: set[int] = set()  # streams that have had credit (then: at half)
        # Received headers go to events as decoded (h2 only validates, normalizes or decodes
        # them to str if configured to).
        self._headers_as_decoded = not (
            config.validate_inbound_headers
            or config.normalize_inbound_headers
            or isinstance(config.header_encoding, str)
        )

    def receive_data(self, data: Any) -> Any:
        if self._trace_frames:  # (a trace log shows h2's frames)
            return super().receive_data(data)
        return self._receive_data(data)

    def _receive_data(self, data: Any) -> list[h2.events.Event]:
        """h2's ``receive_data`` (without its trace log), with the frame buffer taking
        WINDOW_UPDATE frames itself (:meth:`_window_update`) into the same list of events."""
        buffer = self.incoming_buffer
        events: list[h2.events.Event] = []
        buffer.events = events
        buffer.add_data(data)
        buffer.max_frame_size = self.max_inbound_frame_size
        try:
            for frame in buffer:
                events.extend(self._receive_frame(frame))
        except InvalidPaddingError as error:  # as h2
            self._terminate_connection(h2.errors.ErrorCodes.PROTOCOL_ERROR)
            raise h2.exceptions.ProtocolError("Received frame with invalid padding.") from error
        except h2.exceptions.ProtocolError as error:
            self._terminate_connection(error.error_code)
            raise
        finally:
            buffer.events = None
        return events

    def _window_update(self, stream_id: int, increment: int) -> h2.events.Event | None:
        """For the frame buffer, on a whole, well-formed WINDOW_UPDATE frame: h2's steps for it
        on an open connection, without hyperframe's frame object and without the
        state-machine transitions that change nothing there (the connection stays open; an
        open or half-closed stream stays as it is, with a WindowUpdated event). The event, or
        None where h2's own steps must run (a connection not open; a stream that is closed,
        idle or reserved; a window overflowing 2^31-1, a stream or connection error).

        grpcio sends two WINDOW_UPDATEs (the stream's and the connection's) with every
        message after one it received, and each cost about as much as the message's DATA
        frame through hyperframe and h2: the blocking server spent ~20% more instructions per
        ping-pong round trip with grpcio's client than with ours (bench/README.md)."""
        if self.state_machine.state is not self._open:
            return None
        if stream_id:
            stream = self.streams.get(stream_id)
            if (
                stream is None
                or stream.state_machine.state not in _WINDOW_OPEN
                or stream.outbound_flow_control_window + increment > _MAX_WINDOW
            ):
                return None
            stream.outbound_flow_control_window += increment
        else:
            window = self.outbound_flow_control_window + increment
            if window > _MAX_WINDOW:
                return None
            self.outbound_flow_control_window = window
        event: h2.events.WindowUpdated = _new(_WindowUpdated)  # (its __init__: keywords only)
        event.stream_id = stream_id
        event.delta = increment
        return event

    # -- receive windows --------------------------------------------------------------------

    def acknowledge_received(self, size: int, stream_id: int) -> None:
        """h2's ``acknowledge_received_data``, with a stream's credit held back while the peer
        needs none, and the connection credited at once as h2 does (what a stream holds back
        never starves the others):

        - A stream's first credit waits until three quarters of its window is owed (the peer
          keeps at least a quarter to send meanwhile), not half as h2's: a message that fits
          the window then arrives without any. A 1 MiB request, which the default stream
          window (server/_hypercorn_config.py) is sized to take whole, got a WINDOW_UPDATE in
          the middle (grpcio's client sends it as two DATA frames, and the first is past
          half), in a write of its own that woke the client for 13 bytes (bench/README.md,
          "Blocking API", sixth round).
        - Once a stream has had credit it is a long upload or download: it is credited at half
          its window, as h2 does, which keeps more of it in flight.
        - None once the peer has ended its side of the stream: h2 still credits a half-closed
          stream, which can never use it."""
        self.credit_connection(size)
        stream = self.streams.get(stream_id)
        if stream is None or stream.state_machine.state not in _RECEIVING:
            self.forget_credit(stream_id)
            return
        held, credited = self._held_credit, self._credited
        total = held.pop(stream_id, 0) + size
        window = self.local_settings.initial_window_size
        if total < (window // 2 if stream_id in credited else window * 3 // 4):
            held[stream_id] = total
            return
        credited.add(stream_id)
        self._prepare_for_sending(stream.acknowledge_received_data(total))

    def credit_connection(self, size: int) -> None:
        """Credit only the connection's window with ``size`` bytes read (h2's steps for it in
        ``acknowledge_received_data``): for data that nobody will read on its stream."""
        increment = self._inbound_flow_control_window_manager.process_bytes(size)
        if increment:
            frame = WindowUpdateFrame(0)
            frame.window_increment = increment
            self._prepare_for_sending([frame])

    def forget_credit(self, stream_id: int) -> None:
        """The stream is gone: drop what :meth:`acknowledge_received` kept for it."""
        self._held_credit.pop(stream_id, None)
        self._credited.discard(stream_id)

    def _receive_data_frame(self, frame: Any) -> Any:
        stream = self.streams.get(frame.stream_id)
        end_stream = "END_STREAM" in frame.flags
        if (
            stream is None
            or self.state_machine.state is not self._open
            or not stream.state_machine.headers_received
            or (
                stream.state_machine.state is not StreamState.OPEN
                if end_stream
                else stream.state_machine.state not in _RECEIVING
            )
        ):
            return super()._receive_data_frame(frame)
        # h2's steps for DATA in the middle of a message stream (a request on the server, a
        # response on the client), in h2's order, without the two state-machine transitions
        # (connection and stream) that change nothing there: flow control (a FlowControlError
        # as in h2), the content-length count, the event. And for DATA that ends the message
        # stream of an open stream (a unary request's only DATA frame), the one transition
        # that changes something, OPEN to HALF_CLOSED_REMOTE, made as h2 makes it (after the
        # content-length check, with no side effect but its StreamEnded event).
        length = frame.flow_controlled_length
        self._inbound_flow_control_window_manager.window_consumed(length)
        stream._inbound_window_manager.window_consumed(length)
        stream._track_content_length(len(frame.data), end_stream)
        event: h2.events.DataReceived = _new(_DataReceived)  # (its __init__: keywords only)
        event.stream_id = frame.stream_id
        event.data = frame.data
        event.flow_controlled_length = length
        if not end_stream:
            event.stream_ended = None
            return [], [event]
        stream.state_machine.state = StreamState.HALF_CLOSED_REMOTE
        ended: h2.events.StreamEnded = _new(_StreamEnded)
        ended.stream_id = frame.stream_id
        event.stream_ended = ended
        return [], [event, ended]

    def _receive_headers_frame(self, frame: Any) -> Any:
        stream = self.streams.get(frame.stream_id)
        if stream is None or "PRIORITY" in frame.flags or not self._headers_as_decoded:
            return super()._receive_headers_frame(frame)
        # h2's steps for a header block on a stream it holds (H2Connection's handler, then
        # H2Stream.receive_headers), in h2's order and with its errors, less what the module
        # docstring lists.
        headers = _decode_headers(self.decoder, frame.data)
        if self.state_machine.state is not self._open:
            self.state_machine.process_input(ConnectionInputs.RECV_HEADERS)  # (no events)
        end_stream = "END_STREAM" in frame.flags
        machine = stream.state_machine
        if is_informational_response(headers):
            if end_stream:
                raise h2.exceptions.ProtocolError(
                    "Cannot set END_STREAM on informational responses"
                )
            events = machine.process_input(StreamInputs.RECV_INFORMATIONAL_HEADERS)
        else:
            events = machine.process_input(_RECV_HEADERS)
        event: Any = events[0]
        if end_stream:
            ended = machine.process_input(_RECV_END_STREAM)
            event.stream_ended = ended[0]
            events += ended
        stream._initialize_content_length(headers)
        if not end_stream and type(event) is _TrailersReceived:
            raise h2.exceptions.ProtocolError("Trailers must have END_STREAM set")
        event.headers = headers
        return [], events

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
