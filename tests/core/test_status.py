"""Status codes (checked against grpcio's) and the grpc-message percent-encoding."""

from __future__ import annotations

import re

import grpc
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asgi_grpc._core import (
    ProtocolError,
    StatusCode,
    coerce_status,
    decode_message,
    encode_message,
    status_from_int,
    status_from_wire,
    status_to_wire,
)


def test_members_match_grpcio() -> None:
    assert [m.name for m in StatusCode] == [m.name for m in grpc.StatusCode]
    for ours in StatusCode:
        theirs = grpc.StatusCode[ours.name]
        assert ours.value == theirs.value
        assert StatusCode(theirs.value) is ours


@pytest.mark.parametrize("theirs", list(grpc.StatusCode))
def test_coerce_grpcio_members(theirs: grpc.StatusCode) -> None:
    assert coerce_status(theirs) is StatusCode[theirs.name]


@pytest.mark.parametrize("code", list(StatusCode))
def test_coerce_ours_and_ints(code: StatusCode) -> None:
    assert coerce_status(code) is code
    assert coerce_status(code.value[0]) is code
    assert status_from_int(code.value[0]) is code


@pytest.mark.parametrize("value", [-1, 17, 100, 2**40])
def test_out_of_range_ints_are_unknown(value: int) -> None:
    assert coerce_status(value) is StatusCode.UNKNOWN
    assert status_from_int(value) is StatusCode.UNKNOWN


@pytest.mark.parametrize("value", ["OK", 1.0, None, object(), (0, "ok")])
def test_coerce_rejects_other_types(value: object) -> None:
    with pytest.raises(TypeError):
        coerce_status(value)


@pytest.mark.parametrize("code", list(StatusCode))
def test_wire_round_trip(code: StatusCode) -> None:
    wire = status_to_wire(code)
    assert wire == str(code.value[0]).encode()
    assert status_from_wire(wire) is code


@pytest.mark.parametrize(
    "value", [None, b"", b"-1", b"17", b"1 ", b" 1", b"0x1", b"1.0", b"abc", b"0000", b"\xd9\xa1"]
)
def test_malformed_wire_status_is_unknown(value: bytes | None) -> None:
    assert status_from_wire(value) is StatusCode.UNKNOWN


def test_leading_zeros_parse() -> None:
    assert status_from_wire(b"05") is StatusCode.NOT_FOUND


def test_protocol_error_carries_code() -> None:
    error = ProtocolError(StatusCode.INTERNAL, "bad")
    assert error.code is StatusCode.INTERNAL
    assert error.message == "bad"
    assert str(error) == "bad"
    assert repr(error) == "ProtocolError(INTERNAL, 'bad')"


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("", b""),
        ("plain text, ok!", b"plain text, ok!"),
        ("100%", b"100%25"),
        ("a\tb\nc\r", b"a%09b%0Ac%0D"),
        ("\x7f", b"%7F"),
        ("é", b"%C3%A9"),
        ("€", b"%E2%82%AC"),
        ("😀", b"%F0%9F%98%80"),
        ("~ x", b"~ x"),
        (" ", b"%20"),
        ("  ", b"%20%20"),
        ("   ", b"%20 %20"),
        (" padded ", b"%20padded%20"),
        ("a  b", b"a  b"),
    ],
)
def test_encode_examples(text: str, wire: bytes) -> None:
    assert encode_message(text) == wire
    assert decode_message(wire) == text


@pytest.mark.parametrize(
    ("wire", "text"),
    [
        (b"%", "%"),
        (b"%4", "%4"),
        (b"abc%", "abc%"),
        (b"%zz", "%zz"),
        (b"%4g", "%4g"),
        (b"%%41", "%A"),
        (b"%41%", "A%"),
        (b"%c3%a9", "é"),  # lower-case hex decodes too
        (b"50%-off", "50%-off"),
        (b"%ff", "\ufffd"),  # not UTF-8: replaced, never an exception
    ],
)
def test_decode_keeps_malformed_escapes(wire: bytes, text: str) -> None:
    assert decode_message(wire) == text


@settings(max_examples=300, deadline=None)
@given(st.text())
@example("\t\n%\U0001f600%25")
@example("%%%")
def test_round_trip_any_text(text: str) -> None:
    wire = encode_message(text)
    # Printable ASCII only, and a valid HTTP/2 field value: no whitespace at either end.
    assert re.fullmatch(rb"([\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?)?", wire)
    assert decode_message(wire) == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_printable_ascii_passes_through(text: str) -> None:
    wire = encode_message(text)
    # Any printable ASCII but '%' passes through, except a space at either end.
    expected = text.replace("%", "%25")
    if expected.startswith(" "):
        expected = "%20" + expected[1:]
    if expected.endswith(" "):
        expected = expected[:-1] + "%20"
    assert wire == expected.encode("ascii")


@settings(max_examples=300, deadline=None)
@given(st.binary())
def test_decode_never_raises(wire: bytes) -> None:
    assert isinstance(decode_message(wire), str)


def test_encoded_escapes_are_upper_case() -> None:
    # PROTOCOL-HTTP2.md: Percent-Byte-Encoded := "%" 1*2HEXDIGIT with upper-case hex.
    assert encode_message("\n\xff") == b"%0A%C3%BF"


def test_lone_surrogate_does_not_raise() -> None:
    wire = encode_message("a\ud800b")
    assert re.fullmatch(rb"[\x20-\x7e]*", wire)
    assert decode_message(wire) == "a\ufffd\ufffd\ufffdb"
