"""Framing and flow control on h2, for the client connection: h2's configuration, the two
places we adjust its behaviour, and the windowed DATA writer.

- :class:`GoawayTolerantStateMachine`: h2 moves to CLOSED on a received GOAWAY and then
  rejects every later frame (even in the same read) as a protocol error, but RFC 9113 6.8 lets
  the peer finish streams up to ``last_stream_id`` (grpcio's graceful shutdown does exactly
  that). That is the one place we lean on h2 beyond its documented API; the GOAWAY tests catch
  it if h2 changes.
- :class:`H2Connection`: counts open outbound streams in O(1), and decodes header blocks up to
  a hard cap far above our advertised ``MAX_HEADER_LIST_SIZE``, so that one oversized response
  fails its own stream (the connection checks each block with :func:`header_list_size`) rather
  than the whole connection (hpack's error is a connection error in h2). It also encodes the
  request headers a channel repeats, and decodes the response headers and trailers a server
  repeats, once while the HPACK table stands still (:mod:`asgi_grpc._hpack`, as the server).
  What it shares with the server's connection (:class:`asgi_grpc._h2conn.FastH2Connection`):
  received frames are not formatted for h2's trace log unless a logger is configured, and
  request headers are framed without h2's frame objects (:meth:`H2Connection.send_headers`).
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.connection import AllowedStreamIDs, ConnectionInputs, ConnectionState
from h2.errors import ErrorCodes
from h2.utilities import authority_from_headers, extract_method_header

from .. import _hyperframe
from .._core import Headers
from .._h2conn import FastH2Connection
from .._h2data import data_frame_header
from .._hpack import CachingDecoder

_hyperframe.install()  # h2 reprs every frame it receives: make DATA frames cheap to repr

__all__ = [
    "H2_CONFIG",
    "GoawayTolerantStateMachine",
    "H2Connection",
    "error_name",
    "header_list_size",
    "send_windowed",
]

_CLIENT_OPEN = ConnectionState.CLIENT_OPEN

#: What hpack decodes before h2 fails the whole connection (memory bound for one block).
HARD_HEADER_LIST_CAP = 1024 * 1024

H2_CONFIG = h2.config.H2Configuration(
    client_side=True,
    header_encoding=None,
    # We build our own headers from validated parts (lower-case names, no connection-specific
    # headers), so h2's outbound checks only cost time. Inbound validation is also off: it is
    # a large share of h2's per-call cost, and a broken peer's headers fail later in gRPC
    # parsing (missing :status or content-type) with a clear status anyway.
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
)


class GoawayTolerantStateMachine(h2.connection.H2ConnectionStateMachine):
    """h2's connection state machine, except that a received GOAWAY does not close it."""

    def process_input(self, input_: h2.connection.ConnectionInputs) -> list[h2.events.Event]:
        if input_ is h2.connection.ConnectionInputs.RECV_GOAWAY:
            return []
        return super().process_input(input_)


