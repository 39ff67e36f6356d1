"""gRPC-Web's sans-IO pieces: content types, the trailer frame, base64 streams, body reading."""

from __future__ import annotations

import base64
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_grpc._core import MessageReader, ProtocolError, StatusCode, frame
from asgi_grpc._core._web import (
    MAX_TRAILER_BLOCK,
    Base64Decoder,
    ResponseBodyReader,
    is_grpc_web_content_type,
    parse_trailer_block,
    trailer_frame,
)
from tests.core.test_framing import split

trailers_st = st.lists(
    st.tuples(
        st.from_regex(rb"[a-z][a-z0-9-]{0,10}", fullmatch=True),
        st.from_regex(rb"[ -~]{0,20}", fullmatch=True).map(bytes.strip),
    ),
    max_size=5,
)


@pytest.mark.parametrize(
    ("value", "web"),
    [
        (b"application/grpc-web", True),
        (b"application/grpc-web+proto", True),
        (b"application/grpc-web-text", True),
        (b"application/grpc-web-text+proto", True),
        (b"application/grpc-web;charset=x", True),
        (b"application/grpc", False),
        (b"application/grpc+proto", False),
        (b"application/grpc-webx", False),
        (b"application/grpc-web-textual", False),
        (None, False),
    ],
)
def test_content_types(value: bytes | None, web: bool) -> None:
    assert is_grpc_web_content_type(value) is web


@given(trailers_st)
def test_trailer_frame_round_trip(trailers: list[tuple[bytes, bytes]]) -> None:
    data = trailer_frame(trailers)
    flag, length = struct.unpack(">BI", data[:5])
    assert flag == 0x80
    assert length == len(data) - 5
    assert parse_trailer_block(data[5:]) == trailers


def test_trailer_block_lines_must_have_a_colon() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_trailer_block(b"grpc-status: 0\r\nnonsense\r\n")
    assert info.value.code is StatusCode.INTERNAL


@given(st.lists(st.binary(max_size=40), max_size=6), st.lists(st.integers(0, 400), max_size=8))
def test_base64_per_flush_padding_any_chunking(flushes: list[bytes], cuts: list[int]) -> None:
    """A writer base64-encodes each flush with its padding; a reader gets any chunking."""
    text = b"".join(base64.b64encode(f) for f in flushes)
    decoder = Base64Decoder()
    out = b"".join(decoder.feed(chunk) for chunk in split(text, cuts))
    decoder.close()
    assert out == b"".join(flushes)


@pytest.mark.parametrize("bad", [b"!!!!", b"AA=A", b"A===", b"\xff\xff\xff\xff"])
def test_base64_rejects_garbage(bad: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        Base64Decoder().feed(bad)
    assert info.value.code is StatusCode.INTERNAL


def test_base64_truncated_at_the_end() -> None:
    decoder = Base64Decoder()
    assert decoder.feed(b"QUJD" + b"QU") == b"ABC"
    with pytest.raises(ProtocolError, match="2 characters left over"):
        decoder.close()


def test_base64_ignores_line_breaks() -> None:
    decoder = Base64Decoder()
    assert decoder.feed(b"QU\r\nJD\n") == b"ABC"


@given(
    st.lists(st.binary(max_size=50), max_size=5),
    trailers_st,
    st.lists(st.integers(0, 400), max_size=10),
)
def test_response_body_any_chunking(
    messages: list[bytes], trailers: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    body = b"".join(frame(m) for m in messages) + trailer_frame(trailers)
    reader = ResponseBodyReader()
    passed = b"".join(reader.feed(chunk) for chunk in split(body, cuts))
    assert reader.complete
    assert reader.trailers == trailers
    assert [payload for _, payload in MessageReader().feed(passed)] == messages


def test_response_body_errors() -> None:
    reader = ResponseBodyReader()
    reader.feed(trailer_frame([(b"grpc-status", b"0")]))
    with pytest.raises(ProtocolError, match="after the trailers"):
        reader.feed(frame(b"x"))
    with pytest.raises(ProtocolError, match="compressed"):
        ResponseBodyReader().feed(b"\x81\x00\x00\x00\x00")
    with pytest.raises(ProtocolError, match="too large"):
        ResponseBodyReader().feed(struct.pack(">BI", 0x80, MAX_TRAILER_BLOCK + 1))
    partial = ResponseBodyReader()
    partial.feed(frame(b"abc")[:4])
    assert not partial.complete
