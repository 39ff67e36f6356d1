"""The server's frame buffer parses unpadded DATA frames itself: what h2 reads of each frame must
be what hyperframe's parse gives, whatever the flags, the reserved bit and how the bytes arrive."""

from __future__ import annotations

import random

import h2.config
import h2.connection
import h2.exceptions
import h2.frame_buffer
import pytest
from hyperframe.frame import DataFrame, Frame, HeadersFrame, PingFrame, SettingsFrame

from asgi_grpc._h2data import DataParts
from asgi_grpc.server._hypercorn_h2 import GrpcH2Connection, _FrameBuffer

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def seen(frame: Frame) -> tuple[object, ...]:
    """What h2 reads of a received frame."""
    if isinstance(frame, DataFrame):
        return (
            "DATA",
            frame.stream_id,
            bytes(frame.data),
            "END_STREAM" in frame.flags,
            frame.flow_controlled_length,
        )
    return (type(frame).__name__, frame.stream_id, sorted(frame.flags))


def random_frames(rng: random.Random) -> bytes:
    out = [SettingsFrame(0).serialize()]
    for _ in range(200):
        choice = rng.random()
        if choice < 0.7:
            flags = ["END_STREAM"] if rng.random() < 0.3 else []
            frame = DataFrame(rng.randrange(1, 2**31, 2), data=rng.randbytes(rng.randrange(40)))
            if rng.random() < 0.3:
                flags.append("PADDED")
                frame.pad_length = rng.randrange(5)
            frame.flags = set(flags)  # type: ignore[assignment]
            raw = bytearray(frame.serialize())
            if rng.random() < 0.2:
                raw[5] |= 0x80  # the reserved bit, which receivers ignore
            if rng.random() < 0.2:
                raw[4] |= 0x20  # an undefined flag, ignored too
            out.append(bytes(raw))
        elif choice < 0.85:
            out.append(PingFrame(0, opaque_data=rng.randbytes(8)).serialize())
        else:
            out.append(HeadersFrame(1, data=b"\x82", flags=["END_HEADERS"]).serialize())
    return b"".join(out)


def parse(buffer: h2.frame_buffer.FrameBuffer, data: bytes, rng: random.Random) -> list[object]:
    buffer.max_frame_size = 16384
    frames: list[object] = []
    buffer.add_data(PREFACE)
    start = 0
    while start < len(data):  # in random pieces, so frames arrive split
        stop = start + rng.randrange(1, 64)
        buffer.add_data(data[start:stop])
        frames.extend(seen(frame) for frame in buffer)
        start = stop
    return frames


@pytest.mark.parametrize("seed", range(8))
def test_data_frames_parse_as_hyperframe_parses_them(seed: int) -> None:
    data = random_frames(random.Random(seed))
    ours = parse(_FrameBuffer(65536), data, random.Random(seed))
    stock = parse(h2.frame_buffer.FrameBuffer(server=True), data, random.Random(seed))
    assert ours == stock
    assert sum(1 for frame in ours if frame[0] == "DATA") > 100


def test_data_on_stream_zero_is_still_refused() -> None:
    buffer = _FrameBuffer(65536)
    buffer.max_frame_size = 16384
    raw = bytearray(DataFrame(1, data=b"x").serialize())
    raw[5:9] = b"\x00\x00\x00\x00"
    buffer.add_data(PREFACE + SettingsFrame(0).serialize() + bytes(raw))
    assert isinstance(next(buffer), SettingsFrame)
    with pytest.raises(h2.exceptions.ProtocolError):
        next(buffer)


def _server(cls: type[h2.connection.H2Connection]) -> h2.connection.H2Connection:
    config = h2.config.H2Configuration(
        client_side=False, header_encoding=None, validate_inbound_headers=False
    )
    if cls is GrpcH2Connection:
        return GrpcH2Connection(config, 16384)
    return cls(config=config)


def _events(server: h2.connection.H2Connection, data: bytes) -> list[object]:
    """What the server makes of ``data``: its events (as comparable tuples), or the error."""
    out: list[object] = []
    try:
        for event in server.receive_data(data):
            fields = sorted(
                # (a large DATA frame comes as the pieces of its reads: compare its bytes)
                (k, repr(bytes(v) if isinstance(v, DataParts) else v))
                for k, v in vars(event).items()
                if k != "stream_ended"
            )
            ended = getattr(event, "stream_ended", None)
            out.append((type(event).__name__, fields, ended is not None))
    except h2.exceptions.ProtocolError as error:
        out.append(("error", type(error).__name__))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_data_events_match_h2_connection(seed: int) -> None:
    """Requests (some with a content-length the body then breaks), DATA on open, ended, reset and
    unknown streams, in random pieces: the same events, or the same error, as h2's own."""
    rng = random.Random(seed)
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    chunks = [client.data_to_send()]
    open_streams: list[int] = []
    for step in range(80):
        choice = rng.random()
        if choice < 0.2 or not open_streams:
            stream_id = client.get_next_available_stream_id()
            headers = [(":method", "POST"), (":scheme", "http"), (":path", "/s/M")]
            headers += [(":authority", "x"), ("content-type", "application/grpc")]
            if step > 60 and rng.random() < 0.3:  # the body breaks it: a connection error
                headers.append(("content-length", str(rng.randrange(20))))
            client.send_headers(stream_id, headers)
            open_streams.append(stream_id)
        elif choice < 0.85:
            stream_id = rng.choice(open_streams)
            end = rng.random() < 0.15
            client.send_data(stream_id, rng.randbytes(rng.randrange(12)), end_stream=end)
            if end:
                open_streams.remove(stream_id)
        elif choice < 0.92 and step > 70:  # near the end: h2 may end the connection
            raw = DataFrame(rng.choice([99, 101, 1]), data=b"late").serialize()
            chunks.append(client.data_to_send())
            chunks.append(raw)  # DATA the client's state machine would not send
        else:
            stream_id = rng.choice(open_streams)
            client.reset_stream(stream_id)
            open_streams.remove(stream_id)
        chunks.append(client.data_to_send())
    data = b"".join(chunks)
    results = []
    for cls in (GrpcH2Connection, h2.connection.H2Connection):
        server = _server(cls)
        server.initiate_connection()
        pieces = random.Random(seed)
        events: list[object] = []
        start = 0
        while start < len(data) and not (events and events[-1][0] == "error"):
            stop = start + pieces.randrange(1, 200)
            events += _events(server, data[start:stop])
            start = stop
        # (and the streams' states and windows: DATA ending a request moves its stream)
        streams = [
            (sid, s.state_machine.state, s.inbound_flow_control_window, s._inbound_window_manager)
            for sid, s in sorted(server.streams.items())
        ]
        results.append((events, [(a, b, c, vars(d)) for a, b, c, d in streams]))
    assert results[0] == results[1]
    assert sum(1 for event in results[0][0] if event[0] == "DataReceived") > 10
    assert sum(1 for event in results[0][0] if event[0] == "StreamEnded") > 3
