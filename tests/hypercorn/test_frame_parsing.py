"""The server's frame buffer parses unpadded DATA frames itself: what h2 reads of each frame must
be what hyperframe's parse gives, whatever the flags, the reserved bit and how the bytes arrive."""

from __future__ import annotations

import random

import h2.exceptions
import h2.frame_buffer
import pytest
from hyperframe.frame import DataFrame, Frame, HeadersFrame, PingFrame, SettingsFrame

from asgi_grpc.server._hypercorn_h2 import _FrameBuffer

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
