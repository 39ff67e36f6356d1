"""gRPC-Web wire helpers for the tests: request bodies, and responses parsed by hand."""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field
from typing import Any

from tests.web.servicer import pb2

WEB_TYPES = [
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web-text",
    "application/grpc-web-text+proto",
]


def frame(payload: bytes, flag: int = 0) -> bytes:
    return struct.pack(">BI", flag, len(payload)) + payload


def request_body(content_type: str, *messages: Any) -> bytes:
    body = b"".join(frame(m.SerializeToString()) for m in messages)
    return base64.b64encode(body) if "-text" in content_type else body


def b64_stream_decode(text: bytes) -> bytes:
    """Decode base64 that may hold padding between chunks (as PROTOCOL-WEB.md allows)."""
    quads = (text[i : i + 4] for i in range(0, len(text), 4))
    return b"".join(base64.b64decode(quad, validate=True) for quad in quads)


@dataclass
class WebResponse:
    messages: list[bytes] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)
    trailer_frames: int = 0


def parse_body(content_type: str, body: bytes) -> WebResponse:
    """Split a gRPC-Web response body into messages and the trailer frame (which must be last)."""
    if "-text" in content_type:
        body = b64_stream_decode(body)
    out = WebResponse()
    offset = 0
    while offset < len(body):
        flag, length = struct.unpack_from(">BI", body, offset)
        payload = body[offset + 5 : offset + 5 + length]
        assert len(payload) == length, "truncated frame"
        offset += 5 + length
        assert out.trailer_frames == 0, "a frame after the trailers"
        if flag & 0x80:
            out.trailer_frames += 1
            for line in payload.decode("latin-1").split("\r\n"):
                if line:
                    name, _, value = line.partition(":")
                    out.trailers[name.strip()] = value.strip()
        else:
            assert flag == 0, flag
            out.messages.append(payload)
    return out


def echo(payload: bytes) -> Any:
    return pb2.EchoResponse.FromString(payload)
