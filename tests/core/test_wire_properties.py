"""Hostile-input properties of the sans-IO parsers, complementing the per-module tests.

The per-module tests check round trips of valid input and that garbage raises only
ProtocolError. These check what a hostile peer relies on: that the framing reader's verdict
on arbitrary bytes does not depend on how they are chunked, that it never buffers more than one
maximal message whatever the prefixes claim, that encoders never emit a byte a header field may
not carry whatever they are given, and that the parsers accept exactly their grammar.
"""

from __future__ import annotations

import base64
import itertools
import re
import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asgi_grpc._core import (
    HEADER_SIZE,
    RESERVED,
    MessageReader,
    ProtocolError,
    StatusCode,
    decode_message,
    decode_metadata,
    decode_timeout,
    encode_metadata,
    encode_timeout,
    frame,
    parse_trailers,
    validate_key,
)
from tests.core.util import ascii_values, metadata_keys, outcome

# --------------------------------------------------------------------------- framing


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def read_all(chunks: list[bytes], limit: int | None) -> tuple[list[tuple[bool, bytes]], object]:
    """Feed until the first error, then close: (messages, error code or None)."""
    reader = MessageReader(limit)
    messages: list[tuple[bool, bytes]] = []
    try:
        for chunk in chunks:
            messages += reader.feed(chunk)
        reader.close()
    except ProtocolError as exc:
        return messages, exc.code
    return messages, None


# Wire bytes that look like gRPC framing: real messages, lying prefixes and raw garbage.
piece_st = st.one_of(
    st.binary(max_size=40).map(frame),
    st.tuples(
        st.sampled_from([0, 1, 2, 0x80]), st.integers(0, 2**32 - 1), st.binary(max_size=30)
    ).map(lambda t: struct.pack(">BI", t[0], t[1]) + t[2]),
    st.tuples(st.integers(0, 64), st.binary(max_size=20)).map(
        lambda t: struct.pack(">BI", 0, t[0]) + t[1]
    ),
    st.binary(max_size=12),
)
wire_st = st.lists(piece_st, max_size=6).map(b"".join)
cuts_st = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)
limit_st = st.sampled_from([None, 0, 16, 64, 1 << 22])


@settings(max_examples=200, deadline=None)
@given(wire=wire_st, cuts=cuts_st, limit=limit_st)
@example(wire=b"\x00\x00\x00\x00\x01a\x02\x00\x00\x00\x00", cuts=[6], limit=None)
def test_verdict_on_any_bytes_does_not_depend_on_chunking(
    wire: bytes, cuts: list[int], limit: int | None
) -> None:
    whole = read_all([wire], limit)
    assert read_all(cut(wire, cuts), limit) == whole
    assert read_all([bytes([b]) for b in wire], limit) == whole


@settings(max_examples=300, deadline=None)
@given(wire=wire_st, cuts=cuts_st, limit=st.sampled_from([0, 1, 16, 64, 1000]))
def test_never_buffers_more_than_one_maximal_message(
    wire: bytes, cuts: list[int], limit: int
) -> None:
    reader = MessageReader(limit)
    for chunk in cut(wire, cuts):
        try:
            reader.feed(chunk)
        except ProtocolError:
            break
        # What is held is part of one message whose prefix passed the limit.
        assert reader.pending < HEADER_SIZE + limit


@settings(max_examples=300, deadline=None)
@given(
    claimed=st.integers(min_value=0, max_value=2**32 - 1),
    sent=st.binary(max_size=64),
    split=st.integers(min_value=0, max_value=HEADER_SIZE - 1),
    limit=st.integers(min_value=0, max_value=1 << 22),
)
def test_lying_prefix(claimed: int, sent: bytes, split: int, limit: int) -> None:
    """A prefix over the limit fails on the chunk that completes it, before any payload is held;
    one that claims more than is sent before the end of the stream fails at close()."""
    wire = struct.pack(">BI", 0, claimed) + sent
    reader = MessageReader(limit)
    assert reader.feed(wire[:split]) == []
    if claimed > limit:
        with pytest.raises(ProtocolError, match=f"larger than max \\({claimed} vs") as info:
            reader.feed(wire[split:HEADER_SIZE])
        assert info.value.code is StatusCode.RESOURCE_EXHAUSTED
        return
    messages = reader.feed(wire[split:])
    if claimed <= len(sent):
        assert messages[0] == (False, sent[:claimed])
        return
    assert messages == []
    assert reader.pending == len(wire)
    with pytest.raises(ProtocolError, match=f"\\({len(wire)} bytes left over\\)") as info:
        reader.close()
    assert info.value.code is StatusCode.INTERNAL


# --------------------------------------------------------------------------- metadata

_FIELD_NAME = re.compile(rb"[0-9a-z_.\-]+")
_FIELD_VALUE = re.compile(rb"[\x20-\x7e]*")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(metadata_keys(), st.text(max_size=8)),
            st.one_of(ascii_values(), st.text(max_size=8), st.binary(max_size=8)),
        ),
        max_size=5,
    )
)
@example([("x", "a\r\nb")])
@example([("x", b"a\x00b")])
@example([("X-Up", "a")])
@example([("x-bin", "\x00\r\n")])
def test_encode_never_emits_a_bad_field(pairs: list[tuple[str, str | bytes]]) -> None:
    """Whatever an application passes, no CR, LF, NUL, upper case or reserved name gets out."""
    try:
        headers = encode_metadata(pairs)
    except (ValueError, TypeError):
        return
    for name, value in headers:
        assert _FIELD_NAME.fullmatch(name)
        assert name.decode() not in RESERVED
        assert _FIELD_VALUE.fullmatch(value)


