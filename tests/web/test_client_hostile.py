"""The gRPC-Web client against a server that answers wrongly: each call ends at once with the
status that says what went wrong (never a hang, never a crash)."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

import asgi_grpc
from tests.web.support import frame

GOOD = frame(b"\x0a\x02hi")
TRAILERS = b"grpc-status: 0\r\n"
OK_TRAILER = struct.pack(">BI", 0x80, len(TRAILERS)) + TRAILERS

# method -> (HTTP status, content type, body, expected code, words in the details)
ANSWERS: dict[str, tuple[int, bytes, bytes, str, str]] = {
    "Truncated": (200, b"application/grpc-web", GOOD[:-1], "INTERNAL", "middle of a frame"),
    "NoTrailers": (200, b"application/grpc-web", GOOD, "UNKNOWN", "missing grpc-status"),
    "BadBase64": (200, b"application/grpc-web-text", b"!!!!", "INTERNAL", "base64"),
    "CutBase64": (200, b"application/grpc-web-text", b"AAAAA", "INTERNAL", "left over"),
    "AfterTrailers": (200, b"application/grpc-web", OK_TRAILER + GOOD, "INTERNAL", "after"),
    "CompressedTrailers": (200, b"application/grpc-web", b"\x81" + OK_TRAILER[1:], "INTERNAL", ""),
    "HugeTrailers": (
        200,
        b"application/grpc-web",
        struct.pack(">BI", 0x80, 1 << 31),
        "INTERNAL",
        "too large",
    ),
    "HugeMessage": (
        200,
        b"application/grpc-web",
        struct.pack(">BI", 0, 100 << 20),
        "RESOURCE_EXHAUSTED",
        "larger than max",
    ),
    "BadTrailerLine": (
        200,
        b"application/grpc-web",
        struct.pack(">BI", 0x80, 8) + b"nocolon\n",
        "INTERNAL",
        "malformed",
    ),
    "Unavailable": (503, b"text/plain", b"busy", "UNAVAILABLE", ""),
    "Html": (200, b"text/html", b"<html>", "UNKNOWN", "content-type"),
}


async def hostile(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    status, content_type, body, _, _ = ANSWERS[scope["path"].rsplit("/", 1)[1]]
    headers = [(b"content-type", content_type)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def target() -> AsyncIterator[str]:
    # gRPC-Web off in the GrpcApp: the hostile fallback answers the gRPC-Web calls.
    server = asgi_grpc.aio.server(options=[("asgi_grpc.grpc_web", False)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.app.fallback = hostile
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@pytest.mark.parametrize("mode", [True, "text"])
@pytest.mark.parametrize("method", ANSWERS)
async def test_wrong_answers(target: str, method: str, mode: Any) -> None:
    _, _, _, code, words = ANSWERS[method]
    async with asgi_grpc.aio.insecure_channel(
        target, options=[("asgi_grpc.grpc_web", mode)]
    ) as channel:
        for call in (
            channel.unary_unary(f"/h.S/{method}")(b"", timeout=10),
            channel.unary_stream(f"/h.S/{method}")(b"", timeout=10),
        ):
            with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
                async for _ in call if hasattr(call, "__aiter__") else _once(call):
                    pass
            assert info.value.code().name == code, info.value
            assert words in info.value.details()


async def _once(call: Any) -> AsyncIterator[Any]:
    yield await call
