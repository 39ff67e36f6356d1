"""Custom metadata (PROTOCOL-HTTP2.md, "Custom-Metadata").

Keys are lowercase ``[0-9a-z_.-]``; values of keys ending in ``-bin`` are bytes, sent base64
(unpadded), and all others are printable ASCII strings. Headers the protocol itself uses are
never exposed to applications as metadata, nor accepted from them.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import OrderedDict
from collections.abc import Collection, ItemsView, Iterable, Iterator, KeysView, ValuesView
from typing import Any, Union

from ._errors import ProtocolError
from ._status import StatusCode

MetadataKey = str
MetadataValue = str | bytes
Metadatum = tuple[MetadataKey, MetadataValue]
MetadataLike = Union["Metadata", Iterable[tuple[str, Any]], None]

# Headers that belong to the protocol or HTTP/2 itself: never user metadata, in either direction.
RESERVED = frozenset(
    (
        "content-type",
        "te",
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "grpc-timeout",
        "grpc-encoding",
        "grpc-accept-encoding",
        "grpc-status",
        "grpc-message",
        "grpc-previous-rpc-attempts",
        "grpc-internal-encoding-request",
    )
)
# Retry metadata (gRFC A6) is the application's to see, as in grpcio: a server reads
# grpc-previous-rpc-attempts, a client grpc-retry-pushback-ms, which a server may also set.
_RESERVED_BYTES = frozenset(key.encode() for key in RESERVED if key != "grpc-previous-rpc-attempts")
_KEY = re.compile(r"[0-9a-z_.\-]+\Z")
_ASCII_VALUE = re.compile(rb"[\x20-\x7e]*\Z")


class Metadata(Collection[Metadatum]):
    """grpc.aio.Metadata: an ordered multi-map of str keys to str or bytes values.

    ``md[key]`` is the first value for ``key``; ``get_all`` gives every value; iteration yields
    ``(key, value)`` pairs in order; equality with a tuple of pairs works as in grpc.aio.
    """

    __slots__ = ("_metadata",)

    def __init__(self, *args: Metadatum) -> None:
        self._metadata: OrderedDict[MetadataKey, list[MetadataValue]] = OrderedDict()
        for key, value in args:
            self.add(key, value)

    @classmethod
    def from_tuple(cls, raw_metadata: Iterable[Metadatum] | None) -> Metadata:
        return cls(*raw_metadata) if raw_metadata else cls()

    def add(self, key: MetadataKey, value: MetadataValue) -> None:
        self._metadata.setdefault(key, []).append(value)

    def __len__(self) -> int:
        return sum(map(len, self._metadata.values()))

    def __getitem__(self, key: MetadataKey) -> MetadataValue:
        # KeyError(key) for a missing key, KeyError(repr(key)) for an emptied one: as grpc.aio.
        values = self._metadata[key]
        if not values:
            raise KeyError(repr(key))
        return values[0]

    def __setitem__(self, key: MetadataKey, value: MetadataValue) -> None:
        # A new list, as grpc.aio: a list handed out by get_all() or given to set_all() is the
        # caller's and must not change under it.
        self._metadata[key] = [value, *self._metadata.get(key, ())[1:]]

    def __delitem__(self, key: MetadataKey) -> None:
        values = self._metadata.get(key)
        if not values:
            raise KeyError(repr(key))
        del values[0]
        if not values:
            del self._metadata[key]

    def delete_all(self, key: MetadataKey) -> None:
        del self._metadata[key]

    def __iter__(self) -> Iterator[Metadatum]:
        for key, values in self._metadata.items():
            for value in values:
                yield (key, value)

    def keys(self) -> KeysView[MetadataKey]:
        return KeysView(self._metadata)

    def values(self) -> ValuesView[list[MetadataValue]]:
        return ValuesView(self._metadata)

    def items(self) -> ItemsView[MetadataKey, list[MetadataValue]]:
        return ItemsView(self._metadata)

    def get(self, key: MetadataKey, default: MetadataValue | None = None) -> MetadataValue | None:
        values = self._metadata.get(key)
        return values[0] if values else default

    def get_all(self, key: MetadataKey) -> list[MetadataValue]:
        return self._metadata.get(key, [])

    def set_all(self, key: MetadataKey, values: list[MetadataValue]) -> None:
        self._metadata[key] = values

    def __contains__(self, key: object) -> bool:
        # Non-str keys (even unhashable ones) are simply absent, as in grpc.aio.
        return isinstance(key, str) and key in self._metadata

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Metadata):
            return self._metadata == other._metadata
        if isinstance(other, tuple):
            return tuple(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Any) -> Metadata:
        if isinstance(other, (Metadata, tuple, list)):
            return Metadata(*self, *other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"{type(self).__name__}({tuple(self)!r})"


def to_metadata(metadata: Any) -> Metadata:
    """The ``metadata`` argument of a call (or of ``set_trailing_metadata``) as a Metadata.

    None or empty gives an empty Metadata; a Metadata is returned as it is (once checked);
    anything else must be an iterable of ``(key, value)`` pairs, checked as
    :func:`checked_metadata` checks them, and copied.
    """
    if not metadata:
        return Metadata()
    if isinstance(metadata, Metadata):
        for _ in _checked(metadata):
            pass
        return metadata
    result = Metadata()
    add = result.add
    for key, value in _checked(metadata):
        add(key, value)
    return result


def checked_metadata(metadata: Any) -> tuple[Metadatum, ...] | None:
    """``metadata`` as a call sends it, checked as grpcio checks it before anything is sent.

    TypeError for a non-iterable, a key that is not str or bytes, or a value that is not str
    or bytes (None is an empty value, except for -bin keys); ValueError for a pair of the wrong
    length. Bytes keys come back decoded. Whether keys and values are valid on the wire is
    :func:`encode_metadata`'s concern.
    """
    return tuple(_checked(metadata)) if metadata else None


def _checked(metadata: Any) -> Iterator[tuple[str, MetadataValue]]:
    try:
        pairs = iter(metadata)
    except TypeError:
        raise TypeError(
            f"metadata must be a sequence of (key, value) pairs, not {type(metadata).__name__}"
        ) from None
    for key, value in pairs:
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        elif not isinstance(key, str):
            raise TypeError(f"metadata key must be str or bytes, not {type(key).__name__}")
        if value is None and not key.endswith("-bin"):
            value = ""  # grpcio sends None as an empty value (a -bin key wants bytes)
        elif not isinstance(value, (str, bytes)):
            raise TypeError(
                f"metadata value of {key!r} must be str or bytes, not {type(value).__name__}"
            )
        yield key, value


def validate_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(
            f"metadata key {key!r} is invalid: keys are lowercase ASCII letters, digits, "
            "'-', '_' and '.'"
        )
    if key in RESERVED:
        raise ValueError(f"metadata key {key!r} is reserved for the gRPC protocol")


def encode_metadata(metadata: MetadataLike) -> list[tuple[bytes, bytes]]:
    """Application metadata as HTTP/2 header pairs; raises ValueError on invalid entries."""
    headers: list[tuple[bytes, bytes]] = []
    if not metadata:
        return headers
    for key, value in metadata:
        if isinstance(key, bytes):  # grpcio takes bytes keys as they are
            key = key.decode("latin-1")
        validate_key(key)
        if key.endswith("-bin"):
            if isinstance(value, str):
                value = value.encode("utf-8")
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise TypeError(f"metadata {key!r} wants bytes, got {type(value).__name__}")
            encoded = base64.b64encode(value).rstrip(b"=")
        else:
            if isinstance(value, bytes):
                encoded = value
            elif isinstance(value, str):
                try:
                    encoded = value.encode("ascii")
                except UnicodeEncodeError:
                    raise ValueError(
                        f"metadata value for {key!r} must be printable ASCII: {value!r}"
                    ) from None
            else:
                raise TypeError(f"metadata {key!r} wants str, got {type(value).__name__}")
            if not _ASCII_VALUE.match(encoded):
                raise ValueError(f"metadata value for {key!r} must be printable ASCII: {value!r}")
        headers.append((key.encode("ascii"), encoded))
    return headers


def decode_bin(value: bytes) -> bytes:
    """Base64 with or without padding, as peers send both."""
    try:
        return base64.b64decode(value + b"=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(StatusCode.INTERNAL, f"invalid base64 in binary metadata {value!r}")


def decode_metadata(headers: Iterable[tuple[bytes, bytes]]) -> Metadata:
    """User metadata from received headers: pseudo and reserved headers are skipped.

    A ``-bin`` value that is not base64 is a protocol error (INTERNAL).
    """
    metadata = Metadata()
    add = metadata.add
    for name, value in headers:
        if name[:1] == b":" or name in _RESERVED_BYTES:
            continue
        key = name.decode("latin-1")
        if key.endswith("-bin"):
            # A comma joins repeated binary headers folded by a proxy.
            for part in value.split(b","):
                add(key, decode_bin(part.strip()))
        else:
            add(key, value.decode("latin-1"))
    return metadata
