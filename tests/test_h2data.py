"""asgi_grpc._h2data: DATA frames parsed and framed without h2's copies, same frames as h2.

The frame buffer is fed real HTTP/2 bytes (hyperframe serializes them) in every chunking; what
it yields must be what h2's own buffer yields. The end-to-end paths (client and server over
sockets, grpcio on the other side) are covered by tests/interop, tests/client_transport and
tests/hostile; these pin down the buffer's edge cases.
"""

from __future__ import annotations

import itertools
import tracemalloc

import h2.exceptions
import h2.frame_buffer
import pytest
from hyperframe.frame import DataFrame, PingFrame
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_grpc._h2data import DataFrameBuffer, DataParts


def _data(stream_id: int, payload: bytes, end: bool = False) -> bytes:
    frame = DataFrame(stream_id, payload)
    if end:
        frame.flags.add("END_STREAM")
    return bytes(frame.serialize())


def _feed(buffer: h2.frame_buffer.FrameBuffer, chunks: list[bytes]) -> list[tuple]:
    out = []
    for chunk in chunks:
        buffer.add_data(chunk)
        for frame in buffer:
            data = frame.data if isinstance(frame, DataFrame) else frame.opaque_data
            out.append((type(frame).__name__, frame.stream_id, sorted(frame.flags), bytes(data)))
    return out


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(cut, 0), len(data)) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _wire() -> bytes:
    large = bytes(range(256)) * 600  # 150 KiB: gathered piece by piece
    return b"".join(
        [
            _data(1, b"small"),
            _data(3, large),
            bytes(PingFrame(0, opaque_data=b"12345678").serialize()),
            _data(3, large[::-1], end=True),
            _data(5, b"", end=True),
        ]
    )


def _stock() -> h2.frame_buffer.FrameBuffer:
    buffer = h2.frame_buffer.FrameBuffer(server=False)
    buffer.max_frame_size = 1 << 20
    return buffer


def _ours() -> DataFrameBuffer:
    buffer = DataFrameBuffer(server=False)
    buffer.max_frame_size = 1 << 20
    return buffer


@settings(max_examples=150, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=320_000), max_size=20))
def test_same_frames_as_h2_in_any_chunking(cuts: list[int]) -> None:
    wire = _wire()
    expected = _feed(_stock(), [wire])
    assert _feed(_ours(), _split(wire, cuts)) == expected
    # memoryview chunks (the server hands over views of its reads) and bytearrays alike
    views = [memoryview(chunk) for chunk in _split(wire, cuts)]
    assert _feed(_ours(), views) == expected  # type: ignore[arg-type]
    arrays = [bytearray(chunk) for chunk in _split(wire, cuts)]
    assert _feed(_ours(), arrays) == expected  # type: ignore[arg-type]


def test_large_frame_trickling_in_costs_about_its_size() -> None:
    payload = b"z" * (256 * 1024)
    wire = _data(1, payload)
    buffer = _ours()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(len(wire) - 1):
            buffer.add_data(wire[i : i + 1])
            assert list(buffer) == []
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # An object per byte would be ~35x; merged, about the payload (bytearray growth).
    assert held < 3 * len(payload), held
    buffer.add_data(wire[-1:])
    (frame,) = list(buffer)
    assert frame.data == payload


def test_overlong_frame_is_h2s_error_not_gathered() -> None:
    buffer = _ours()
    buffer.max_frame_size = 16_384
    wire = _data(1, b"x" * 100_000)
    buffer.add_data(wire[:70_000])
    assert list(buffer) == []
    assert buffer._large is None  # over the limit: left to h2, never gathered
    buffer.add_data(wire[70_000:])
    with pytest.raises(h2.exceptions.FrameTooLargeError):
        list(buffer)


def test_gathering_counts_what_a_large_frame_still_needs() -> None:
    payload = b"g" * (200 * 1024)
    wire = _data(1, payload)
    buffer = _ours()
    assert buffer.gathering() == 0
    buffer.add_data(wire[:70_000])
    assert list(buffer) == []
    assert buffer.gathering() == len(wire) - 70_000
    buffer.add_data(wire[70_000:])
    (frame,) = list(buffer)
    assert frame.data == payload
    assert buffer.gathering() == 0


def test_the_servers_buffer_hands_large_frames_on_as_their_pieces() -> None:
    payload = bytes(range(256)) * 1200  # 300 KiB: gathered
    wire = _data(1, payload, end=True) + _data(3, b"small")
    buffer = _ours()
    buffer.keep_parts = True
    reads = [wire[:100], wire[100:250_000], wire[250_000:]]  # a small head, then large reads
    frames = []
    for read in reads:
        buffer.add_data(memoryview(read))
        frames += list(buffer)
    large, small = frames
    assert isinstance(large.data, DataParts)
    assert len(large.data) == len(payload)
    assert bytes(large.data) == payload
    assert small.data == b"small"  # small frames stay bytes
    # A view is kept only of a read the piece is at least half of (a view keeps its whole
    # read alive): the middle read's, not the last one's few bytes.
    for part in large.data.parts:
        if type(part) is memoryview:
            assert 2 * len(part) >= len(part.obj)  # type: ignore[arg-type]
    assert any(type(part) is memoryview for part in large.data.parts)
