"""The server under attack: ``python -m bench.hostile.target --impl asgi_grpc|grpcio``.

A ``grpc.aio`` server (grpcio's or asgi_grpc's, the same code) with generic handlers on raw bytes,
so no generated code is needed. Prints ``{"port": N}`` once serving; stops on SIGTERM, or when
its stdin closes (the suite that started it is gone).

Methods of ``/hostile.Target/``:

- ``Unary``: echoes the request.
- ``Stream``: request ``b"count,size"``; answers ``count`` messages of ``size`` bytes.
- ``Bidi``: echoes every request message.
- ``Sink``: client-streaming; the handler never reads its requests and returns after 30 s (or
  when cancelled): the "handler that does not read".
- ``Drain``: client-streaming; reads everything and answers the number of messages.
- ``Active``: how many handlers (of the methods above) are running right now, as ASCII; lets the
  suite see handlers that outlive their vanished peer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

SERVICE = "hostile.Target"
SINK_SECONDS = 30.0

_active = 0


def _counted(
    handler: Callable[..., Awaitable[bytes]],
) -> Callable[..., Awaitable[bytes]]:
    async def run(request: Any, context: Any) -> bytes:
        global _active
        _active += 1
        try:
            return await handler(request, context)
        finally:
            _active -= 1

    return run


def _counted_stream(
    handler: Callable[..., AsyncIterator[bytes]],
) -> Callable[..., AsyncIterator[bytes]]:
    async def run(request: Any, context: Any) -> AsyncIterator[bytes]:
        global _active
        _active += 1
        try:
            async for item in handler(request, context):
                yield item
        finally:
            _active -= 1

    return run


async def unary(request: bytes, context: Any) -> bytes:
    return request


async def stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
    count, _, size = request.partition(b",")
    payload = b"s" * min(int(size or b"1"), 1 << 20)
    for _ in range(min(int(count or b"1"), 1 << 20)):
        yield payload


async def bidi(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request


async def sink(requests: AsyncIterator[bytes], context: Any) -> bytes:
    await asyncio.sleep(SINK_SECONDS)
    return b""


async def drain(requests: AsyncIterator[bytes], context: Any) -> bytes:
    count = 0
    async for _ in requests:
        count += 1
    return str(count).encode()


async def active(request: bytes, context: Any) -> bytes:
    return str(_active).encode()


def handlers(grpc: Any) -> Any:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(_counted(unary)),
            "Stream": grpc.unary_stream_rpc_method_handler(_counted_stream(stream)),
            "Bidi": grpc.stream_stream_rpc_method_handler(_counted_stream(bidi)),
            "Sink": grpc.stream_unary_rpc_method_handler(_counted(sink)),
            "Drain": grpc.stream_unary_rpc_method_handler(_counted(drain)),
            "Active": grpc.unary_unary_rpc_method_handler(active),
        },
    )


async def serve(impl: str, host: str) -> None:
    if impl == "grpcio":
        import grpc
        import grpc.aio as aio
    else:
        import asgi_grpc as grpc
        import asgi_grpc.aio as aio
    server = aio.server()
    server.add_generic_rpc_handlers((handlers(grpc),))
    port = server.add_insecure_port(f"{host}:0")
    await server.start()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)

    def parent_gone() -> None:
        # The suite holds our stdin open: EOF means it is gone (killed, or a test timed out),
        # and a server left behind would hold its port and memory on a shared machine.
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stopped.set)

    threading.Thread(target=parent_gone, daemon=True).start()
    print(json.dumps({"port": port}), flush=True)
    await stopped.wait()
    await server.stop(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile.target")
    parser.add_argument("--impl", choices=["asgi_grpc", "grpcio"], required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.impl, args.host))
    return 0


if __name__ == "__main__":
    sys.exit(main())
