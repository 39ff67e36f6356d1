"""The server's receive-window credit on the wire (``FastH2Connection.acknowledge_received``,
asgi_grpc/_h2conn.py): a request that fits the stream's window gets no WINDOW_UPDATE for its stream
however its DATA is split (h2 sent one, in a write of its own, once half the window was read),
and a request larger than the window gets its credit (the first once three quarters of the window
is owed, then at half, as h2 does), with the peer never left waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hyperframe.frame import DataFrame, HeadersFrame, SettingsFrame, WindowUpdateFrame

from asgi_grpc import (
    method_handlers_generic_handler,
    stream_unary_rpc_method_handler,
    unary_unary_rpc_method_handler,
)
from asgi_grpc.server import GrpcApp

from .helpers import RawH2, grpc_frame, grpc_messages, grpc_request_headers, serve

MiB = 1024 * 1024
INITIAL_WINDOW_SIZE = 4


def _app(kind: str) -> GrpcApp:
    def echo(request: bytes, context: Any) -> bytes:
        return request

    async def echo_async(request: bytes, context: Any) -> bytes:
        return request

    async def total(requests: AsyncIterator[bytes], context: Any) -> bytes:
        size = 0
        async for request in requests:
            size += len(request)
        return str(size).encode()

    app = GrpcApp()
    handlers = {
        "Echo": unary_unary_rpc_method_handler(echo if kind == "sync" else echo_async),
        "Total": stream_unary_rpc_method_handler(total),
    }
    app.add_generic_rpc_handlers((method_handlers_generic_handler("t.T", handlers),))
    return app


async def _open(client: RawH2, path: str) -> tuple[int, int]:
    """Open a request stream; returns its id and the server's stream window."""
    settings = await client.frame()
    assert isinstance(settings, SettingsFrame)
    stream_id = client.connection.get_next_available_stream_id()
    client.connection.send_headers(stream_id, grpc_request_headers(path))
    client.flush()
    return stream_id, settings.settings[INITIAL_WINDOW_SIZE]


async def _response(client: RawH2, stream_id: int, updates: list[int]) -> bytes:
    """The response body, noting the stream's WINDOW_UPDATEs in ``updates``."""
    body = b""
    while True:
        frame = await client.frame()
        if isinstance(frame, WindowUpdateFrame) and frame.stream_id == stream_id:
            updates.append(frame.window_increment)
        elif isinstance(frame, DataFrame):
            body += frame.data
        elif isinstance(frame, HeadersFrame) and "END_STREAM" in frame.flags:
            assert client.headers(frame)[b"grpc-status"] == b"0"
            return body


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_request_that_fits_the_window_gets_no_stream_credit(kind: str) -> None:
    message = grpc_frame(bytes(range(256)) * 4096)  # 1 MiB: grpcio's client sends it in two
    async with serve(_app(kind)) as server:
        client = await RawH2.connect(server.port)
        try:
            stream_id, window = await _open(client, "/t.T/Echo")
            assert len(message) <= window
            split = window * 2 // 3  # past half the window (h2 credited the stream there)
            client.writer.write(
                DataFrame(stream_id, data=message[:split]).serialize()
                + DataFrame(stream_id, data=message[split:], flags=["END_STREAM"]).serialize()
            )
            updates: list[int] = []
            body = await _response(client, stream_id, updates)
        finally:
            await client.close()
    assert body == message
    assert updates == []


async def test_a_request_larger_than_the_window_is_credited_as_it_is_read() -> None:
    chunk = 64 * 1024
    messages = [grpc_frame(bytes([n]) * (chunk - 5)) for n in range(64)]  # 4 MiB in all
    async with serve(_app("async")) as server:
        client = await RawH2.connect(server.port)
        try:
            stream_id, window = await _open(client, "/t.T/Total")
            available = window
            updates: list[int] = []
            for index, message in enumerate(messages):
                while available < len(message):  # wait for credit, as a peer must
                    frame = await client.frame()
                    if isinstance(frame, WindowUpdateFrame) and frame.stream_id == stream_id:
                        updates.append(frame.window_increment)
                        available += frame.window_increment
                flags = ["END_STREAM"] if index == len(messages) - 1 else []
                client.writer.write(DataFrame(stream_id, data=message, flags=flags).serialize())
                available -= len(message)
            body = await asyncio.wait_for(_response(client, stream_id, updates), 10)
        finally:
            await client.close()
    assert grpc_messages(body) == [str(len(messages) * (chunk - 5)).encode()]
    # The first credit once three quarters of the window is owed, the next ones at half.
    assert len(updates) >= 2
    assert updates[0] >= window * 3 // 4
    assert all(increment >= window // 2 for increment in updates[1:])
