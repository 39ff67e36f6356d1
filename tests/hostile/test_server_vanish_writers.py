"""Server-stream handlers whose client resets TCP mid-stream end at once, and do not starve
the server (the hostile suite's ``vanish_server_stream``).

Once the stream is gone, what a handler writes is dropped without waiting on anything; a
handler that writes as fast as it can would then never give the event loop a turn (so the
disconnect that cancels it never arrives, and every other connection waits until it has
written its whole answer into the void). The writes must yield, so the cancellation lands.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

import asgi_grpc
from tests.server.h2raw import RawClient
from tests.server.held import message, path, serve, vanish, wait_until

CALLS = 10
# A handler that writes this many messages after its client left would run for seconds.
MESSAGES = 200_000
PROMPT = 5.0  # generous: the cancellation takes milliseconds


async def test_writers_end_when_their_client_resets_tcp() -> None:
    started = 0
    cancelled = 0
    written = 0

    async def write_many(request: bytes, context: Any) -> AsyncIterator[bytes]:
        nonlocal started, written
        started += 1

        def done(ctx: Any) -> None:
            nonlocal cancelled
            cancelled += ctx.cancelled()

        context.add_done_callback(done)
        chunk = b"x" * 1024
        for _ in range(MESSAGES):
            written += 1
            yield chunk

    async def unary(request: bytes, context: Any) -> bytes:
        return request

    handlers = {
        "WriteMany": asgi_grpc.unary_stream_rpc_method_handler(write_many),
        "Unary": asgi_grpc.unary_unary_rpc_method_handler(unary),
    }
    async with serve(handlers) as (server, port):
        clients = []
        for _ in range(CALLS):
            client = await RawClient.connect("127.0.0.1", port)
            stream_id = client.start(path("WriteMany"))
            client.send(stream_id, message(b"go"), end_stream=True)
            await client.writer.drain()
            clients.append(client)
        assert await wait_until(lambda: started == CALLS, PROMPT)
        await asyncio.sleep(0.3)  # the writers are blocked on their stream windows
        for client in clients:
            vanish(client)
        assert await wait_until(lambda: cancelled == CALLS, PROMPT), (
            f"{CALLS - cancelled} of {CALLS} writers still running after their client vanished"
        )
        # They stopped soon after: far from writing their whole answer into the void.
        assert written < CALLS * MESSAGES // 2
        assert await wait_until(lambda: server.app.active_rpcs == 0, PROMPT)
        # And the server answers a new call.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            answer = await channel.unary_unary(path("Unary"))(b"witness", timeout=PROMPT)
        assert answer == b"witness"
