"""asgi_grpc._h2data: DATA and whole HEADERS frames parsed (and DATA framed) without h2's
copies and hyperframe's objects: the same frames as h2.

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
from hyperframe.frame import ContinuationFrame, DataFrame, Frame, HeadersFrame, PingFrame
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_grpc._h2data import DataFrameBuffer, DataParts


def _data(stream_id: int, payload: bytes, end: bool = False) -> bytes:
    frame = DataFrame(stream_id, payload)
    if end:
        frame.flags.add("END_STREAM")
    return bytes(frame.serialize())


def _seen(frame: Frame) -> tuple[object, ...]:
    """Everything h2 (or its trace log) can read of a frame."""
    if isinstance(frame, HeadersFrame):
        data = frame.data
        more = (frame.pad_length, frame.depends_on, frame.stream_weight, frame.exclusive)
        more += (frame.body_len, repr(frame))
    else:
        data = frame.data if isinstance(frame, DataFrame) else frame.opaque_data
        more = ()
    return (type(frame).__name__, frame.stream_id, sorted(frame.flags), bytes(data), *more)


def _feed(buffer: h2.frame_buffer.FrameBuffer, chunks: list[bytes]) -> list[tuple]:
    out = []
    for chunk in chunks:
        buffer.add_data(chunk)
        out.extend(_seen(frame) for frame in buffer)
    return out


def _headers(stream_id: int, block: bytes, flags: tuple[str, ...], **fields: int) -> bytes:
    frame = HeadersFrame(stream_id, data=block, flags=flags)
    for name, value in fields.items():
        setattr(frame, name, value)
    return bytes(frame.serialize())


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(cut, 0), len(data)) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _wire() -> bytes:
    large = bytes(range(256)) * 600  # 150 KiB: gathered piece by piece
    block = bytes(range(1, 200))  # (the buffer does not decode blocks)
    split = HeadersFrame(7, data=block[:50], flags=["END_STREAM"]).serialize()
    split += ContinuationFrame(7, data=block[50:], flags=["END_HEADERS"]).serialize()
    undefined = bytearray(_headers(9, block, ("END_HEADERS",)))
    undefined[4] |= 0x2 | 0x10 | 0x40 | 0x80  # flags HEADERS does not define: ignored
    undefined[5] |= 0x80  # the stream id's reserved bit: ignored
    return b"".join(
        [
            _headers(1, b"\x88", ("END_HEADERS",)),
            _data(1, b"small"),
            _headers(1, block, ("END_HEADERS", "END_STREAM")),
            _headers(3, block[:9], ("END_HEADERS",)),
            _data(3, large),
            bytes(PingFrame(0, opaque_data=b"12345678").serialize()),
            _data(3, large[::-1], end=True),
            _data(5, b"", end=True),
            _headers(5, block[:30], ("END_HEADERS", "PADDED"), pad_length=7),
            _headers(5, block, ("END_HEADERS", "PRIORITY"), depends_on=3, stream_weight=9),
            split,
            bytes(undefined),
            _headers(11, large[:16_000], ("END_HEADERS", "END_STREAM")),
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


@pytest.mark.parametrize(
    "frame",
    [
        # (on stream 0: hyperframe will not serialize it; the stream id bytes zeroed by hand)
        _headers(1, b"\x88", ("END_HEADERS",))[:5] + bytes(4) + b"\x88",
        _data(1, b"x") + _headers(3, b"\x88\x89", ("END_HEADERS",))[:-1],  # not all here
    ],
    ids=["stream 0", "incomplete"],
)
def test_headers_frames_h2_refuses_or_waits_for_are_the_same(frame: bytes) -> None:
    def outcome(buffer: h2.frame_buffer.FrameBuffer) -> list[object]:
        buffer.add_data(frame)
        out: list[object] = []
        try:
            out.extend(_seen(f) for f in buffer)
        except h2.exceptions.ProtocolError as error:
            out.append(type(error).__name__)
        return out

    assert outcome(_ours()) == outcome(_stock())


def test_headers_inside_a_header_block_is_h2s_error() -> None:
    wire = HeadersFrame(1, data=b"\x88").serialize() + _headers(3, b"\x88", ("END_HEADERS",))
    for buffer in (_ours(), _stock()):
        buffer.add_data(wire)
        with pytest.raises(h2.exceptions.ProtocolError, match="during header block"):
            list(buffer)
