"""Initial metadata a handler sends explicitly is on the wire before whatever it does next.

A handler that sends its initial metadata and then fails: with grpcio's server the headers leave
when ``send_initial_metadata`` returns, not with the status (a retrying client can take the call
as begun, gRFC A6, only if it has the headers first). The handler here holds its event loop for a
moment between the two (a blocking sleep, so that no writer task can run in between), and
grpcio's blocking client, on a thread of its own, notes when each arrives.
"""

from __future__ import annotations

import asyncio
import time
from types import ModuleType
from typing import Any

import grpc as grpcio

from .conftest import SERVICE

HOLD = 0.5


async def test_headers_leave_before_an_abort_that_follows(grpc: ModuleType) -> None:
    async def fail(request: bytes, context: Any) -> Any:
        await context.send_initial_metadata((("x-sent", "first"),))
        time.sleep(HOLD)  # noqa: ASYNC251 (on purpose: nothing else may run before the abort)
        await context.abort(grpc.StatusCode.UNAVAILABLE, "after the headers")
        yield b""  # (never reached: a server-streaming handler)

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Fail": grpc.unary_stream_rpc_method_handler(fail)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    seen: dict[str, Any] = {}

    def call() -> None:
        with grpcio.insecure_channel(f"127.0.0.1:{port}") as channel:
            responses = channel.unary_stream(f"/{SERVICE}/Fail")(b"", timeout=10)
            seen["metadata"] = tuple(responses.initial_metadata())
            seen["headers_at"] = time.monotonic()
            try:
                for _ in responses:
                    pass
            except grpcio.RpcError as error:
                seen["code"] = error.code()
            seen["status_at"] = time.monotonic()

    try:
        await asyncio.to_thread(call)
    finally:
        await server.stop(None)
    assert seen["metadata"] == (("x-sent", "first"),)
    assert seen["code"] == grpcio.StatusCode.UNAVAILABLE
    assert seen["status_at"] - seen["headers_at"] >= HOLD * 0.6, seen
