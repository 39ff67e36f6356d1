"""The body-parts extension (server/_types.py ``BODY_PARTS_EXTENSION``): an app that marks it gets
a request body as the pieces its large DATA frames came in (bytes, or views of immutable bytes),
which gRPC's unary request reader joins once per message; an app that does not gets ``body``
bytes, as before. Against a real Hypercorn with our protocol, grpcio as the client (its 1 MiB
messages come in DATA frames of hundreds of KiB)."""

from __future__ import annotations

import hashlib
from typing import Any

import grpc
import pytest

from asgi_grpc import method_handlers_generic_handler, unary_unary_rpc_method_handler
from asgi_grpc.server import GrpcApp
from asgi_grpc.server._types import BODY_PARTS_EXTENSION

from .helpers import grpc_messages, read_body, respond, serve

MiB = 1024 * 1024


async def parts_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers with what it received: the body's digest, and for /test/Parts (which marks the
    extension) the kinds of pieces it came in."""
    kinds: set[str] = set()
    if scope["path"] == "/test/Parts":
        offer = scope["extensions"][BODY_PARTS_EXTENSION]
        assert offer["owner"] == id(receive.__self__)  # no middleware in between
        offer["wanted"] = True
        body = bytearray()
        while True:
            event = await receive()
            assert event["type"] == "http.request"
            assert event["body"] == b""
            for part in event.get(BODY_PARTS_EXTENSION, ()):
                kinds.add(type(part).__name__)
                if type(part) is memoryview:
                    kinds.add("of " + type(part.obj).__name__)
                body += part
            if not event["more_body"]:
                break
    else:
        body = bytearray(await read_body(receive))
    (message,) = grpc_messages(bytes(body))
    summary = hashlib.sha256(message).hexdigest() + " " + ",".join(sorted(kinds))
    await respond(send, [summary.encode()])


@pytest.mark.parametrize("path", ["/test/Parts", "/test/Body"])
async def test_large_request_as_parts_or_as_body(path: str) -> None:
    request = bytes(range(256)) * (4 * 1024)  # 1 MiB
    async with serve(parts_app) as server, grpc.aio.insecure_channel(server.target) as channel:
        reply = await channel.unary_unary(path)(request, timeout=30)
    digest, _, kinds = reply.decode().partition(" ")
    assert digest == hashlib.sha256(request).hexdigest()
    if path == "/test/Parts":
        assert "memoryview" in kinds.split(",")  # pieces of the reads, not joined
        assert "of bytearray" not in kinds.split(",")  # never views of a mutable buffer
    else:
        assert kinds == ""


def rebuilding(app: Any) -> Any:
    """A middleware whose receive rebuilds each request event from its ``body`` (as one that
    decompresses or limits bodies would): it must get the body joined, not empty."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        async def rebuilt() -> Any:
            event = await receive()
            if event["type"] != "http.request":
                return event
            return {"type": "http.request", "body": event["body"], "more_body": event["more_body"]}

        await app(scope, rebuilt, send)

    return middleware


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "behind-middleware"])
async def test_grpc_app_large_unary_request(wrapped: bool) -> None:
    async def echo(request: bytes, context: Any) -> bytes:
        return hashlib.sha256(request).digest()

    app = GrpcApp()
    app.add_generic_rpc_handlers(
        (method_handlers_generic_handler("t.T", {"U": unary_unary_rpc_method_handler(echo)}),)
    )
    request = bytes(range(256)) * (4 * 1024)  # 1 MiB: DATA frames of hundreds of KiB
    served = rebuilding(app) if wrapped else app
    async with serve(served) as server, grpc.aio.insecure_channel(server.target) as channel:
        reply = await channel.unary_unary("/t.T/U")(request, timeout=30)
    assert reply == hashlib.sha256(request).digest()
