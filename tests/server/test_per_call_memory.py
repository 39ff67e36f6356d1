"""The server keeps nothing per finished call (issue 9 item 9).

3,000 calls of the four patterns over long-lived connections (grpcio clients), after a warm-up:
the Python heap (tracemalloc) and the number of live objects (gc) must not grow with the number
of calls. Before the fix h2 remembered every closed stream (~114 bytes per call, up to 65,536
streams per connection), which is what the soak of the issue saw as steady RSS growth.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

import grpc

import asgi_grpc
from tests.server.held import path, serve

ROUNDS = 250  # x 4 patterns x 3 channels = 3,000 calls
CHANNELS = 3


def echo_handlers() -> dict[str, Any]:
    async def unary(request: bytes, context: Any) -> bytes:
        return request

    async def server_stream(request: bytes, context: Any) -> Any:
        for _ in range(3):
            yield request

    async def client_stream(requests: Any, context: Any) -> bytes:
        return b"".join([request async for request in requests])

    async def bidi(requests: Any, context: Any) -> Any:
        async for request in requests:
            yield request

    return {
        "Unary": asgi_grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": asgi_grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": asgi_grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": asgi_grpc.stream_stream_rpc_method_handler(bidi),
    }


async def four_patterns(channel: grpc.aio.Channel, rounds: int) -> None:
    unary = channel.unary_unary(path("Unary"))
    server_stream = channel.unary_stream(path("ServerStream"))
    client_stream = channel.stream_unary(path("ClientStream"))
    bidi = channel.stream_stream(path("Bidi"))
    for _ in range(rounds):
        assert await unary(b"u" * 10) == b"u" * 10
        assert [m async for m in server_stream(b"s")] == [b"s"] * 3
        assert await client_stream(iter([b"a", b"b"])) == b"ab"
        assert [m async for m in bidi(iter([b"x", b"y"]))] == [b"x", b"y"]


async def test_memory_does_not_grow_per_call() -> None:
    async with serve(echo_handlers()) as (server, port):
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(CHANNELS)]
        try:
            await asyncio.gather(*(four_patterns(channel, 50) for channel in channels))
            gc.collect()
            objects_before = len(gc.get_objects())
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                await asyncio.gather(*(four_patterns(channel, ROUNDS) for channel in channels))
                await asyncio.sleep(0.2)
                gc.collect()
                grown = tracemalloc.get_traced_memory()[0] - before
            finally:
                tracemalloc.stop()
            objects_grown = len(gc.get_objects()) - objects_before
            assert server.app.active_rpcs == 0
        finally:
            for channel in channels:
                await channel.close()
    calls = ROUNDS * 4 * CHANNELS
    # Generous: a leak of even one small object per call (>= 28 bytes) shows; before the fix
    # this was ~114 bytes per call.
    assert grown / calls < 20, f"heap grew {grown} bytes over {calls} calls"
    assert objects_grown / calls < 0.1, f"{objects_grown} more live objects after {calls} calls"


async def test_unary_calls_leave_no_reference_cycles() -> None:
    """A finished unary call's server objects are freed by reference counting, not left for the
    garbage collector, whose collections of every call's cycles (a cancelled watcher task's
    traceback, the stream's bound methods) cost several microseconds per call."""
    from asgi_grpc.server._call import ServicerContext
    from asgi_grpc.server._hypercorn_stream import GrpcHTTPStream

    async with serve(echo_handlers()) as (_server, port):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            unary = channel.unary_unary(path("Unary"))
            assert await unary(b"warm") == b"warm"
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                replies = await asyncio.gather(*(unary(b"u") for _ in range(200)))
                await asyncio.sleep(0.2)
                gc.collect()
                in_cycles = [
                    type(o).__name__
                    for o in gc.garbage
                    if isinstance(o, (ServicerContext, GrpcHTTPStream))
                ]
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
    assert replies == [b"u"] * 200
    assert not in_cycles, f"{len(in_cycles)} server objects in reference cycles: {in_cycles[:4]}"
