"""Fix c: a handler that does not read its body must not stall the rest of its connection, and
the app's receive() keeps the ASGI contract (chunks in order, then more_body=False; disconnect)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from .helpers import (
    VARIANTS,
    RawH2,
    Receive,
    Scope,
    Send,
    echo_app,
    read_body,
    respond,
    serve,
    stock_config,
)

# Set per test: an asyncio.Event belongs to the event loop of the test that first waits on it.
release: asyncio.Event


async def hog_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/test/Hog":
        await release.wait()  # does not read its (large, streaming) body until released
        body = await read_body(receive)
        await respond(send, [hashlib.sha256(body).hexdigest().encode()])
        return
    await echo_app(scope, receive, send)


@pytest.mark.parametrize("fixed", VARIANTS)
async def test_unread_body_does_not_block_other_calls(fixed: bool) -> None:
    global release
    release = asyncio.Event()
    sent = hashlib.sha256()
    async with (
        serve(hog_app, None if fixed else stock_config(), fixed=fixed) as server,
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        unary = channel.unary_unary("/test/Unary")
        assert await unary(b"warm-up", timeout=5) == b"warm-up"

        async def body() -> AsyncIterator[bytes]:
            for i in range(160):  # 10 MiB of messages: far more than any window
                message = bytes([i]) * 65536
                sent.update(b"\0\0\1\0\0" + message)  # what the server reads: framed messages
                yield message

        hog = channel.stream_unary("/test/Hog")(body(), timeout=30)
        await asyncio.sleep(0.5)  # let it fill whatever the server buffers

        start = time.monotonic()
        try:
            results = await asyncio.gather(
                *(unary(b"%d" % i, timeout=3) for i in range(20)), return_exceptions=True
            )
        finally:
            elapsed = time.monotonic() - start
            release.set()
        errors = [r for r in results if isinstance(r, Exception)]
        assert not errors, f"{len(errors)} calls failed behind the unread body: {errors[0]}"
        assert elapsed < 2.0
        assert results == [b"%d" % i for i in range(20)]

        # Credit flows again once the handler reads: the whole body arrives, in order.
        assert await hog == sent.hexdigest().encode()


chunks_seen: list[str] = []


async def disconnect_app(scope: Scope, receive: Receive, send: Send) -> None:
    await release.wait()
    message = await receive()
    chunks_seen.append(message["type"])


async def test_disconnect_before_buffered_chunks() -> None:
    """A reset stream reports http.disconnect at once, even with unread body chunks buffered."""
    global release
    release = asyncio.Event()
    chunks_seen.clear()
    async with serve(disconnect_app) as server:
        client = await RawH2.connect(server.port)
        try:
            stream_id = client.request("/test/Reset", b"\0\0\0\0\3abc", end=False)
            await asyncio.sleep(0.2)
            client.connection.reset_stream(stream_id, 8)  # CANCEL
            client.flush()
            await asyncio.sleep(0.2)
            release.set()
            for _ in range(50):
                if chunks_seen:
                    break
                await asyncio.sleep(0.02)
        finally:
            await client.close()
    assert chunks_seen == ["http.disconnect"]


received: list[tuple[int, bool]] = []


async def counting_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = bytearray()
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        body += message["body"]
        received.append((len(message["body"]), message["more_body"]))
        if not message["more_body"]:
            break
        await asyncio.sleep(0.01)  # a slow reader: chunks accumulate between receives
    await respond(send, [hashlib.sha256(body).digest()])


async def test_streamed_body_arrives_whole_and_in_order() -> None:
    received.clear()
    messages = [bytes([i % 251]) * (1000 + 37 * i) for i in range(300)]  # ~2 MiB, > window
    async with (
        serve(counting_app) as server,
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        reply = await channel.stream_unary("/test/Count")(iter(messages), timeout=20)
    framed = b"".join(len(m).to_bytes(5, "big") + m for m in messages)
    assert reply == hashlib.sha256(framed).digest()
    assert received[-1][1] is False
    assert all(more for _, more in received[:-1])
    assert sum(n for n, _ in received) == len(framed)
