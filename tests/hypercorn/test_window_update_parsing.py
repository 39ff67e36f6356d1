"""The server takes WINDOW_UPDATE frames without hyperframe's parse and h2's handler on an open
connection (grpcio's clients send two with every message after one they received): the events,
the windows and what the server sends back must be h2's own, for updates on the connection and
on streams in every state, malformed and overflowing ones, and however the bytes arrive."""

from __future__ import annotations

import random

import h2.config
import h2.connection
import h2.exceptions
import h2.settings
import pytest
from h2.connection import H2Connection
from h2.stream import StreamState
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame

from asgi_grpc.server._hypercorn_h2 import GrpcH2Connection

from .test_frame_parsing import _events, _server

_MAX = 2**31 - 1


def window_update(stream_id: int, increment: int, *, length: int = 4, flags: int = 0) -> bytes:
    """A WINDOW_UPDATE frame as raw bytes, also the ones hyperframe would not serialize."""
    body = (increment & 0xFFFFFFFF).to_bytes(4, "big")
    body = body[:length] if length <= 4 else body + bytes(length - 4)
    return len(body).to_bytes(3, "big") + bytes((0x8, flags)) + stream_id.to_bytes(4, "big") + body


def _request(client: h2.connection.H2Connection, end: bool) -> int:
    stream_id = client.get_next_available_stream_id()
    headers = [(":method", "POST"), (":scheme", "http"), (":path", "/s/M")]
    headers += [(":authority", "x"), ("content-type", "application/grpc")]
    client.send_headers(stream_id, headers, end_stream=end)
    return stream_id


_BIG_WINDOW = 1 << 20


def _split(data: bytes, rng: random.Random, aligned: bool) -> list[bytes]:
    """``data`` in random pieces, or (``aligned``) in runs of whole frames, as reads bring them
    (each read then starts on a frame boundary, where the server takes WINDOW_UPDATEs itself;
    the preface goes first, alone)."""
    if not aligned:
        out, start = [], 0
        while start < len(data):
            stop = start + rng.randrange(1, 120)
            out.append(data[start:stop])
            start = stop
        return out
    frames, start = [data[:24]], 24
    while start < len(data):
        stop = start + 9 + int.from_bytes(data[start : start + 3], "big")
        frames.append(data[start:stop])
        start = stop
    out = [frames[0]]
    index = 1
    while index < len(frames):
        count = rng.randrange(1, 6)
        out.append(b"".join(frames[index : index + count]))
        index += count
    return out


def _run(
    reads: list[bytes], respond: set[int], cls: type[h2.connection.H2Connection]
) -> tuple[list[object], bytes, list[object]]:
    """Feed ``reads`` to a server of ``cls`` (1 MiB windows and frames, so that large DATA
    frames are gathered across reads), answering (headers and END_STREAM) the streams in
    ``respond`` once their request arrived: its events, what it sent back, and its windows."""
    server = _server(cls)
    codes = h2.settings.SettingCodes
    server.local_settings = h2.settings.Settings(
        client=False,
        initial_values={codes.INITIAL_WINDOW_SIZE: _BIG_WINDOW, codes.MAX_FRAME_SIZE: _BIG_WINDOW},
    )
    server.max_inbound_frame_size = _BIG_WINDOW
    server.initiate_connection()
    server.increment_flow_control_window(_BIG_WINDOW * 8)
    sent = [server.data_to_send()]
    events: list[object] = []
    for read in reads:
        for event in (new := _events(server, read)):
            if event[0] == "RequestReceived":
                stream_id = int(dict(event[1])["stream_id"])
                stream = server.streams.get(stream_id)
                if stream_id in respond and stream is not None and not stream.closed:
                    server.send_headers(stream_id, [(b":status", b"200")], end_stream=True)
        events += new
        sent.append(server.data_to_send())
        if events and events[-1][0] == "error":
            break
    windows: list[object] = [server.outbound_flow_control_window, server.state_machine.state]
    windows += [(sid, s.outbound_flow_control_window) for sid, s in sorted(server.streams.items())]
    return events, b"".join(sent), windows