class H2Connection(FastH2Connection):
    """h2's connection, counting open outbound streams in O(1), with a per-stream header limit.

    h2 counts open streams by walking every stream it holds, on each new stream (O(n) per
    stream with n in flight). :class:`~._connection.Connection` keeps the count in
    ``open_streams`` instead; h2's own walk still runs every 256 streams, since it is also what
    purges closed streams from h2's table.
    """

    def __init__(self, config: h2.config.H2Configuration, max_header_list_size: int) -> None:
        super().__init__(config)
        #: The peer's MAX_CONCURRENT_STREAMS, as ``remote_settings.max_concurrent_streams``
        #: says (kept from each SETTINGS frame received, the only thing that changes it):
        #: read for every new stream, and h2's property raises and catches a KeyError inside
        #: while the peer has not named a limit (grpcio names none).
        self.max_streams: int = self.remote_settings.max_concurrent_streams
        self.open_streams = 0
        self._opened = 0
        self.decoder = CachingDecoder(max(HARD_HEADER_LIST_CAP, max_header_list_size))

    @property
    def open_outbound_streams(self) -> int:
        self._opened += 1
        if not self._opened & 255:
            return super().open_outbound_streams
        return self.open_streams

    def _receive_settings_frame(self, frame: Any) -> Any:
        result = super()._receive_settings_frame(frame)
        self.max_streams = self.remote_settings.max_concurrent_streams
        return result

    def _local_settings_acked(
        self,
    ) -> dict[h2.settings.SettingCodes | int, h2.settings.ChangedSetting]:
        # h2 sets the decoder's cap to the advertised limit when our SETTINGS are acknowledged
        # with a new value; keep the hard cap (the advertised one is enforced per stream).
        cap = self.decoder.max_header_list_size
        changes = super()._local_settings_acked()
        self.decoder.max_header_list_size = cap
        return changes

    def _send_headers_directly(self, stream_id: int, headers: Any, end_stream: bool) -> bool:
        if not isinstance(headers, (list, tuple)):
            return False
        # What h2's H2Connection.send_headers does for a client's request headers or trailers
        # (our headers are bytes already; h2's outbound validation and normalization are off),
        # in the same order: the stream limit, the connection's state machine, the stream's
        # (FastH2Connection._write_headers), then what h2 notes on the stream.
        stream = self.streams.get(stream_id)
        if stream is None:
            max_open_streams = self.max_streams
            value = self.open_outbound_streams  # (a property with side effects: read once)
            if value + 1 > max_open_streams:
                msg = f"Max outbound streams is {max_open_streams}, {value} open"
                raise h2.exceptions.TooManyStreamsError(msg)
        if self.state_machine.state is not _CLIENT_OPEN:  # (open, it stays so: h2's table)
            self.state_machine.process_input(ConnectionInputs.SEND_HEADERS)
        if stream is None:  # (h2's _get_or_create_stream, without its KeyError for a new one)
            stream = self._begin_new_stream(stream_id, AllowedStreamIDs.ODD)
        self._write_headers(stream, stream_id, headers, end_stream)
        if stream._authority is None:
            stream._authority = authority_from_headers(headers)
        stream.request_method = extract_method_header(headers)
        return True


def header_list_size(headers: Headers) -> int:
    """A header block's size as RFC 9113 6.5.2 (and grpc-core) count it: 32 per field."""
    return sum([len(name) + len(value) + 32 for name, value in headers])


def send_windowed(
    h2conn: h2.connection.H2Connection,
    stream_id: int,
    data: bytes,
    offset: int,
    end_stream: bool,
    out: list[bytes | memoryview],
) -> int:
    """Frame as much of ``data[offset:]`` as the flow-control windows allow, in frames of the
    peer's maximum size, with END_STREAM on the last one if ``end_stream``, onto ``out`` (the
    connection's output, in order: what h2 has queued first, then each frame's header and its
    payload, a view of ``data``; see :mod:`asgi_grpc._h2data`); return the new offset
    (``len(data)`` once all is framed). Raises h2's StreamClosedError."""
    total = len(data)
    if offset >= total:
        if end_stream:
            h2conn.end_stream(stream_id)
        return total
    window = h2conn.local_flow_control_window(stream_id)
    max_frame = h2conn.max_outbound_frame_size
    while window > 0 and offset < total:
        size = min(window, max_frame, total - offset)
        end = end_stream and offset + size >= total
        header = data_frame_header(h2conn, stream_id, size, end)
        if h2conn._data_to_send:  # this stream's HEADERS, acks...: before the frame
            out.append(h2conn.data_to_send())
        out.append(header)
        out.append(data if size == total else memoryview(data)[offset : offset + size])
        offset += size
        window -= size
    return offset


def error_name(code: int) -> str:
    try:
        return ErrorCodes(code).name
    except ValueError:
        return hex(code)
