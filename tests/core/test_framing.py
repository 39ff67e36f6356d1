"""Length-prefixed message framing: frame() and the incremental MessageReader."""

from __future__ import annotations

import itertools
import struct
import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_grpc._core import (
    DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH,
    HEADER_SIZE,
    MessageReader,
    ProtocolError,
    StatusCode,
    frame,
    too_large,
)

messages_st = st.lists(st.tuples(st.booleans(), st.binary(max_size=300)), max_size=8)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (any order, duplicates allowed: empty chunks too)."""
    points = sorted(min(max(cut, 0), len(data)) for cut in cuts)
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def read_all(reader: MessageReader, chunks: list[bytes]) -> list[tuple[bool, bytes]]:
    out: list[tuple[bool, bytes]] = []
    for chunk in chunks:
        out += reader.feed(chunk)
    reader.close()
    return out


def test_frame_layout() -> None:
    assert frame(b"abc") == b"\x00\x00\x00\x00\x03abc"
    assert frame(b"abc", compressed=True) == b"\x01\x00\x00\x00\x03abc"
    assert frame(b"") == b"\x00\x00\x00\x00\x00"
    assert HEADER_SIZE == 5
    payload = bytes(range(256)) * 300
    assert frame(payload)[:5] == struct.pack(">BI", 0, len(payload))


def test_default_receive_limit_is_grpc_s() -> None:
    assert DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH == 4 * 1024 * 1024
    assert MessageReader().max_length == DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH


def test_whole_messages_in_one_chunk() -> None:
    reader = MessageReader()
    data = frame(b"one") + frame(b"", compressed=True) + frame(b"three")
    assert reader.feed(data) == [(False, b"one"), (True, b""), (False, b"three")]
    assert reader.pending == 0
    reader.close()


def test_payloads_are_bytes() -> None:
    reader = MessageReader()
    for compressed, payload in reader.feed(frame(b"x") + frame(b"yz")):
        assert type(payload) is bytes
        assert isinstance(compressed, bool)


def test_byte_by_byte() -> None:
    reader = MessageReader()
    data = frame(b"hello") + frame(b"") + frame(b"world", compressed=True)
    out = []
    for i in range(len(data)):
        out += reader.feed(data[i : i + 1])
    assert out == [(False, b"hello"), (False, b""), (True, b"world")]
    assert reader.pending == 0


def test_pending_counts_partial_message() -> None:
    reader = MessageReader()
    data = frame(b"0123456789")
    assert reader.feed(data[:3]) == []
    assert reader.pending == 3
    assert reader.feed(data[3:8]) == []
    assert reader.pending == 8
    assert reader.feed(data[8:]) == [(False, b"0123456789")]
    assert reader.pending == 0


def test_empty_chunks_are_harmless() -> None:
    reader = MessageReader()
    assert reader.feed(b"") == []
    assert reader.feed(frame(b"a")[:2]) == []
    assert reader.feed(b"") == []
    assert reader.feed(frame(b"a")[2:]) == [(False, b"a")]
    reader.close()


def test_zero_length_messages_only() -> None:
    reader = MessageReader(max_length=0)
    assert reader.feed(frame(b"") * 3) == [(False, b"")] * 3
    with pytest.raises(ProtocolError) as info:
        reader.feed(frame(b"x"))
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("flag", [2, 3, 0x80, 0xFF])
def test_invalid_flag_is_internal(flag: int) -> None:
    reader = MessageReader()
    with pytest.raises(ProtocolError) as info:
        reader.feed(bytes([flag]) + b"\x00\x00\x00\x01x")
    assert info.value.code is StatusCode.INTERNAL
    assert "flag" in info.value.message


def test_invalid_flag_after_a_good_message_in_a_later_chunk() -> None:
    reader = MessageReader()
    assert reader.feed(frame(b"ok") + b"\x02\x00") == [(False, b"ok")]
    with pytest.raises(ProtocolError) as info:
        reader.feed(b"\x00\x00\x00")
    assert info.value.code is StatusCode.INTERNAL


def test_max_length_is_enforced_on_the_prefix_alone() -> None:
    """The limit trips as soon as the 5-byte prefix is in: no payload byte needs to arrive."""
    reader = MessageReader(max_length=10)
    assert reader.feed(frame(b"x" * 10)) == [(False, b"x" * 10)]
    with pytest.raises(ProtocolError) as info:
        reader.feed(struct.pack(">BI", 0, 11))
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED
    assert "11" in info.value.message
    assert "10" in info.value.message


def test_messages_before_a_bad_prefix_come_out_first() -> None:
    """A chunk holding good messages then a bad prefix yields the good ones; the error follows.

    Otherwise what a stream delivers before failing would depend on how the peer's bytes
    happened to be chunked.
    """
    reader = MessageReader(max_length=4)
    data = frame(b"ok") + frame(b"fine") + frame(b"too long")
    assert reader.feed(data) == [(False, b"ok"), (False, b"fine")]
    with pytest.raises(ProtocolError) as info:
        reader.feed(b"")
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED
    # The reader stays failed.
    with pytest.raises(ProtocolError):
        reader.feed(frame(b"ok"))


def test_deferred_error_is_raised_by_close() -> None:
    reader = MessageReader()
    assert reader.feed(frame(b"ok") + b"\x07\x00\x00\x00\x00") == [(False, b"ok")]
    with pytest.raises(ProtocolError) as info:
        reader.close()
    assert info.value.code is StatusCode.INTERNAL
    assert "flag" in info.value.message


def test_bad_prefix_first_raises_at_once() -> None:
    reader = MessageReader(max_length=1)
    with pytest.raises(ProtocolError):
        reader.feed(frame(b"xx") + frame(b"y"))


def test_bytearray_and_memoryview_chunks_give_bytes() -> None:
    reader = MessageReader()
    data = frame(b"abc") + frame(b"de")
    out = reader.feed(bytearray(data[:7])) + reader.feed(memoryview(data)[7:])  # type: ignore[arg-type]
    assert out == [(False, b"abc"), (False, b"de")]
    assert all(type(payload) is bytes for _, payload in out)
    out = MessageReader().feed(bytearray(frame(b"solo")))  # type: ignore[arg-type]
    assert out == [(False, b"solo")]
    assert type(out[0][1]) is bytes


def test_max_length_prefix_split_across_chunks() -> None:
    reader = MessageReader(max_length=1024)
    header = struct.pack(">BI", 1, 2**32 - 1)
    assert reader.feed(header[:2]) == []
    with pytest.raises(ProtocolError) as info:
        reader.feed(header[2:])
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED


def test_max_length_none_means_unlimited() -> None:
    reader = MessageReader(max_length=None)
    payload = b"z" * (DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH + 1)
    assert reader.feed(frame(payload)) == [(False, payload)]


def test_too_large_helper() -> None:
    error = too_large("Sent", 7, 5)
    assert error.code is StatusCode.RESOURCE_EXHAUSTED
    assert error.message == "Sent message larger than max (7 vs. 5)"


@pytest.mark.parametrize("cut", [1, 4, 5, 6, 9])
def test_close_with_partial_message_is_internal(cut: int) -> None:
    reader = MessageReader()
    reader.feed(frame(b"abcde")[:cut])
    with pytest.raises(ProtocolError) as info:
        reader.close()
    assert info.value.code is StatusCode.INTERNAL
    assert f"{cut} bytes" in info.value.message
    # The partial message is dropped: a second close is clean.
    assert reader.pending == 0
    reader.close()


def test_close_at_boundary_is_clean() -> None:
    reader = MessageReader()
    reader.close()
    reader.feed(frame(b"a"))
    reader.close()


def test_large_message_in_small_chunks_is_linear() -> None:
    """Buffering a message must not copy the whole buffer on every chunk (quadratic time).

    8 MiB in 1 KiB chunks is 8,192 feeds: copying the buffer on each one moves ~32 GiB and takes
    many seconds, appending takes milliseconds.
    """
    payload = b"\xab" * (8 * 1024 * 1024)
    data = frame(payload)
    reader = MessageReader(max_length=None)
    step = 1024
    start = time.perf_counter()
    out = []
    for i in range(0, len(data), step):
        out += reader.feed(data[i : i + step])
    elapsed = time.perf_counter() - start
    assert out == [(False, payload)]
    assert elapsed < 1.0, f"{elapsed:.2f}s to reassemble 8 MiB"


def test_message_held_a_byte_at_a_time_costs_about_its_size() -> None:
    """Small pieces of a message under way are merged, not kept as an object each."""
    payload = bytes(range(256)) * 256  # 64 KiB
    data = frame(payload)
    reader = MessageReader()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(len(data) - 1):
            assert reader.feed(data[i : i + 1]) == []
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # An object per byte would be ~35x the payload; merged, about 1x (bytearray growth).
    assert held < 3 * len(payload), held
    assert reader.feed(data[-1:]) == [(False, payload)]


def test_the_start_of_a_message_does_not_pin_the_chunk_it_came_in() -> None:
    # One chunk (a 1 MiB DATA frame's payload): a whole message, then the first 4 KiB of the
    # next. What the reader holds once the chunk and the message are dropped is about those
    # 4 KiB, which is what `pending` (and the server's accounting) says, not the whole chunk.
    reader = MessageReader(max_length=None)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        chunk = frame(b"x" * (1024 * 1024)) + frame(b"y" * 8192)[:4096]
        messages = reader.feed(chunk)
        assert [len(payload) for _, payload in messages] == [1024 * 1024]
        del chunk, messages
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert reader.pending == 4096
    assert held < 64 * 1024, held
    assert reader.feed(b"y" * (8192 + HEADER_SIZE - 4096)) == [(False, b"y" * 8192)]


# Messages larger than the reader's small-piece size, so chunks are held as they are (views).
large_messages_st = st.lists(
    st.tuples(st.booleans(), st.binary(max_size=5000).map(lambda b: b * 3)), max_size=5
)


@settings(max_examples=200, deadline=None)
@given(
    messages=large_messages_st,
    cuts=st.lists(st.integers(min_value=0, max_value=80_000), max_size=12),
)
def test_round_trip_large_messages_any_chunking(
    messages: list[tuple[bool, bytes]], cuts: list[int]
) -> None:
    data = b"".join(frame(payload, compressed) for compressed, payload in messages)
    out = read_all(MessageReader(max_length=None), split(data, cuts))
    assert out == messages
    assert all(type(payload) is bytes for _, payload in out)


@settings(max_examples=300, deadline=None)
@given(messages=messages_st, cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=12))
def test_round_trip_any_chunking(messages: list[tuple[bool, bytes]], cuts: list[int]) -> None:
    data = b"".join(frame(payload, compressed) for compressed, payload in messages)
    assert read_all(MessageReader(), split(data, cuts)) == messages


@settings(max_examples=100, deadline=None)
@given(messages=messages_st)
def test_round_trip_byte_at_a_time(messages: list[tuple[bool, bytes]]) -> None:
    data = b"".join(frame(payload, compressed) for compressed, payload in messages)
    assert read_all(MessageReader(), [data[i : i + 1] for i in range(len(data))]) == messages


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=64), min_size=1, max_size=6),
    limit=st.integers(min_value=0, max_value=64),
    cuts=st.lists(st.integers(min_value=0, max_value=500), max_size=6),
)
def test_limit_any_chunking(sizes: list[int], limit: int, cuts: list[int]) -> None:
    """Messages up to the limit come out in order; the first one over it raises."""
    data = b"".join(frame(bytes([n]) * n) for n in sizes)
    reader = MessageReader(max_length=limit)
    out: list[tuple[bool, bytes]] = []
    error: ProtocolError | None = None
    try:
        for chunk in split(data, cuts):
            out += reader.feed(chunk)
        reader.close()
    except ProtocolError as exc:
        error = exc
    good = list(itertools.takewhile(lambda n: n <= limit, sizes))
    assert [payload for _, payload in out] == [bytes([n]) * n for n in good]
    if good == sizes:
        assert error is None
    else:
        assert error is not None
        assert error.code is StatusCode.RESOURCE_EXHAUSTED


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.binary(max_size=64), max_size=10), limit=st.sampled_from([None, 0, 16]))
def test_garbage_only_raises_protocol_error(chunks: list[bytes], limit: int | None) -> None:
    reader = MessageReader(max_length=limit)
    out: list[tuple[bool, bytes]] = []
    error: ProtocolError | None = None
    try:
        for chunk in chunks:
            out += reader.feed(chunk)
        reader.close()
    except ProtocolError as exc:
        error = exc
    assert error is None or error.code in (StatusCode.INTERNAL, StatusCode.RESOURCE_EXHAUSTED)
    for compressed, payload in out:
        assert isinstance(compressed, bool)
        assert type(payload) is bytes


def test_views_of_bytes_are_kept_and_payloads_are_bytes() -> None:
    # The server hands a large request over as views of the bytes it read (DataParts): the
    # reader keeps them as they are and joins the message once; what it returns is bytes.
    payload = bytes(range(256)) * 1024
    wire = frame(payload) + frame(b"tail")
    reader = MessageReader()
    pieces = [memoryview(wire)[i : i + 100_000] for i in range(0, len(wire), 100_000)]
    out = [message for piece in pieces for message in reader.feed(piece)]
    assert out == [(False, payload), (False, b"tail")]
    assert all(type(p) is bytes for _, p in out)
    # A message whole in one view comes out as bytes too.
    out = MessageReader().feed(memoryview(frame(b"solo")))
    assert out == [(False, b"solo")]
    assert type(out[0][1]) is bytes


def test_a_view_of_a_mutable_buffer_is_copied() -> None:
    buffer = bytearray(frame(b"a" * 5000)[:3000])
    reader = MessageReader()
    assert reader.feed(memoryview(buffer)) == []
    buffer[5:] = b"z" * (len(buffer) - 5)  # the owner changes after the feed: not seen
    (out,) = reader.feed(frame(b"a" * 5000)[3000:])
    assert out == (False, b"a" * 5000)


def test_a_small_view_of_large_bytes_is_not_held_as_a_view() -> None:
    # A held view keeps all of its bytes alive: a view under half of them is copied, so that
    # the start of a message cannot pin a whole read (or request body) while it is pending.
    big = frame(b"m" * 100_000)
    owner = b"x" * 900_000 + big[:1000]
    reader = MessageReader()
    assert reader.feed(memoryview(owner)[900_000:]) == []
    assert reader.pending == 1000
    assert all(type(part) is not memoryview for part in reader._parts)
    (out,) = reader.feed(big[1000:])
    assert out == (False, b"m" * 100_000)