# The last frame of a run: a connection error, or a stream error and a GOAWAY from the client.
_ENDINGS = {
    "idle stream": ("NoSuchStreamError", lambda idle: window_update(idle, 1)),
    "connection overflow": ("FlowControlError", lambda idle: window_update(0, _MAX)),
    "increment 0": ("ProtocolError", lambda idle: window_update(0, 0)),
    "reserved bit of the increment": ("ProtocolError", lambda idle: window_update(1, 2**31)),
    "3-byte body": ("FrameDataMissingError", lambda idle: window_update(1, 5, length=3)),
    "5-byte body": ("FrameDataMissingError", lambda idle: window_update(1, 5, length=5)),
    "inside a header block": (
        "ProtocolError",
        lambda idle: HeadersFrame(idle, data=b"\x82").serialize() + window_update(1, 5),
    ),
    "after GOAWAY": (  # (the connection is closed: h2 refuses any frame)
        "ProtocolError",
        lambda idle: GoAwayFrame(0, last_stream_id=0).serialize() + window_update(0, 5),
    ),
}


@pytest.mark.parametrize("aligned", [False, True], ids=["random pieces", "whole frames"])
@pytest.mark.parametrize("ending", sorted(_ENDINGS))
@pytest.mark.parametrize("seed", range(3))
def test_window_update_events_match_h2_connection(seed: int, ending: str, aligned: bool) -> None:
    """WINDOW_UPDATEs (any flags, the stream id's reserved bit set or not) on the connection and
    on open, half-closed (either side), closed and reset streams, some overflowing a stream's
    window (a stream error: RST_STREAM FLOW_CONTROL_ERROR), between DATA frames large and small,
    then one that h2 refuses: the same events or error, the same frames sent back and the same
    windows as h2's own connection."""
    rng = random.Random(seed)
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    chunks = [client.data_to_send()]
    streams: list[int] = []
    respond: set[int] = set()
    overflowed: set[int] = set()
    for step in range(150):
        choice = rng.random()
        if choice < 0.12 or not streams:
            stream_id = _request(client, end=rng.random() < 0.5)  # half-closed (remote) or open
            streams.append(stream_id)
            if rng.random() < 0.3:
                respond.add(stream_id)  # answered at once: closed, or half-closed (local)
        elif choice < 0.17:
            stream_id = rng.choice(streams)
            if client.streams.get(stream_id) is not None and not client.streams[stream_id].closed:
                client.reset_stream(stream_id)
        elif choice < 0.3:
            stream_id = rng.choice(streams)
            stream = client.streams.get(stream_id)
            if (
                stream is not None
                and stream.state_machine.state is StreamState.OPEN
                and stream_id not in respond | overflowed
            ):  # (DATA the server must refuse is the subject of tests/hostile)
                size = 70_000 if rng.random() < 0.3 else rng.randrange(20)
                chunks.append(client.data_to_send())
                # (the client has not read the server's larger windows: the frame by hand)
                chunks.append(DataFrame(stream_id, data=rng.randbytes(size)).serialize())
        else:
            overflow = step > 80 and rng.random() < 0.2
            stream_id = rng.choice(streams)
            if overflow:
                overflowed.add(stream_id)
            increment = _MAX if overflow else rng.randrange(1, 70_000)
            raw = bytearray(window_update(stream_id, increment))
            if rng.random() < 0.2:
                raw[5] |= 0x80  # the reserved bit of the stream id, which receivers ignore
            if rng.random() < 0.2:
                raw[4] = rng.randrange(256)  # WINDOW_UPDATE defines no flags: all ignored
            chunks.append(client.data_to_send())
            chunks.append(bytes(raw))
            if rng.random() < 0.3:
                chunks.append(window_update(0, rng.randrange(1, 70_000)))
        chunks.append(client.data_to_send())
    expected, ending_frame = _ENDINGS[ending]
    chunks.append(ending_frame(client.get_next_available_stream_id()))
    data = b"".join(chunks)
    runs = [
        _run(_split(data, random.Random(seed), aligned), respond, cls)
        for cls in (GrpcH2Connection, h2.connection.H2Connection)
    ]
    assert runs[0] == runs[1]
    events = runs[0][0]
    assert sum(1 for event in events if event[0] == "WindowUpdated") > 40
    assert sum(1 for event in events if event[0] == "StreamReset") > 0
    assert sum(1 for event in events if event[0] == "DataReceived") > 2
    assert expected in (events[-1][0], events[-1][-1])


def test_a_read_of_window_updates_only() -> None:
    """Twenty thousand in one read (a flood the protocol slices, but h2's connection takes what
    it is given): taken one after another, the same events and windows as h2's."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    stream_id = _request(client, end=False)
    data = client.data_to_send() + (window_update(0, 1) + window_update(stream_id, 1)) * 10_000
    runs = [_run([data[:200], data[200:]], set(), cls) for cls in (GrpcH2Connection, H2Connection)]
    assert runs[0] == runs[1]
    assert sum(1 for event in runs[0][0] if event[0] == "WindowUpdated") == 20_000
