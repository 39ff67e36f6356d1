"""h2's server connection with the limits a hostile client needs: :class:`GrpcH2Connection`.

This is the only place that reaches into h2 internals (``h2>=4.1,<5``; the names used are the same
in every 4.x): the frame buffer, and the HEADERS handler. What it changes, and why:

- **The first frame after the client preface must be SETTINGS** (RFC 9113 3.4), else GOAWAY
  PROTOCOL_ERROR at once. h2 accepts any frame there (a PING, say), so a peer that is not
  speaking HTTP/2 at all could keep a connection open. A bad preface gets that GOAWAY too (h2
  sent none).
- **Frame lengths are checked from the 9-byte frame header**, before the body is buffered. h2
  checks a frame's length only once the whole body has arrived, so a frame announcing 16 MiB made
  the server buffer 16 MiB before refusing it.
- **A header block is bounded as its frames arrive** (HEADERS plus CONTINUATIONs): h2 only counts
  CONTINUATION frames (64), so with 1 MiB frames one connection could make the server hold 64 MiB
  of header block. A block is refused once its encoded size passes ``max_header_block`` (twice
  the advertised SETTINGS_MAX_HEADER_LIST_SIZE) with GOAWAY ENHANCE_YOUR_CALM. Why a connection
  error and not a refusal of that stream alone: the block must be decoded to keep the HPACK
  context in step with the client (RFC 9113 10.5.1: "the field block MUST be processed ... unless
  the connection is closed"), and h2's HPACK decoder takes a block in one piece, so decoding it
  means buffering it, which is the attack. (grpc-core decodes blocks incrementally and drops what
  is over its limit, so it can afford to fail the call alone however large the block; measured,
  grpcio 1.85 served a 300 KB header while advertising 16 KiB.) ENHANCE_YOUR_CALM, not
  COMPRESSION_ERROR (the block was not undecodable) nor PROTOCOL_ERROR (no rule was broken: the
  advertised size is advisory), is the code for a peer causing excessive load, as h2 itself
  uses for too many CONTINUATIONs and oversized header lists. A block that fits in twice the
  limit is decoded (the decoder's own list-size limit is set to four times the limit, so decoding
  is bounded too), and a header list over the advertised limit then refuses that stream only,
  like an HTTP 431 (``_hypercorn_limits``, ``GrpcH2Protocol``). A block that decodes to more than
  four times the limit (an HPACK bomb: indexes of large table entries) still ends the connection,
  as in stock h2, since its decoding stopped half way.
- **Request header blocks a client repeats are decoded once, response headers and trailers
  the server repeats encoded once**, while the HPACK table stands still (:mod:`asgi_grpc._hpack`):
  both sides send the same few indexes call after call.
- **Unpadded DATA frames and whole HEADERS frames are parsed by the frame buffer**, into the
  same frames h2 would get from hyperframe, without three ``__init__``s and a flag set per frame
  (client streaming sends one frame per message; :mod:`asgi_grpc._h2data`, shared with the
  client); DATA in the middle of an open request skips h2's two state-machine transitions that
  change nothing there, and DATA ending it the connection's (flow control and content-length
  still counted; ``FastH2Connection._receive_data_frame``, shared with the client).
- **WINDOW_UPDATE frames are taken by the frame buffer itself** on an open connection: read from
  its bytes, applied with h2's steps (the window grows; an open or half-closed stream stays as
  it is) and their events put in the read's list in order, without hyperframe's frame object and
  h2's state-machine transitions that change nothing. grpcio's clients send two with every
  message after one they received, and through h2 each cost about as much as the message's DATA
  frame. A malformed one, one on a stream that is not open, one that overflows a window or comes
  inside a header block or after a GOAWAY takes h2's own path, with h2's errors
  (``FastH2Connection._window_update``, shared with the client).
- **Received frames are not formatted for h2's trace log** unless a logger is configured
  (:class:`asgi_grpc._h2conn.FastH2Connection`, shared with the client).
- **Open streams are counted once per new stream**, not twice (ours and h2's; each walks every
  stream of the connection).
- **Response DATA is framed without copies** (``asgi_grpc._h2data.data_frame_header``): h2's
  steps, the frame's header returned for the protocol to write ahead of the payload.
- **Response headers and trailers are framed without h2's frame objects** (``send_headers``):
  on an open stream, with no priority and no informational status, h2's own steps (connection
  and stream state machines, HPACK encoding with the connection's encoder, END_STREAM) are taken
  in the same order, and the HEADERS (+ CONTINUATION) frame bytes are written directly
  (``FastH2Connection._write_headers``, shared with the client's request headers).
- **A HEADERS frame opening one stream more than SETTINGS_MAX_CONCURRENT_STREAMS refuses that
  stream** with RST_STREAM REFUSED_STREAM (RFC 9113 5.1.2: "treat this as a stream error ... of
  type PROTOCOL_ERROR or REFUSED_STREAM"; REFUSED_STREAM tells the client that nothing was
  processed, so gRPC clients retry it). h2 raised a connection error (GOAWAY PROTOCOL_ERROR), which
  killed every legitimate call on the connection. The block is still decoded (HPACK).

h2 already answers a DATA frame that overruns a stream's or the connection's receive window with
GOAWAY FLOW_CONTROL_ERROR (its window managers raise FlowControlError); every DATA byte, padding
included, counts (``flow_controlled_length``).
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
from h2.connection import ConnectionInputs
from h2.stream import StreamClosedBy
from hyperframe.frame import RstStreamFrame

from .._h2conn import FastH2Connection
from .._h2data import DataFrameBuffer
from .._hpack import CachingDecoder

__all__ = ["GrpcH2Connection", "HeaderBlockTooLarge", "InvalidPreface"]

_HEADERS, _SETTINGS, _PUSH_PROMISE, _CONTINUATION = 0x1, 0x4, 0x5, 0x9
_HEADER_BLOCK = frozenset((_HEADERS, _CONTINUATION, _PUSH_PROMISE))
_ACK = 0x1


class InvalidPreface(h2.exceptions.ProtocolError):
    """The client preface was not followed by a SETTINGS frame (RFC 9113 3.4)."""

    error_code = h2.errors.ErrorCodes.PROTOCOL_ERROR


class HeaderBlockTooLarge(h2.exceptions.DenialOfServiceError):
    """A header block grew past what this server decodes (GOAWAY ENHANCE_YOUR_CALM)."""


class _FrameBuffer(DataFrameBuffer):
    """h2's server frame buffer, checking each frame's header before its body is buffered.
    Large DATA frames come out as ``DataParts`` (see ``GrpcHTTPStream.feed``)."""

    keep_parts = True

    def __init__(self, max_header_block: int) -> None:
        super().__init__(server=True)
        self.max_header_block = max_header_block
        self._settings_seen = False

    def check_header(self, kind: int, flags: int, length: int) -> None:
        if not self._settings_seen:
            if kind != _SETTINGS or flags & _ACK:
                raise InvalidPreface("the client preface must be followed by SETTINGS")
            self._settings_seen = True
        if length > self.max_frame_size:
            raise h2.exceptions.FrameTooLargeError(
                f"Received overlong frame: length {length}, max {self.max_frame_size}"
            )
        if kind in _HEADER_BLOCK:
            block = length
            for frame in self._headers_buffer:
                block += len(frame.data)
            if block > self.max_header_block:
                raise HeaderBlockTooLarge(
                    f"header block of more than {self.max_header_block} bytes"
                )


class GrpcH2Connection(FastH2Connection):
    """A server-side ``H2Connection`` with the limits listed in the module docstring.

    ``max_header_list_size`` is the SETTINGS_MAX_HEADER_LIST_SIZE the protocol advertises.
    """

    def __init__(self, config: h2.config.H2Configuration, max_header_list_size: int) -> None:
        super().__init__(config)
        self.max_header_list_size = max_header_list_size
        self.incoming_buffer = _FrameBuffer(max_header_block=2 * max_header_list_size)
        self.incoming_buffer.window_update = self._window_update
        self.decoder = CachingDecoder(4 * max_header_list_size)

    def receive_data(self, data: Any) -> Any:
        try:
            if self._trace_frames:  # (a trace log shows h2's frames)
                return super().receive_data(data)
            return self._receive_data(data)
        except h2.exceptions.ProtocolError as error:
            # h2 checks the preface outside the handler that queues a GOAWAY for errors: queue
            # it here, so a bad preface gets GOAWAY PROTOCOL_ERROR like any connection error.
            if self.state_machine.state != h2.connection.ConnectionState.CLOSED:
                self._terminate_connection(error.error_code)
            raise

    def _handle_data_on_closed_stream(self, events: Any, exc: Any, frame: Any) -> Any:
        # h2 answers DATA on a closed stream with RST_STREAM(STREAM_CLOSED). For a stream we
        # reset ourselves (RST_STREAM NO_ERROR after answering early, fix h), that DATA was sent
        # before the client saw our reset, and RFC 9113 5.1 says to ignore it: keep h2's
        # connection WINDOW_UPDATE, drop the reset.
        frames, events = super()._handle_data_on_closed_stream(events, exc, frame)
        if self._stream_closed_by(exc.stream_id) is StreamClosedBy.SEND_RST_STREAM:
            frames = [f for f in frames if not isinstance(f, RstStreamFrame)]
        return frames, events

    def _send_headers_directly(self, stream_id: int, headers: Any, end_stream: bool) -> bool:
        stream = self.streams.get(stream_id)
        if stream is None or _informational(headers):
            return False
        # What h2's H2Connection.send_headers does for a server's response headers or
        # trailers on an open stream, in the same order (FastH2Connection._write_headers).
        # The connection's transition changes nothing while it is open (no side effect).
        if self.state_machine.state is not self._open:
            self.state_machine.process_input(ConnectionInputs.SEND_HEADERS)
        self._write_headers(stream, stream_id, headers, end_stream)
        stream.request_method = None  # h2 reads it from the headers it sends: none here
        return True

    def _local_settings_acked(self) -> Any:
        changes = super()._local_settings_acked()
        # h2 sets the decoder's limit to the advertised one, and a header list over it would
        # end the whole connection; decode up to four times as much, so the protocol can refuse
        # only the stream that carried it.
        self.decoder.max_header_list_size = 4 * self.max_header_list_size
        return changes

    def _receive_headers_frame(self, frame: Any) -> Any:
        if frame.stream_id in self.streams:  # trailers: h2's own handler
            return super()._receive_headers_frame(frame)
        # A new stream. Its open streams are counted once (h2's handler counts them again, and
        # a count walks every stream of the connection); one too many is refused, but its block
        # is still decoded (the HPACK context is shared by the connection) and the stream opened
        # in h2's state machine (so its id is used up and later frames on it are stream errors).
        refuse = self.open_inbound_streams >= self.local_settings.max_concurrent_streams
        headers = h2.connection._decode_headers(self.decoder, frame.data)
        events = self.state_machine.process_input(h2.connection.ConnectionInputs.RECV_HEADERS)
        stream = self._get_or_create_stream(
            frame.stream_id, h2.connection.AllowedStreamIDs(not self.config.client_side)
        )
        frames, stream_events = stream.receive_headers(
            headers, "END_STREAM" in frame.flags, self.config.header_encoding
        )
        if refuse:
            self.refused_streams += 1
            return stream.reset_stream(h2.errors.ErrorCodes.REFUSED_STREAM), events
        if "PRIORITY" in frame.flags:  # as h2: the priority rides on the request's event
            _, priority_events = self._receive_priority_frame(frame)
            request: Any = stream_events[0]
            request.priority_updated = priority_events[0]
            stream_events.extend(priority_events)
        return frames, events + stream_events

    refused_streams = 0


def _informational(headers: Any) -> bool:
    """A 1xx response (h2 treats those apart: no END_STREAM, more headers to follow)."""
    for name, value in headers:
        if name in (b":status", ":status"):
            return bytes(value)[:1] == b"1" if isinstance(value, bytes) else str(value)[:1] == "1"
    return False
