"""gRPC-Web's wire differences from gRPC (grpc/grpc doc/PROTOCOL-WEB.md), sans-IO.

- Content types ``application/grpc-web[+codec]`` (binary) and ``application/grpc-web-text``
  (the same byte stream, base64-encoded). A text stream may carry base64 padding mid-stream: the
  writer may flush padded chunks (we pad per frame), so readers decode 4-character groups.
- The status and trailing metadata travel in the body, as the last frame: flag ``0x80``, then an
  HTTP/1-style header block (``name: value\\r\\n`` lines, lower-case names). Trailers-only
  responses put them in the response headers instead, with an empty body.

Server (``asgi_grpc.server._web``) and client (``asgi_grpc.client._web``) both use these.
"""

from __future__ import annotations

import struct
from base64 import b64decode

from ._errors import ProtocolError
from ._status import StatusCode

WEB_CONTENT_TYPE = b"application/grpc-web"
TEXT_CONTENT_TYPE = b"application/grpc-web-text"
TRAILER_FLAG = 0x80
# What a peer may make us hold for one trailer block (grpc's default metadata limits are far
# below this; it only stops a hostile length prefix from buffering without bound).
MAX_TRAILER_BLOCK = 1024 * 1024
_HEADER = struct.Struct(">BI")
_WHITESPACE = (b"\r", b"\n", b" ", b"\t")

Headers = list[tuple[bytes, bytes]]


def is_grpc_web_content_type(value: bytes | None) -> bool:
    """``application/grpc-web`` or ``-text``, optionally ``+<codec>`` or ``;params``."""
    if value is None or not value.startswith(WEB_CONTENT_TYPE):
        return False
    rest = value[len(WEB_CONTENT_TYPE) :]
    if rest.startswith(b"-text"):
        rest = rest[5:]
    return not rest or rest[:1] in (b"+", b";")


def is_text(content_type: bytes) -> bool:
    return content_type.startswith(TEXT_CONTENT_TYPE)


def trailer_frame(trailers: Headers) -> bytes:
    """The body frame that carries ``trailers`` (never compressed)."""
    block = b"".join([name.lower() + b": " + value + b"\r\n" for name, value in trailers])
    return _HEADER.pack(TRAILER_FLAG, len(block)) + block


def parse_trailer_block(block: bytes) -> Headers:
    """``name: value\\r\\n`` lines into header pairs (names lower-cased, values stripped)."""
    headers: Headers = []
    for line in block.split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise ProtocolError(StatusCode.INTERNAL, f"malformed gRPC-Web trailer line {line!r}")
        headers.append((name.strip().lower(), value.strip()))
    return headers


class Base64Decoder:
    """Incremental base64 decoding of a grpc-web-text body, chunked anyhow, padding allowed
    between chunks. Holds at most 3 characters between calls."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + bytes(chunk) if self._pending else bytes(chunk)
        if any(c in data for c in _WHITESPACE):
            data = b"".join(data.split())
        whole = len(data) & ~3
        self._pending = data[whole:]
        data = data[:whole]
        try:
            if b"=" not in data[:-4]:  # padding (if any) only at the end: one decode
                return b64decode(data, validate=True)
            return b"".join([b64decode(data[i : i + 4], validate=True) for i in range(0, whole, 4)])
        except ValueError as exc:  # binascii.Error
            raise ProtocolError(
                StatusCode.INTERNAL, f"grpc-web-text body is not valid base64: {exc}"
            ) from None

    def close(self) -> None:
        """The body ended: characters short of a 4-character group are an error."""
        if self._pending:
            left, self._pending = len(self._pending), b""
            raise ProtocolError(
                StatusCode.INTERNAL,
                f"grpc-web-text body is not whole base64 ({left} characters left over)",
            )


class ResponseBodyReader:
    """Splits a gRPC-Web response body into the gRPC message bytes (frames passed through as
    they are, for the ordinary :class:`MessageReader`) and the trailer frame.

    :meth:`feed` returns the message bytes a chunk holds; :attr:`trailers` is set once the
    trailer frame is complete. Anything after the trailer frame is a protocol error.
    """

    __slots__ = ("_block", "_block_length", "_header", "_in_message", "trailers")

    def __init__(self) -> None:
        self._header = b""  # a frame prefix not yet complete
        self._in_message = 0  # bytes of a message frame's payload still to pass through
        self._block_length = -1  # the trailer block's length, once its prefix is read
        self._block = bytearray()
        self.trailers: Headers | None = None

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        offset, end = 0, len(data)
        while offset < end:
            if self.trailers is not None:
                raise ProtocolError(StatusCode.INTERNAL, "gRPC-Web data after the trailers")
            if self._in_message:
                take = min(self._in_message, end - offset)
                out.append(data[offset : offset + take])
                offset += take
                self._in_message -= take
                continue
            if self._block_length >= 0:
                take = min(self._block_length - len(self._block), end - offset)
                self._block += data[offset : offset + take]
                offset += take
                if len(self._block) == self._block_length:
                    self.trailers = parse_trailer_block(bytes(self._block))
                continue
            take = min(5 - len(self._header), end - offset)
            self._header += data[offset : offset + take]
            offset += take
            if len(self._header) < 5:
                continue
            flag, length = _HEADER.unpack(self._header)
            if flag & TRAILER_FLAG:
                if flag != TRAILER_FLAG:
                    raise ProtocolError(
                        StatusCode.INTERNAL, "compressed gRPC-Web trailers are not supported"
                    )
                if length > MAX_TRAILER_BLOCK:
                    raise ProtocolError(
                        StatusCode.INTERNAL, f"gRPC-Web trailers too large ({length} bytes)"
                    )
                self._block_length = length
                if length == 0:
                    self.trailers = []
            else:
                out.append(self._header)  # the message reader checks flag and length
                self._in_message = length
            self._header = b""
        return b"".join(out) if len(out) != 1 else out[0]

    @property
    def complete(self) -> bool:
        """At a frame boundary (the body may end here)."""
        return (
            not self._header
            and not self._in_message
            and (self._block_length < 0 or self.trailers is not None)
        )
