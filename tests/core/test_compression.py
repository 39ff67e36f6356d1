"""Message compression (doc/compression.md): codecs, the zip-bomb guard, negotiation."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_grpc._core import (
    ACCEPT_ENCODING,
    DEFLATE,
    GZIP,
    IDENTITY,
    Compression,
    ProtocolError,
    StatusCode,
    compress,
    decompress,
    encoding_name,
    is_supported,
    parse_accept_encoding,
)
from asgi_grpc._core._compression import choose

from .util import outcome

CODECS = [GZIP, DEFLATE]


def test_compression_enum_matches_grpcio() -> None:
    assert [m.name for m in Compression] == [m.name for m in grpc.Compression]
    for ours in Compression:
        assert int(ours) == int(grpc.Compression[ours.name])


@pytest.mark.parametrize(
    ("member", "name"),
    [
        (grpc.Compression.NoCompression, "identity"),
        (grpc.Compression.Deflate, "deflate"),
        (grpc.Compression.Gzip, "gzip"),
    ],
)
def test_encoding_name_of_grpcio_members(member: grpc.Compression, name: str) -> None:
    assert encoding_name(member) == name
    assert encoding_name(Compression[member.name]) == name
    assert encoding_name(int(member)) == name


def test_encoding_name_none_is_identity() -> None:
    assert encoding_name(None) == IDENTITY


@pytest.mark.parametrize("value", [3, -1, 99])
def test_encoding_name_unknown(value: int) -> None:
    with pytest.raises(ValueError, match="unknown compression"):
        encoding_name(value)


def test_supported_names() -> None:
    assert is_supported("gzip")
    assert is_supported("deflate")
    assert is_supported("identity")
    assert not is_supported("snappy")
    assert not is_supported("GZIP")
    assert not is_supported("")
    assert ACCEPT_ENCODING == b"identity,deflate,gzip"


@pytest.mark.parametrize("name", CODECS)
@pytest.mark.parametrize("data", [b"", b"x", b"hello " * 1000, bytes(range(256)) * 64])
def test_round_trip(name: str, data: bytes) -> None:
    packed = compress(name, data)
    assert decompress(name, packed, None) == data
    assert decompress(name, packed, len(data)) == data


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(CODECS), data=st.binary(max_size=2000))
def test_round_trip_property(name: str, data: bytes) -> None:
    assert decompress(name, compress(name, data), len(data)) == data


def test_gzip_interop_with_python_gzip() -> None:
    data = b"interop " * 500
    assert gzip.decompress(compress(GZIP, data)) == data
    assert decompress(GZIP, gzip.compress(data), None) == data


def test_deflate_is_zlib_format() -> None:
    """gRPC's "deflate" is RFC 1950 zlib (with header and Adler-32), not raw deflate."""
    data = b"interop " * 500
    packed = compress(DEFLATE, data)
    assert zlib.decompress(packed) == data
    assert decompress(DEFLATE, zlib.compress(data), None) == data
    raw = zlib.compressobj(6, zlib.DEFLATED, -15)
    with pytest.raises(ProtocolError) as info:
        decompress(DEFLATE, raw.compress(data) + raw.flush(), None)
    assert info.value.code is StatusCode.INTERNAL


def test_limit_is_inclusive() -> None:
    data = b"a" * 100
    assert decompress(GZIP, compress(GZIP, data), 100) == data
    with pytest.raises(ProtocolError) as info:
        decompress(GZIP, compress(GZIP, data), 99)
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED
    assert decompress(GZIP, compress(GZIP, b""), 0) == b""
    with pytest.raises(ProtocolError):
        decompress(GZIP, compress(GZIP, b"a"), 0)


