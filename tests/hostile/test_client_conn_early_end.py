"""Issue 9 item 13 (client side): when the server ends a call (trailers with END_STREAM) while
the client could still send (a bidi or client-streaming call it never half-closed), the client
resets its half at once with RST_STREAM(NO_ERROR), as grpcio's does, so the stream stops
holding a slot of the server's MAX_CONCURRENT_STREAMS. Without it, every such call kept its
slot until the call object went away, and the pool opened new connections for the next ones.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc.aio
import h2.events
import httpx
import pytest

import asgi_grpc.aio
from asgi_grpc.client._transport import GrpcTransport

from .lying_server import (
    OK_HEADERS,
    LyingConnection,
    LyingServer,
    Script,
    eventually_async,
    grpc_frame,
    lying_server,
)

LIMIT = 4
CALLS = 30


def _on_connect(conn: LyingConnection) -> None:
    conn.settings(MAX_CONCURRENT_STREAMS=LIMIT)


def _end_at_first_message(conn: LyingConnection, event: h2.events.Event) -> None:
    # The status goes out as soon as the first request message is in, request still open.
    if isinstance(event, h2.events.DataReceived) and event.stream_id not in conn.ended:
        stream_id = event.stream_id
        assert stream_id is not None
        if conn.h2.streams[stream_id].open:
            conn.respond(stream_id, OK_HEADERS, grpc_frame(b"bye"), [(b"grpc-status", b"0")])


@pytest.mark.parametrize("kind", ["grpc.aio", "asgi_grpc.aio"])
def test_calls_ended_by_the_server_free_their_stream(kind: str) -> None:
    module: Any = grpc.aio if kind == "grpc.aio" else asgi_grpc.aio

    async def run(server: LyingServer) -> list[tuple[str, list[bytes]]]:
        results = []
        async with module.insecure_channel(server.target) as channel:
            method = channel.stream_stream("/hostile.Test/Bidi")
            calls = []
            for _ in range(CALLS):
                call = method(timeout=5)
                await call.write(b"hello")
                responses = [response async for response in call]
                results.append(((await call.code()).name, responses))
                calls.append(call)  # kept alive: the slot must not depend on the GC
            if kind == "asgi_grpc.aio":
                # Every stream reset by the client with NO_ERROR (none half-closed), seen by
                # the server before we close.
                conn = server.connections[0]
                assert await eventually_async(
                    lambda: conn.resets == dict.fromkeys(conn.requests, 0)
                )
        return results

    with lying_server(Script(on_connect=_on_connect, on_event=_end_at_first_message)) as server:
        results = asyncio.run(run(server))
        assert results == [("OK", [b"bye"])] * CALLS
        assert server.accepted == 1  # grpcio: 1; we used to need one per LIMIT calls
        conn = server.connections[0]
        assert len(conn.requests) == CALLS
        if kind == "asgi_grpc.aio":
            assert not conn.ended


def _refuse_upload(conn: LyingConnection, event: h2.events.Event) -> None:
    if isinstance(event, h2.events.RequestReceived):
        assert event.stream_id is not None
        conn.respond(event.stream_id, [(b":status", b"413")], b"too big")


def test_httpx_request_answered_before_its_body_is_sent_gets_the_response() -> None:
    """The same early end through the httpx transport: a server that answers (413) before the
    upload is through, on a 64 KiB window, stops the upload; the response stands."""

    async def run(server: LyingServer) -> tuple[int, bytes]:
        transport = GrpcTransport()
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.post(f"http://{server.target}/upload", content=b"x" * 1_000_000)
            # Our half: RST_STREAM(NO_ERROR).
            assert await eventually_async(lambda: server.connections[0].resets == {1: 0})
            return response.status_code, response.content

    with lying_server(Script(on_event=_refuse_upload)) as server:
        assert asyncio.run(asyncio.wait_for(run(server), 10)) == (413, b"too big")
