"""The header sets of a gRPC call (PROTOCOL-HTTP2.md): request, response headers, trailers.

Pure functions over ``(name, value)`` byte pairs, as h2 and ASGI carry them. Server and client
both build and parse through here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._compression import ACCEPT_ENCODING, IDENTITY, parse_accept_encoding
from ._errors import ProtocolError
from ._metadata import Metadata, MetadataLike, decode_metadata, encode_metadata
from ._status import StatusCode, decode_message, encode_message, status_from_wire, status_to_wire
from ._timeout import decode_timeout, encode_timeout

Headers = list[tuple[bytes, bytes]]

CONTENT_TYPE = b"application/grpc"
STATUS_DETAILS_KEY = "grpc-status-details-bin"


def is_grpc_content_type(value: bytes | None) -> bool:
    """``application/grpc`` or ``application/grpc+<codec>`` / ``;params``."""
    if value is None or not value.startswith(CONTENT_TYPE):
        return False
    rest = value[len(CONTENT_TYPE) :]
    return not rest or rest[:1] in (b"+", b";")


@dataclass(frozen=True, slots=True)
class RequestHead:
    """What a server needs from request headers, already validated."""

    timeout: float | None
    encoding: str
    accept_encoding: frozenset[str]
    metadata: Metadata
    authority: str | None
    user_agent: str | None


def parse_request_headers(headers: Headers) -> RequestHead:
    """Validate the gRPC parts of request headers (content type is checked by the caller)."""
    timeout: float | None = None
    encoding = IDENTITY
    accept: bytes | None = None
    authority: str | None = None
    user_agent: str | None = None
    for name, value in headers:
        if name == b"grpc-timeout":
            timeout = decode_timeout(value)
        elif name == b"grpc-encoding":
            encoding = value.decode("latin-1").strip()
        elif name == b"grpc-accept-encoding":
            accept = value
        elif name == b"host" or name == b":authority":
            authority = value.decode("latin-1")
        elif name == b"user-agent":
            user_agent = value.decode("latin-1")
    return RequestHead(
        timeout=timeout,
        encoding=encoding,
        accept_encoding=parse_accept_encoding(accept),
        metadata=decode_metadata(headers),
        authority=authority,
        user_agent=user_agent,
    )


def request_headers(
    *,
    timeout: float | None,
    encoding: str,
    metadata: MetadataLike,
    user_agent: bytes,
) -> Headers:
    """The non-pseudo request headers of a call."""
    headers: Headers = [
        (b"content-type", CONTENT_TYPE),
        (b"te", b"trailers"),
        (b"user-agent", user_agent),
        (b"grpc-accept-encoding", ACCEPT_ENCODING),
    ]
    if encoding != IDENTITY:
        headers.append((b"grpc-encoding", encoding.encode("ascii")))
    if timeout is not None:
        headers.append((b"grpc-timeout", encode_timeout(timeout).encode("ascii")))
    headers += encode_metadata(metadata)
    return headers


def response_headers(encoding: str, metadata: MetadataLike = None) -> Headers:
    """Initial response headers: content type, negotiated encoding, initial metadata."""
    headers: Headers = [
        (b"content-type", CONTENT_TYPE),
        (b"grpc-accept-encoding", ACCEPT_ENCODING),
    ]
    if encoding != IDENTITY:
        headers.append((b"grpc-encoding", encoding.encode("ascii")))
    if metadata:
        headers += encode_metadata(metadata)
    return headers


def trailers(code: StatusCode, message: str | None, metadata: MetadataLike = None) -> Headers:
    """The trailers that end a call. Invalid trailing metadata becomes an INTERNAL status."""
    try:
        user = encode_metadata(metadata) if metadata else []
    except (ValueError, TypeError) as exc:
        code, message, user = StatusCode.INTERNAL, f"invalid trailing metadata: {exc}", []
    headers: Headers = [(b"grpc-status", status_to_wire(code))]
    if message:
        headers.append((b"grpc-message", encode_message(message)))
    headers += user
    return headers


@dataclass(frozen=True, slots=True)
class Status:
    """A call's outcome as read from trailers."""

    code: StatusCode
    details: str
    metadata: Metadata


def parse_trailers(headers: Headers) -> Status:
    """Status, message and trailing metadata; a missing ``grpc-status`` is UNKNOWN."""
    status: bytes | None = None
    message = b""
    for name, value in headers:
        if name == b"grpc-status":
            status = value
        elif name == b"grpc-message":
            message = value
    if status is None:
        return Status(
            code=StatusCode.UNKNOWN,
            details="missing grpc-status in trailers",
            metadata=decode_metadata(headers),
        )
    return Status(
        code=status_from_wire(status),
        details=decode_message(message),
        metadata=decode_metadata(headers),
    )


__all__ = [
    "CONTENT_TYPE",
    "STATUS_DETAILS_KEY",
    "Headers",
    "ProtocolError",
    "RequestHead",
    "Status",
    "is_grpc_content_type",
    "parse_request_headers",
    "parse_trailers",
    "request_headers",
    "response_headers",
    "trailers",
]