@settings(max_examples=200, deadline=None)
@given(st.one_of(metadata_keys(), st.text(max_size=10)))
@example("a\x00")
@example("k\n")
@example("é")
def test_validate_key_accepts_exactly_the_grammar(key: str) -> None:
    valid = re.fullmatch(r"[0-9a-z_.\-]+", key) is not None and key not in RESERVED
    try:
        validate_key(key)
    except ValueError:
        assert not valid
    else:
        assert valid


text_header_st = st.tuples(
    metadata_keys().filter(lambda k: k not in RESERVED and not k.endswith("-bin")),
    ascii_values(),
).map(lambda kv: (kv[0].encode(), kv[1].encode()))
bin_header_st = st.tuples(
    metadata_keys(8).map(lambda k: k + "-bin"),
    st.lists(st.binary(max_size=10).map(base64.b64encode), min_size=1, max_size=3),
).map(lambda kv: (kv[0].encode(), b",".join(kv[1])))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(text_header_st, bin_header_st), max_size=6))
def test_received_metadata_re_encodes_to_what_decodes_the_same(
    headers: list[tuple[bytes, bytes]],
) -> None:
    """decode -> encode -> decode is stable: what a server echoes back means what it received
    (text values byte for byte; binary ones as canonical unpadded base64)."""
    decoded = decode_metadata(headers)
    encoded = encode_metadata(decoded)
    assert decode_metadata(encoded) == decoded

    # Values of one key keep their order (Metadata groups keys, as grpc.aio's does).
    def by_key(pairs: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        return sorted(((k, v) for k, v in pairs if not k.endswith(b"-bin")), key=lambda kv: kv[0])

    assert by_key(encoded) == by_key(headers)


# --------------------------------------------------------------------------- timeouts

_TIMEOUT = re.compile(rb"[0-9]{1,8}[HMSmun]")


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=11),
        st.text(max_size=10),
        st.from_regex(r"\A[0-9]{0,10}[HMSmunhs]?\Z"),
        st.from_regex(r"\A[ +\-]?[0-9]{1,8}[HMSmun] ?\Z"),
    )
)
@example("\u0661S")  # an Arabic-Indic digit
@example("1.5S")
@example("00000000n")
def test_decode_timeout_accepts_exactly_the_grammar(wire: bytes | str) -> None:
    raw = wire.encode("utf-8") if isinstance(wire, str) else wire
    valid = _TIMEOUT.fullmatch(raw) is not None
    seconds = outcome(decode_timeout, wire)
    if isinstance(seconds, ProtocolError):
        assert not valid
        assert seconds.code is StatusCode.INTERNAL
    else:
        assert valid
        assert seconds >= 0


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.floats(allow_nan=False),
        st.floats(max_value=0, allow_nan=False),
        st.integers(min_value=-(10**12), max_value=10**16).map(float),
    )
)
def test_encode_timeout_of_any_number_is_on_the_grammar(seconds: float) -> None:
    """Zero, negative, huge and infinite timeouts too: always a value a peer can parse."""
    wire = encode_timeout(seconds)
    assert _TIMEOUT.fullmatch(wire.encode())
    decoded = decode_timeout(wire)
    assert decoded > 0
    assert decoded >= min(seconds, 99_999_999 * 3600)


# --------------------------------------------------------------------------- grpc-message


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=40), data=st.data())
@example(raw=b"%41", data=None)
def test_decode_message_of_any_conforming_encoding(raw: bytes, data: st.DataObject | None) -> None:
    """Peers encode grpc-message differently (which printable bytes to escape, hex case): any
    encoding the spec allows decodes to the same text as ours."""
    out = bytearray()
    for byte in raw:
        must = byte == 0x25 or not 0x20 <= byte <= 0x7E
        if must or (data is not None and data.draw(st.booleans())):
            upper = data is None or data.draw(st.booleans())
            out += (f"%{byte:02X}" if upper else f"%{byte:02x}").encode()
        else:
            out.append(byte)
    assert decode_message(bytes(out)) == raw.decode("utf-8", "replace")


# --------------------------------------------------------------------------- trailers


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"grpc-status", b"grpc-message", b"x-bin", b"x", b":status"]),
            st.binary(max_size=12),
        ),
        max_size=5,
    )
)
@example([(b"grpc-status", b"\xd9\xa1")])
@example([(b"grpc-status", b"99999999999999999999")])
def test_trailers_from_a_lying_server_give_a_status_or_internal(
    headers: list[tuple[bytes, bytes]],
) -> None:
    """Any trailers end the call with a status: never a foreign exception out of the parser."""
    status = outcome(parse_trailers, headers)
    if isinstance(status, ProtocolError):
        assert status.code is StatusCode.INTERNAL
        return
    assert isinstance(status.code, StatusCode)
    assert isinstance(status.details, str)
    codes = [v for k, v in headers if k == b"grpc-status"]
    if codes and not (codes[-1].isdigit() and len(codes[-1]) <= 3):
        assert status.code is StatusCode.UNKNOWN
