"""One message in, one message out: serialize, bound, compress and frame, and the reverse.

Serializers are whatever the caller registered (protobuf's, or None for raw bytes); their
failures become protocol errors here, once, for server and client alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._compression import IDENTITY, compress, decompress
from ._errors import ProtocolError
from ._framing import prefix, too_large
from ._status import StatusCode


def pack_message(
    message: Any,
    serializer: Callable[[Any], bytes] | None,
    encoding: str,
    max_length: int | None,
    *,
    compressed: bool = True,
) -> bytes:
    """A framed message: serialized, checked against ``max_length``, compressed with
    ``encoding`` unless that is identity or ``compressed`` is false."""
    head, payload = pack_message_parts(
        message, serializer, encoding, max_length, compressed=compressed
    )
    return head + payload


def pack_message_parts(
    message: Any,
    serializer: Callable[[Any], bytes] | None,
    encoding: str,
    max_length: int | None,
    *,
    compressed: bool = True,
) -> tuple[bytes, bytes]:
    """:func:`pack_message` as its 5-byte prefix and its payload, for a caller that can send
    them apart without copying a large payload into one framed message."""
    data = message if serializer is None else serializer(message)
    if max_length is not None and len(data) > max_length:
        raise too_large("Sent", len(data), max_length)
    if compressed and encoding != IDENTITY:
        data = compress(encoding, data)
        return prefix(len(data), True), data
    return prefix(len(data)), data


def unpack_message(
    compressed: bool,
    payload: bytes,
    encoding: str,
    max_length: int | None,
    deserializer: Callable[[bytes], Any] | None,
) -> Any:
    """A received message's value: decompressed (within ``max_length``) and deserialized."""
    if compressed:
        if encoding == IDENTITY:
            raise ProtocolError(
                StatusCode.INTERNAL, "Compressed message received without a grpc-encoding"
            )
        payload = decompress(encoding, payload, max_length)
    if deserializer is None:
        return payload
    try:
        return deserializer(payload)
    except Exception as exc:
        raise ProtocolError(StatusCode.INTERNAL, f"Failed to deserialize message: {exc}") from exc
