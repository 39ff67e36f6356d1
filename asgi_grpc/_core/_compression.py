"""Message compression and ``grpc-encoding`` negotiation (doc/compression.md)."""

from __future__ import annotations

import enum
import functools
import zlib
from collections.abc import Iterable

from ._errors import ProtocolError
from ._status import StatusCode


class Compression(enum.IntEnum):
    """grpc.Compression: the algorithm a channel, server or call asks for."""

    NoCompression = 0
    Deflate = 1
    Gzip = 2


IDENTITY = "identity"
GZIP = "gzip"
DEFLATE = "deflate"

_NAMES = {Compression.NoCompression: IDENTITY, Compression.Deflate: DEFLATE, Compression.Gzip: GZIP}
# zlib's wbits: 31 = gzip wrapper, 15 = zlib wrapper (gRPC's "deflate" is RFC 1950 zlib).
_WBITS = {GZIP: 31, DEFLATE: 15}
SUPPORTED = (IDENTITY, DEFLATE, GZIP)
ACCEPT_ENCODING = ",".join(SUPPORTED).encode("ascii")


def encoding_name(compression: Compression | int | None) -> str:
    """The wire name of a grpc.Compression value (None means identity)."""
    if compression is None:
        return IDENTITY
    try:
        return _NAMES[Compression(int(compression))]
    except ValueError:
        raise ValueError(f"unknown compression {compression!r}") from None


def is_supported(name: str) -> bool:
    return name in _WBITS or name == IDENTITY


# Peers send the same value on every call (grpcio: "identity,deflate,gzip"): parsed once. The
# result is immutable, and the few values kept bound what a peer sending many costs.
@functools.lru_cache(maxsize=16)
def parse_accept_encoding(value: bytes | str | None) -> frozenset[str]:
    """The encodings a peer accepts; identity always counts."""
    if not value:
        return frozenset((IDENTITY,))
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return frozenset(part.strip() for part in text.split(",") if part.strip()) | {IDENTITY}


def compress(name: str, data: bytes) -> bytes:
    wbits = _WBITS.get(name)
    if wbits is None:
        raise ProtocolError(StatusCode.INTERNAL, f"cannot compress with {name!r}")
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush()


def decompress(name: str, data: bytes, max_length: int | None) -> bytes:
    """Inflate one message, refusing to grow it past ``max_length`` (a zip bomb stops there)."""
    wbits = _WBITS.get(name)
    if wbits is None:
        raise ProtocolError(StatusCode.INTERNAL, f"compressed message with {name!r} encoding")
    inflater = zlib.decompressobj(wbits)
    try:
        if max_length is None:
            out = inflater.decompress(data)
        else:
            out = inflater.decompress(data, max_length + 1)
            if len(out) > max_length:
                raise ProtocolError(
                    StatusCode.RESOURCE_EXHAUSTED,
                    f"Received message larger than max (over {max_length} bytes decompressed)",
                )
        out += inflater.flush()
    except zlib.error as exc:
        raise ProtocolError(StatusCode.INTERNAL, f"could not decompress {name} message: {exc}")
    if not inflater.eof:
        raise ProtocolError(StatusCode.INTERNAL, f"truncated {name} message")
    if inflater.unused_data:
        # grpc-core fails a message whose inflate leaves input unconsumed (garbage, or a second
        # gzip member): accepting it would let two peers read the same bytes differently.
        raise ProtocolError(
            StatusCode.INTERNAL,
            f"{len(inflater.unused_data)} bytes after the end of a {name} message",
        )
    return out


def choose(preferred: Iterable[str], accepted: frozenset[str]) -> str:
    """The first of ``preferred`` the peer accepts, else identity."""
    for name in preferred:
        if name in accepted:
            return name
    return IDENTITY
