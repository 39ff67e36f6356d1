"""An aio server of the library under test, for the grpc.aio client scenarios.

The same handlers run on grpcio's ``grpc.aio.server()`` and on ``asgi_grpc.aio.server()``; a
scenario's client is of the same library as its server. Requests and responses are raw bytes:

- ``Unary``: echoes the request; ``b"fail"`` aborts INVALID_ARGUMENT (with trailing metadata
  ``err-key: err-value``); ``b"slow"`` sleeps until cancelled; ``b"meta"`` answers with the
  call's ``x-*`` metadata as ``key=value`` lines.
- ``Stream`` (unary-stream): ``b"3"`` gives ``b"0"``, ``b"1"``, ``b"2"``; ``b"fail"`` gives
  two responses, then aborts INVALID_ARGUMENT; ``b"slow"`` gives two, then sleeps;
  ``b"hold"`` sleeps before the first.
- ``Collect`` (stream-unary): the requests joined by ``b","``; a ``b"fail"`` request aborts
  INVALID_ARGUMENT at once; ``b"reject"`` as the first request aborts before reading more.
- ``Echo`` (stream-stream): echoes each request; ``b"fail"`` aborts INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .conftest import (
    generic_handler,
    method,
    stream_stream,
    stream_unary,
    unary_stream,
    unary_unary,
)

FAIL_DETAILS = "requested failure"


async def _abort(grpc: ModuleType, context: Any) -> None:
    context.set_trailing_metadata((("err-key", "err-value"),))
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, FAIL_DETAILS)


def handlers(grpc: ModuleType) -> Any:
    async def unary(request: bytes, context: Any) -> bytes:
        if request == b"fail":
            await _abort(grpc, context)
        if request == b"slow":
            await asyncio.sleep(60)
        if request == b"meta":
            pairs = [f"{k}={v}" for k, v in context.invocation_metadata() if k.startswith("x-")]
            return "\n".join(pairs).encode()
        return request

    async def stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        if request == b"hold":
            await asyncio.sleep(60)
        if request in (b"fail", b"slow"):
            yield b"0"
            yield b"1"
            if request == b"fail":
                await _abort(grpc, context)
            await asyncio.sleep(60)
        for i in range(int(request)):
            yield str(i).encode()

    async def collect(requests: AsyncIterator[bytes], context: Any) -> bytes:
        seen = []
        async for request in requests:
            if request == b"reject" or request == b"fail":
                await _abort(grpc, context)
            seen.append(request)
        return b",".join(seen)

    async def echo(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for request in requests:
            if request == b"fail":
                await _abort(grpc, context)
            yield request

    return generic_handler(
        grpc,
        {
            "Unary": unary_unary(grpc, unary),
            "Stream": unary_stream(grpc, stream),
            "Collect": stream_unary(grpc, collect),
            "Echo": stream_stream(grpc, echo),
        },
    )


@dataclass
class Peer:
    grpc: ModuleType
    target: str
    server: Any

    def channel(self, interceptors: Any = None, **kwargs: Any) -> Any:
        return self.grpc.aio.insecure_channel(self.target, interceptors=interceptors, **kwargs)


async def start(grpc: ModuleType) -> Peer:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handlers(grpc),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return Peer(grpc, f"127.0.0.1:{port}", server)


def methods(channel: Any) -> tuple[Any, Any, Any, Any]:
    """The four multi-callables: unary_unary, unary_stream, stream_unary, stream_stream."""
    return (
        channel.unary_unary(method("Unary")),
        channel.unary_stream(method("Stream")),
        channel.stream_unary(method("Collect")),
        channel.stream_stream(method("Echo")),
    )
