"""Status codes, the ``grpc-message`` encoding (PROTOCOL-HTTP2.md, "Responses"), and the status
a client infers from an HTTP response without ``grpc-status`` (doc/http-grpc-status-mapping.md)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any


@enum.unique
class StatusCode(enum.Enum):
    """gRPC status codes; members and values are exactly ``grpc.StatusCode``'s.

    The values are ``(int, str)`` like grpcio's, so ``StatusCode(grpc.StatusCode.X.value)`` maps a
    grpcio member onto ours, and code written against grpcio compares equal by value.
    """

    OK = (0, "ok")
    CANCELLED = (1, "cancelled")
    UNKNOWN = (2, "unknown")
    INVALID_ARGUMENT = (3, "invalid argument")
    DEADLINE_EXCEEDED = (4, "deadline exceeded")
    NOT_FOUND = (5, "not found")
    ALREADY_EXISTS = (6, "already exists")
    PERMISSION_DENIED = (7, "permission denied")
    RESOURCE_EXHAUSTED = (8, "resource exhausted")
    FAILED_PRECONDITION = (9, "failed precondition")
    ABORTED = (10, "aborted")
    OUT_OF_RANGE = (11, "out of range")
    UNIMPLEMENTED = (12, "unimplemented")
    INTERNAL = (13, "internal")
    UNAVAILABLE = (14, "unavailable")
    DATA_LOSS = (15, "data loss")
    UNAUTHENTICATED = (16, "unauthenticated")


_BY_INT: dict[int, StatusCode] = {member.value[0]: member for member in StatusCode}
_WIRE: dict[StatusCode, bytes] = {member: b"%d" % member.value[0] for member in StatusCode}


def status_from_int(value: int) -> StatusCode:
    """The status for a wire code; codes outside 0-16 are UNKNOWN, as the spec asks."""
    return _BY_INT.get(value, StatusCode.UNKNOWN)


def status_to_wire(code: StatusCode) -> bytes:
    """The ``grpc-status`` header value for ``code`` (grpcio's ``grpc.StatusCode`` works too)."""
    wire = _WIRE.get(code)
    # Application code written for grpcio passes grpc.StatusCode members.
    return _WIRE[coerce_status(code)] if wire is None else wire


def status_from_wire(value: bytes | None) -> StatusCode:
    """Parse a ``grpc-status`` value; a missing or malformed one is UNKNOWN."""
    if value is None or not value.isdigit() or len(value) > 3:
        return StatusCode.UNKNOWN
    return status_from_int(int(value))


def coerce_status(code: Any) -> StatusCode:
    """Accept our StatusCode, grpcio's ``grpc.StatusCode`` (same values), or a wire int."""
    if isinstance(code, StatusCode):
        return code
    if isinstance(code, int):
        return status_from_int(code)
    value = getattr(code, "value", None)
    if isinstance(value, tuple) and value and isinstance(value[0], int):
        return status_from_int(value[0])
    raise TypeError(f"expected a grpc StatusCode, got {code!r}")


# grpc-message: UTF-8, then percent-encode every byte outside 0x20-0x7E and '%' itself.
_UNRESERVED = frozenset(range(0x20, 0x7F)) - {ord("%")}
_HEX = b"0123456789ABCDEF"


def encode_message(message: str) -> bytes:
    """Percent-encode a status message for the ``grpc-message`` trailer.

    A leading or trailing space is encoded too (``%20``, which the spec's grammar allows): an
    HTTP/2 field value must not start or end with whitespace (RFC 9113 8.2.1), so h2 strips it
    when sending and rejects it as a protocol error when receiving.
    """
    raw = message.encode("utf-8", "surrogatepass")
    last = len(raw) - 1
    if all(byte in _UNRESERVED for byte in raw) and raw[:1] != b" " and raw[-1:] != b" ":
        return raw
    out = bytearray()
    for i, byte in enumerate(raw):
        if byte in _UNRESERVED and not (byte == 0x20 and (i == 0 or i == last)):
            out.append(byte)
        else:
            out += b"%" + _HEX[byte >> 4 : (byte >> 4) + 1] + _HEX[byte & 15 : (byte & 15) + 1]
    return bytes(out)


def decode_message(value: bytes) -> str:
    """Decode ``grpc-message``; malformed escapes are kept literally, as the spec asks."""
    if b"%" not in value:
        return value.decode("utf-8", "replace")
    out = bytearray()
    i, n = 0, len(value)
    while i < n:
        byte = value[i]
        if byte == 0x25 and i + 2 < n and _is_hex(value[i + 1]) and _is_hex(value[i + 2]):
            out.append(int(value[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(byte)
            i += 1
    return out.decode("utf-8", "replace")


def _is_hex(byte: int) -> bool:
    return byte in b"0123456789abcdefABCDEF"


# -- HTTP status -> gRPC status (doc/http-grpc-status-mapping.md), as grpcio maps it ----------

#: ``parse_http_status`` of a ``:status`` that is not three digits.
MALFORMED_HTTP_STATUS = -1

_HTTP_TO_GRPC = {
    400: StatusCode.INTERNAL,
    401: StatusCode.UNAUTHENTICATED,
    403: StatusCode.PERMISSION_DENIED,
    404: StatusCode.UNIMPLEMENTED,
    429: StatusCode.UNAVAILABLE,
    502: StatusCode.UNAVAILABLE,
    503: StatusCode.UNAVAILABLE,
    504: StatusCode.UNAVAILABLE,
    MALFORMED_HTTP_STATUS: StatusCode.INTERNAL,
}


def parse_http_status(value: bytes | None) -> int:
    """A response's ``:status``: 0 when missing, :data:`MALFORMED_HTTP_STATUS` (-1) when it
    is not a number, never an exception. Like grpcio, any decimal number is taken (RFC 9110
    wants three digits; "2000" maps to UNKNOWN like any other status without a mapping)."""
    if value is None:
        return 0
    if not 0 < len(value) <= 9 or not value.isdigit() or not value.isascii():
        return MALFORMED_HTTP_STATUS
    return int(value)


def http_status_to_grpc(status: int) -> StatusCode:
    """The status a client infers from a non-200 HTTP response: 400 INTERNAL, 401
    UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE,
    others UNKNOWN; a malformed ``:status`` is INTERNAL (grpcio: "Error parsing ':status'")."""
    return _HTTP_TO_GRPC.get(status, StatusCode.UNKNOWN)


def http_status_details(status: int) -> str:
    """The status message for an HTTP status that is not 200 (grpcio's wording)."""
    if status == MALFORMED_HTTP_STATUS:
        return "Error parsing ':status' metadata"
    if status == 0:
        return "Received http2 header without :status"
    return f"Received http2 header with status: {status}"


def trailers_only_status(headers: Sequence[tuple[bytes, bytes]]) -> tuple[StatusCode, str] | None:
    """For a trailers-only response (one HEADERS block that ends the stream): the status to
    report when it carries no ``grpc-status``, from its ``:status`` (as grpcio: a 200 without
    ``grpc-status`` is UNKNOWN "No status received"); None when ``grpc-status`` is there."""
    http: bytes | None = None
    for name, value in headers:
        if name == b"grpc-status":
            return None
        if name == b":status":
            http = value
    status = parse_http_status(http)
    if status == 200:
        return StatusCode.UNKNOWN, "No status received"
    return http_status_to_grpc(status), http_status_details(status)
