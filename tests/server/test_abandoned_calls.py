"""Every abandoned handler is cancelled promptly (issue 9 item 4).

A raw HTTP/2 client starts calls, then resets its TCP connection (SO_LINGER 0): no RST_STREAM, no
GOAWAY. Handlers that only write, handlers that wait, and handlers that leave request data unread
(with the request buffer full, so the server has stopped taking data) must all end, aio and sync
(thread-pool) alike, and server.stop() must not wait out its grace for them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import asgi_grpc
from tests.server.h2raw import RawClient
from tests.server.held import fill, message, path, serve, vanish, wait_until

CALLS = 10
# Generous: the cancellation itself takes milliseconds; this only absorbs a loaded machine.
PROMPT = 2.0


class Tracker:
    """Counts handlers started and ended (by done callbacks, as a user would see them)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = 0
        self.ended = 0
        self.cancelled = 0

    def start(self) -> None:
        with self.lock:
            self.started += 1

    def end(self, cancelled: bool) -> None:
        with self.lock:
            self.ended += 1
            self.cancelled += cancelled


def handlers(tracker: Tracker) -> dict[str, Any]:
    async def write_forever(request: bytes, context: Any) -> Any:
        tracker.start()
        context.add_done_callback(lambda ctx: tracker.end(ctx.cancelled()))
        while True:
            yield b"x" * 1024

    async def wait_forever(request: bytes, context: Any) -> bytes:
        tracker.start()
        context.add_done_callback(lambda ctx: tracker.end(ctx.cancelled()))
        await asyncio.Event().wait()
        return b""

    async def never_read(requests: Any, context: Any) -> bytes:
        tracker.start()
        context.add_done_callback(lambda ctx: tracker.end(ctx.cancelled()))
        await asyncio.Event().wait()
        return b""

    def sync_write_forever(request: bytes, context: Any) -> Any:
        tracker.start()
        context.add_callback(lambda: tracker.end(not context.is_active()))
        while True:
            yield b"x" * 1024

    def sync_never_read(requests: Any, context: Any) -> bytes:
        tracker.start()
        context.add_callback(lambda: tracker.end(not context.is_active()))
        while context.is_active():
            time.sleep(0.01)
        return b""

    return {
        "WriteForever": asgi_grpc.unary_stream_rpc_method_handler(write_forever),
        "WaitForever": asgi_grpc.unary_unary_rpc_method_handler(wait_forever),
        "NeverRead": asgi_grpc.stream_unary_rpc_method_handler(never_read),
        "SyncWriteForever": asgi_grpc.unary_stream_rpc_method_handler(sync_write_forever),
        "SyncNeverRead": asgi_grpc.stream_unary_rpc_method_handler(sync_never_read),
    }


async def start_calls(port: int, method: str, *, unread: bool) -> list[RawClient]:
    clients = []
    for _ in range(CALLS):
        client = await RawClient.connect("127.0.0.1", port)
        stream_id = client.start(path(method))
        if unread:
            # More than the request buffer (64 KiB here) and the stream window hold: the server
            # stops taking data, and the client is left with unsent bytes.
            sent = await fill(client, stream_id, message(b"r" * 16_000), limit=8 << 20)
            assert sent < 8 << 20, "the server kept taking data from a handler that does not read"
        else:
            client.send(stream_id, message(b"request"), end_stream=True)
        await client.writer.drain()
        clients.append(client)
    return clients


@pytest.mark.parametrize(
    ("method", "unread"),
    [
        ("WriteForever", False),
        ("WaitForever", False),
        ("NeverRead", True),
        ("SyncWriteForever", False),
        ("SyncNeverRead", True),
    ],
)
async def test_handlers_are_cancelled_when_the_client_resets_tcp(method: str, unread: bool) -> None:
    tracker = Tracker()
    options = [("asgi_grpc.max_buffered_request_bytes", 64 * 1024)]
    with ThreadPoolExecutor(CALLS + 2) as pool:
        async with serve(handlers(tracker), migration_thread_pool=pool, options=options) as (
            server,
            port,
        ):
            clients = await start_calls(port, method, unread=unread)
            assert await wait_until(lambda: tracker.started == CALLS, 5.0)
            await asyncio.sleep(0.2)  # let writers fill their windows, readers their buffers
            assert tracker.ended == 0
            for client in clients:
                vanish(client)
            assert await wait_until(lambda: tracker.ended == CALLS, PROMPT), (
                f"{CALLS - tracker.ended} of {CALLS} handlers still running {PROMPT} s after "
                "their client vanished"
            )
            assert tracker.cancelled == CALLS
            assert await wait_until(lambda: server.app.active_rpcs == 0, PROMPT)
            # Nothing left for stop() to wait for.
            started = time.monotonic()
            await server.stop(30)
            assert time.monotonic() - started < 10
