"""What a client can make the server hold with calls whose handler does not read (issue 9 items
1 and 3): bounded whatever the message sizes, and given back when the calls end.

A raw HTTP/2 client sends as much as flow control lets it; the server must stop granting credit
once the call's request buffer (charged per message, prefixes and object overhead included) and
its stream window are full. Memory is the process's RSS (psutil); the client's share of it is
small (it sends what it frames at once). Limits are generous; the figures before the fix were
far beyond them (76 MiB of empty messages accepted in 8 s, RSS +1.1 GiB; 5 MiB held per stream).
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import psutil

import asgi_grpc
from tests.server.h2raw import RawClient
from tests.server.held import fill, message, path, serve, wait_until

MiB = 1 << 20


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


def holding_handlers(release: asyncio.Event, seen: list[int]) -> dict[str, Any]:
    async def hold(requests: Any, context: Any) -> bytes:
        seen.append(1)
        await release.wait()
        count = 0
        async for _ in requests:  # then read everything, to the end
            count += 1
        return b"%d" % count

    return {"Hold": asgi_grpc.stream_unary_rpc_method_handler(hold)}


async def test_empty_messages_fill_the_request_buffer() -> None:
    """Zero-length messages (5 bytes on the wire each) are charged too: the server stops taking
    them at the bound instead of queueing millions of them."""
    release = asyncio.Event()
    seen: list[int] = []
    async with serve(holding_handlers(release, seen)) as (_server, port):
        client = await RawClient.connect("127.0.0.1", port)
        stream_id = client.start(path("Hold"))
        assert await wait_until(lambda: seen, 5.0)
        gc.collect()
        before = rss()
        empty = message(b"") * 3200  # 16,000 bytes: 3,200 empty messages per DATA frame
        sent = await fill(client, stream_id, empty, limit=64 * MiB)
        grown = rss() - before
        # Stream window (1 MiB) + request buffer (256 KiB, charged ~100 bytes per message) +
        # one slice of slack: well under 4 MiB of wire bytes.
        assert sent < 4 * MiB, f"the server took {sent / MiB:.1f} MiB of empty messages"
        assert grown < 64 * MiB, f"RSS grew by {grown / MiB:.0f} MiB"
        # The call still works: once the handler reads, it gets every message.
        release.set()
        client.send(stream_id, b"", end_stream=True)
        response = await client.response(stream_id, timeout=30)
        assert response.grpc_status == 0
        assert response.messages() == [(False, b"%d" % (sent // 5))]
        await client.close()


async def test_held_streams_are_bounded_and_given_back() -> None:
    """50 streams whose handler does not read, filled with 16 KiB messages: each holds about its
    buffer plus its window; when the calls end, the memory goes back (no references left, and
    the heap trimmed)."""
    streams = 50
    release = asyncio.Event()
    seen: list[int] = []
    async with serve(holding_handlers(release, seen)) as (_server, port):
        client = await RawClient.connect("127.0.0.1", port)
        ids = [client.start(path("Hold")) for _ in range(streams)]
        assert await wait_until(lambda: len(seen) == streams, 10.0)
        gc.collect()
        before = rss()
        chunk = message(b"m" * 15_995)
        sent = await asyncio.gather(*(fill(client, i, chunk, limit=64 * MiB) for i in ids))
        await asyncio.sleep(0.2)
        held = rss() - before
        assert max(sent) < 3 * MiB, f"one stream took {max(sent) / MiB:.1f} MiB"
        # ~1.3 MiB a stream (window + buffer); 4 MiB + 1 MiB each before the fix.
        assert held < streams * 2.5 * MiB, f"{streams} held streams: RSS +{held / MiB:.0f} MiB"
        release.set()
        for stream_id in ids:
            client.send(stream_id, b"", end_stream=True)
        for stream_id in ids:
            response = await client.response(stream_id, timeout=30)
            assert response.grpc_status == 0
        await client.close()
        await asyncio.sleep(1.5)  # the server trims its heap a second after such calls end
        gc.collect()
        kept = rss() - before
        assert kept < max(24 * MiB, held // 4), (
            f"RSS +{kept / MiB:.0f} MiB after the calls ended (+{held / MiB:.0f} held)"
        )


async def test_unary_request_with_many_messages_ends_at_once() -> None:
    """A unary method's body holds one message: a second ends the call INTERNAL at once, before
    the client ends its body, so a flood of messages is never queued."""

    async def unary(request: bytes, context: Any) -> bytes:
        return request

    handlers = {"Unary": asgi_grpc.unary_unary_rpc_method_handler(unary)}
    async with serve(handlers) as (_server, port):
        client = await RawClient.connect("127.0.0.1", port)
        stream_id = client.start(path("Unary"))
        client.send(stream_id, message(b"") * 3200)  # no END_STREAM
        response = await client.response(stream_id, timeout=10)
        assert response.grpc_status == 13  # INTERNAL
        assert response.header(b"grpc-message") == b"Received too many messages for a unary request"
        await client.close()


async def test_messages_of_every_size_pass_the_bound_intact() -> None:
    """A slow reader behind a small bound: messages from empty to larger than the bound and the
    stream window, in any mix, reach the handler whole and in order (the buffer parses large
    chunks piecewise and stalls between pieces)."""
    import grpc

    async def sizes(requests: Any, context: Any) -> bytes:
        seen = []
        async for request in requests:
            seen.append(len(request))
            await asyncio.sleep(0)
        return ",".join(map(str, seen)).encode()

    pattern = [0, 1, 5, 100, 70_000, 300_000, 2 * MiB, 0, 0, 5, 3 * MiB + 7, 17]
    options = [
        ("asgi_grpc.max_buffered_request_bytes", 64 * 1024),
        ("grpc.max_receive_message_length", 8 * MiB),
    ]
    handlers = {"Sizes": asgi_grpc.stream_unary_rpc_method_handler(sizes)}
    async with (
        serve(handlers, options=options) as (_server, port),
        grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 8 * MiB)]
        ) as channel,
    ):
        requests = [bytes(size) for size in pattern * 3]
        reply = await channel.stream_unary(path("Sizes"))(iter(requests))
    assert reply == ",".join(str(len(r)) for r in requests).encode()