@pytest.mark.parametrize("name", CODECS)
def test_bomb_stops_at_the_limit_without_inflating_it_all(name: str) -> None:
    bomb = compress(name, bytes(10 * 1024 * 1024))
    assert len(bomb) < 64 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError) as info:
            decompress(name, bomb, 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.code is StatusCode.RESOURCE_EXHAUSTED
    assert peak < 3 * 1024 * 1024, f"peak {peak} bytes for a 1 MiB limit"


@pytest.mark.parametrize("name", CODECS)
def test_truncated_is_internal(name: str) -> None:
    packed = compress(name, bytes(range(256)) * 16)
    for cut in (1, len(packed) // 2, len(packed) - 1):
        with pytest.raises(ProtocolError) as info:
            decompress(name, packed[:cut], None)
        assert info.value.code is StatusCode.INTERNAL
        with pytest.raises(ProtocolError):
            decompress(name, packed[:cut], 10**6)


@pytest.mark.parametrize("name", CODECS)
def test_empty_input_is_internal(name: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decompress(name, b"", None)
    assert info.value.code is StatusCode.INTERNAL


@pytest.mark.parametrize("name", CODECS)
def test_corrupt_is_internal(name: str) -> None:
    packed = bytearray(compress(name, b"some text that compresses " * 20))
    packed[len(packed) // 2] ^= 0xFF
    packed[-1] ^= 0xFF  # the checksum, at least, no longer matches
    with pytest.raises(ProtocolError) as info:
        decompress(name, bytes(packed), None)
    assert info.value.code is StatusCode.INTERNAL


@pytest.mark.parametrize("name", CODECS)
@pytest.mark.parametrize("limit", [None, 10**6])
def test_trailing_garbage_is_internal(name: str, limit: int | None) -> None:
    """Bytes after the end of the compressed stream are an error, as grpc-core's inflate."""
    packed = compress(name, b"hello")
    for extra in (b"junk", packed):
        with pytest.raises(ProtocolError) as info:
            decompress(name, packed + extra, limit)
        assert info.value.code is StatusCode.INTERNAL


def test_gzip_data_under_deflate_is_internal() -> None:
    with pytest.raises(ProtocolError) as info:
        decompress(DEFLATE, compress(GZIP, b"x"), None)
    assert info.value.code is StatusCode.INTERNAL


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(CODECS),
    data=st.binary(max_size=200),
    limit=st.sampled_from([None, 0, 100]),
)
def test_garbage_raises_only_protocol_error(name: str, data: bytes, limit: int | None) -> None:
    result = outcome(decompress, name, data, limit)
    if isinstance(result, ProtocolError):
        assert result.code in (StatusCode.INTERNAL, StatusCode.RESOURCE_EXHAUSTED)
    else:
        assert limit is None or len(result) <= limit


@pytest.mark.parametrize("name", ["identity", "snappy", "", "GZIP"])
def test_unknown_or_identity_encoding(name: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decompress(name, b"\x00", None)
    assert info.value.code is StatusCode.INTERNAL
    with pytest.raises(ProtocolError) as info:
        compress(name, b"\x00")
    assert info.value.code is StatusCode.INTERNAL


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, {"identity"}),
        (b"", {"identity"}),
        ("", {"identity"}),
        (b"gzip", {"gzip", "identity"}),
        (b"identity,deflate,gzip", {"identity", "deflate", "gzip"}),
        (b"gzip, deflate", {"gzip", "deflate", "identity"}),
        ("deflate ,  snappy", {"deflate", "snappy", "identity"}),
        (b"gzip,,deflate,", {"gzip", "deflate", "identity"}),
        (b" , ", {"identity"}),
    ],
)
def test_parse_accept_encoding(header: bytes | str | None, expected: set[str]) -> None:
    assert parse_accept_encoding(header) == frozenset(expected)


def test_choose() -> None:
    accepted = parse_accept_encoding(b"deflate")
    assert choose([GZIP, DEFLATE], accepted) == DEFLATE
    assert choose([GZIP], accepted) == IDENTITY
    assert choose([], accepted) == IDENTITY
