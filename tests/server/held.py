"""Helpers for tests of calls a client holds, floods or abandons: an asgi_grpc server with raw
methods on 127.0.0.1 port 0, and a raw HTTP/2 client that fills streams and vanishes."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import asgi_grpc
from tests.server.h2raw import RawClient

SERVICE = "held.Test"


@asynccontextmanager
async def serve(
    handlers: Mapping[str, Any], **server_kwargs: Any
) -> AsyncIterator[tuple[Any, int]]:
    """An asgi_grpc aio server with ``handlers`` (method name -> rpc method handler)."""
    server = asgi_grpc.aio.server(**server_kwargs)
    server.add_generic_rpc_handlers(
        [asgi_grpc.method_handlers_generic_handler(SERVICE, dict(handlers))]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield server, port
    finally:
        await server.stop(None)


def path(name: str) -> str:
    return f"/{SERVICE}/{name}"


def message(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


async def fill(client: RawClient, stream_id: int, chunk: bytes, *, limit: int) -> int:
    """Send ``chunk`` on the stream for as long as flow control allows (up to ``limit`` bytes);
    return what was sent once the server stopped granting credit for half a second."""
    conn = client.conn
    sent = 0
    stalled_since: float | None = None
    while sent < limit:
        window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
        if window >= len(chunk):
            client.send(stream_id, chunk)
            sent += len(chunk)
            stalled_since = None
            await client.writer.drain()
            continue
        now = time.monotonic()
        if stalled_since is None:
            stalled_since = now
        elif now - stalled_since > 0.5:
            break
        await asyncio.sleep(0.02)
    return sent


def vanish(client: RawClient) -> None:
    """Drop the TCP connection with a reset (SO_LINGER 0): no GOAWAY, no RST_STREAM, no FIN."""
    client._task.cancel()
    sock = client.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.writer.transport.abort()


async def wait_until(predicate: Any, timeout: float) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` s passed; its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return bool(predicate())
        await asyncio.sleep(0.02)
    return True
