"""Metadata: grpc.aio.Metadata semantics, and the header encoding of PROTOCOL-HTTP2.md."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from grpc import aio
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_grpc._core import (
    RESERVED,
    Metadata,
    ProtocolError,
    StatusCode,
    decode_metadata,
    encode_metadata,
    validate_key,
)

from .util import ascii_values, metadata_keys, outcome

# --- grpc.aio.Metadata semantics, side by side ------------------------------------------------

keys_st = st.sampled_from(["a", "b", "c-bin", "d"])
values_st = st.one_of(st.sampled_from(["1", "2", "x"]), st.binary(max_size=3))

# One operation on a Metadata, as a name and its arguments.
op_st = st.one_of(
    st.tuples(st.just("add"), keys_st, values_st),
    st.tuples(st.just("setitem"), keys_st, values_st),
    st.tuples(st.just("delitem"), keys_st),
    st.tuples(st.just("getitem"), keys_st),
    st.tuples(st.just("get"), keys_st),
    st.tuples(st.just("get_all"), keys_st),
    st.tuples(st.just("set_all"), keys_st, st.lists(values_st, max_size=3)),
    st.tuples(st.just("delete_all"), keys_st),
    st.tuples(st.just("contains"), keys_st),
)


def apply(md: Any, op: tuple[Any, ...]) -> Any:
    """Run one operation; return its result or the type of the exception it raised."""
    name, *args = op
    try:
        if name == "add":
            return md.add(*args)
        if name == "setitem":
            md[args[0]] = args[1]
            return None
        if name == "delitem":
            del md[args[0]]
            return None
        if name == "getitem":
            return md[args[0]]
        if name == "contains":
            return args[0] in md
        if name == "get_all":
            return list(md.get_all(args[0]))
        if name == "set_all":
            return md.set_all(args[0], list(args[1]))
        return getattr(md, name)(*args)
    except Exception as exc:
        return type(exc)


def snapshot(md: Any) -> tuple[Any, ...]:
    return (
        tuple(md),
        len(md),
        list(md.keys()),
        [list(v) for v in md.values()],
        [(k, list(v)) for k, v in md.items()],
        repr(md).split("(", 1)[1],
    )


@settings(max_examples=200, deadline=None)
@given(
    initial=st.lists(st.tuples(keys_st, values_st), max_size=5),
    ops=st.lists(op_st, max_size=12),
)
def test_same_behaviour_as_grpc_aio_metadata(
    initial: list[tuple[str, str | bytes]], ops: list[tuple[Any, ...]]
) -> None:
    ours, theirs = Metadata(*initial), aio.Metadata(*initial)
    assert snapshot(ours) == snapshot(theirs)
    for op in ops:
        assert apply(ours, op) == apply(theirs, op), op
        assert snapshot(ours) == snapshot(theirs), op
        assert (ours == tuple(ours)) is (theirs == tuple(theirs)) is True


def test_basics() -> None:
    md = Metadata(("a", "1"), ("b", b"\x00"), ("a", "2"))
    assert len(md) == 3
    assert md["a"] == "1"
    assert md.get_all("a") == ["1", "2"]
    # Values group under their key's first position, as in grpc.aio.
    assert md == (("a", "1"), ("a", "2"), ("b", b"\x00"))
    assert md != (("a", "1"), ("b", b"\x00"), ("a", "2"))
    assert md != [("a", "1"), ("a", "2"), ("b", b"\x00")]  # a list is not a tuple, as in grpc
    assert "a" in md
    assert "z" not in md
    assert md.get("z") is None
    assert md.get("z", "dflt") == "dflt"
    md["a"] = "one"
    assert md.get_all("a") == ["one", "2"]
    del md["a"]
    assert md.get_all("a") == ["2"]
    md.delete_all("a")
    assert "a" not in md
    assert md == (("b", b"\x00"),)


def test_missing_keys_raise_key_error_like_grpc() -> None:
    for md in (Metadata(("a", "1")), aio.Metadata(("a", "1"))):
        with pytest.raises(KeyError) as info:
            md["zz"]
        assert info.value.args == ("zz",)
        with pytest.raises(KeyError):
            del md["zz"]
        with pytest.raises(KeyError):
            md.delete_all("zz")


def test_contains_non_str_is_false_like_grpc() -> None:
    for md in (Metadata(("a", "1")), aio.Metadata(("a", "1"))):
        assert [1] not in md
        assert None not in md
        assert b"a" not in md


def test_setitem_does_not_mutate_a_list_handed_out() -> None:
    """grpc.aio replaces the value list on ``md[k] = v``: a list from get_all/set_all stays."""
    for cls in (Metadata, aio.Metadata):
        md = cls(("a", "1"), ("a", "2"))
        handed_out = md.get_all("a")
        md["a"] = "x"
        assert handed_out == ["1", "2"]
        assert md.get_all("a") == ["x", "2"]

        mine = ["p", "q"]
        md.set_all("b", mine)
        md["b"] = "r"
        assert mine == ["p", "q"]


def test_from_tuple_and_add() -> None:
    pairs = (("a", "1"), ("b", "2"))
    for cls in (Metadata, aio.Metadata):
        assert cls.from_tuple(pairs) == pairs
        assert cls.from_tuple(()) == ()
        assert cls.from_tuple(None) == ()  # type: ignore[arg-type]
        assert len(cls.from_tuple(pairs)) == 2
    ours = Metadata(("a", "1")) + Metadata(("b", "2"))
    theirs = aio.Metadata(("a", "1")) + aio.Metadata(("b", "2"))
    assert tuple(ours) == tuple(theirs) == pairs
    assert Metadata(("a", "1")) + (("b", "2"),) == pairs  # noqa: RUF005 (Metadata.__add__)
    assert aio.Metadata(("a", "1")) + (("b", "2"),) == pairs  # noqa: RUF005 (the reference)


def test_equality_between_metadata() -> None:
    assert Metadata(("a", "1")) == Metadata(("a", "1"))
    assert Metadata(("a", "1"), ("b", "2")) != Metadata(("b", "2"), ("a", "1"))
    assert Metadata() == ()
    assert (Metadata(("a", "1")) == "a") is False


def test_unhashable_like_grpc() -> None:
    for md in (Metadata(), aio.Metadata()):
        with pytest.raises(TypeError):
            hash(md)


def test_repr() -> None:
    assert repr(Metadata(("a", "1"))) == "Metadata((('a', '1'),))"
    assert repr(aio.Metadata(("a", "1"))) == "Metadata((('a', '1'),))"


# --- key and value validation -----------------------------------------------------------------


@pytest.mark.parametrize("key", ["a", "x-y", "under_score", "dot.ted", "0-9", "k-bin", "-bin"])
def test_valid_keys(key: str) -> None:
    validate_key(key)


@pytest.mark.parametrize(
    "key", ["", "Upper", "A", "with space", " a", "a ", ":path", "é", "a\n", "a/b", "a:b"]
)
def test_invalid_keys(key: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        validate_key(key)
    with pytest.raises(ValueError, match="metadata key"):
        encode_metadata([(key, "v")])


@pytest.mark.parametrize("key", sorted(RESERVED))
def test_reserved_keys(key: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        validate_key(key)
    with pytest.raises(ValueError, match="metadata key"):
        encode_metadata([(key, "v")])


@pytest.mark.parametrize("key", [None, 1, b"abc"])
def test_non_str_keys(key: Any) -> None:
    with pytest.raises(ValueError, match="invalid"):
        validate_key(key)


@pytest.mark.parametrize("value", ["é", "a\tb", "a\nb", "\x00", "\x7f", "line\r\n", b"\x80", b"\n"])
def test_invalid_ascii_values(value: str | bytes) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        encode_metadata([("k", value)])


@pytest.mark.parametrize("value", [1, None, ["a"]])
def test_wrong_value_types(value: Any) -> None:
    with pytest.raises(TypeError):
        encode_metadata([("k", value)])
    with pytest.raises(TypeError):
        encode_metadata([("k-bin", value)])


def test_encode_examples() -> None:
    md = Metadata(("k", "v"), ("k", "w x"), ("b-bin", b"\x00\xff"), ("e", ""), ("raw", b"ok"))
    assert encode_metadata(md) == [
        (b"k", b"v"),
        (b"k", b"w x"),
        (b"b-bin", b"AP8"),  # base64 without padding
        (b"e", b""),
        (b"raw", b"ok"),
    ]
    assert encode_metadata(None) == []
    assert encode_metadata(()) == []
    assert encode_metadata([("s-bin", "é")]) == [(b"s-bin", b"w6k")]  # str: its UTF-8


# --- decoding ---------------------------------------------------------------------------------


def test_decode_skips_pseudo_and_reserved_headers() -> None:
    headers = [
        (b":path", b"/svc/M"),
        (b":authority", b"localhost"),
        (b":status", b"200"),
        *[(key.encode(), b"x") for key in sorted(RESERVED - {"grpc-previous-rpc-attempts"})],
        (b"user-key", b"v"),
        (b"grpc-status-details-bin", b"AQI"),  # the rich status travels as metadata
    ]
    assert decode_metadata(headers) == (
        ("user-key", "v"),
        ("grpc-status-details-bin", b"\x01\x02"),
    )


def test_retry_metadata_is_the_applications() -> None:
    """As in grpcio: a server sees grpc-previous-rpc-attempts (a client may not send it), a
    client sees grpc-retry-pushback-ms, which a server may send (gRFC A6)."""
    headers = [(b"grpc-previous-rpc-attempts", b"2"), (b"grpc-retry-pushback-ms", b"10")]
    assert decode_metadata(headers) == (
        ("grpc-previous-rpc-attempts", "2"),
        ("grpc-retry-pushback-ms", "10"),
    )
    assert encode_metadata([("grpc-retry-pushback-ms", "10")]) == [
        (b"grpc-retry-pushback-ms", b"10")
    ]
    with pytest.raises(ValueError, match="reserved"):
        encode_metadata([("grpc-previous-rpc-attempts", "1")])


@pytest.mark.parametrize(
    ("wire", "values"),
    [
        (b"AP8", [b"\x00\xff"]),
        (b"AP8=", [b"\x00\xff"]),
        (b"YQ", [b"a"]),
        (b"YQ==", [b"a"]),
        (b"YQ=", [b"a"]),
        (b"", [b""]),
        (b"YQ,Yg", [b"a", b"b"]),
        (b"YQ==, Yg==", [b"a", b"b"]),
        (b"YWJj", [b"abc"]),
    ],
)
def test_decode_bin(wire: bytes, values: list[bytes]) -> None:
    assert decode_metadata([(b"k-bin", wire)]).get_all("k-bin") == values


@pytest.mark.parametrize("wire", [b"Y", b"!!!!", b"YQ==YQ", b"Y Q", b"Y\nQ", b"\xff\xfe", b"Y-_w"])
def test_invalid_base64_is_internal(wire: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_metadata([(b"k-bin", wire)])
    assert info.value.code is StatusCode.INTERNAL


def test_decode_text_values_are_str() -> None:
    md = decode_metadata([(b"a", b"1"), (b"a", b"2"), (b"b", b"")])
    assert md == (("a", "1"), ("a", "2"), ("b", ""))


ascii_key_st = metadata_keys().filter(lambda k: k not in RESERVED)
metadatum_st = st.one_of(
    st.tuples(
        ascii_key_st.filter(lambda k: not k.endswith("-bin")),
        ascii_values(),
    ),
    st.tuples(ascii_key_st.map(lambda k: k + "-bin"), st.binary(max_size=40)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(metadatum_st, max_size=8))
def test_round_trip(pairs: list[tuple[str, str | bytes]]) -> None:
    headers = encode_metadata(pairs)
    for name, value in headers:
        assert b"=" not in value or not name.endswith(b"-bin")
        assert all(0x20 <= byte <= 0x7E for byte in value)
    assert decode_metadata(headers) == Metadata(*pairs)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=20), min_size=1, max_size=5), st.booleans())
def test_comma_joined_bin_values(values: list[bytes], padded: bool) -> None:
    """A proxy may fold repeated ``-bin`` headers into one, comma-separated."""
    encode: Callable[[bytes], bytes] = (
        base64.b64encode if padded else lambda v: base64.b64encode(v).rstrip(b"=")
    )
    joined = b",".join(encode(v) for v in values)
    assert decode_metadata([(b"x-bin", joined)]).get_all("x-bin") == values


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=12), st.binary(max_size=24)), max_size=6))
def test_decode_garbage_raises_only_protocol_error(headers: list[tuple[bytes, bytes]]) -> None:
    md = outcome(decode_metadata, headers)
    if isinstance(md, ProtocolError):
        assert md.code is StatusCode.INTERNAL
    else:
        for key, _ in md:
            assert not key.startswith(":")
            assert key not in RESERVED


def test_add_other_types_is_a_type_error_like_grpc() -> None:
    for md in (Metadata(("a", "1")), aio.Metadata(("a", "1"))):
        with pytest.raises(TypeError):
            md + 5
        with pytest.raises(TypeError):
            md + "ab"
