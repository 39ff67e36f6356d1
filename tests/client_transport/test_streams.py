"""Many streams, cancelled streams and flow control, against a real grpcio server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from h2.errors import ErrorCodes

from asgi_grpc._core import StatusCode, frame
from asgi_grpc.client._connection import ConnectionSettings
from asgi_grpc.client._transport_errors import StreamClosed

from .conftest import TLS, Peer, start_peer, stop_peer
from .support import SERVER_STREAM, MiB, headers, pb2, unary


async def until(condition: Callable[[], bool], timeout: float = 1.5) -> None:
    """Poll ``condition`` (while slow calls are in flight) for up to ``timeout`` seconds."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)


async def test_500_concurrent_streams_share_one_connection(h2c_peer: Peer) -> None:
    """grpcio names no stream limit: every call goes on one connection, all at once."""
    pool = h2c_peer.pool()
    calls = [
        asyncio.ensure_future(unary(pool, pb2.EchoRequest(message=str(i), delay_ms=2000)))
        for i in range(500)
    ]
    await until(lambda: sum(c.active_streams for c in pool.connections) == 500)
    (connection,) = pool.connections
    assert connection.active_streams == 500
    results = await asyncio.gather(*calls)
    assert [r[1][0].message for r in results] == [str(i) for i in range(500)]
    assert all(r[0].code is StatusCode.OK for r in results)
    assert connection.active_streams == 0


@pytest.mark.parametrize("transport", ["h2c", "tls"])
async def test_500_streams_over_a_stream_limit_open_more_connections(
    transport: str, tls: TLS
) -> None:
    peer = await start_peer(transport, tls, options=[("grpc.max_concurrent_streams", 100)])
    try:
        pool = peer.pool()
        calls = [
            asyncio.ensure_future(unary(pool, pb2.EchoRequest(message=str(i), delay_ms=2000)))
            for i in range(500)
        ]
        await until(lambda: sum(c.active_streams for c in pool.connections) == 500)
        connections = pool.connections
        assert len(connections) == 5
        assert all(c.max_concurrent_streams == 100 for c in connections)
        assert [c.active_streams for c in connections] == [100] * 5
        results = await asyncio.gather(*calls)
        assert [r[1][0].message for r in results] == [str(i) for i in range(500)]
    finally:
        await stop_peer(peer)


async def test_max_connections_makes_callers_wait_for_room(tls: TLS) -> None:
    peer = await start_peer("h2c", tls, options=[("grpc.max_concurrent_streams", 10)])
    try:
        pool = peer.pool(max_connections=2)
        results = await asyncio.gather(
            *(unary(pool, pb2.EchoRequest(message=str(i), delay_ms=50)) for i in range(60))
        )
        assert all(r[0].code is StatusCode.OK for r in results)
        assert len(pool.connections) == 2
    finally:
        await stop_peer(peer)


async def test_cancel_mid_response_resets_and_connection_keeps_working(h2c_peer: Peer) -> None:
    """Closing a stream early sends RST_STREAM(CANCEL) (the server handler is cancelled);
    the DATA still in flight for it is acknowledged, so the connection window does not shrink
    even after many cancelled streams, and later calls on the connection still work."""
    pool = h2c_peer.pool()
    request = pb2.EchoRequest(payload=b"x" * 60_000, count=1000)
    for round_ in range(12):
        stream = await pool.request(SERVER_STREAM, headers(), frame(request.SerializeToString()))
        # A starved connection window shows up here as a read that never returns.
        assert await asyncio.wait_for(stream.read(), 10)  # the server is streaming now
        # Let a stream window's worth (4 MiB) pile up unread before giving up on it.
        for _ in range(100):
            if sum(len(data) for data, _ in stream._chunks) > 3 * MiB:
                break
            await asyncio.sleep(0.01)
        stream.close()
        with pytest.raises(StreamClosed):
            await stream.read()
        if round_ == 0:
            await asyncio.wait_for(h2c_peer.state.cancelled_event.wait(), 5)
    (connection,) = pool.connections
    # 12 x 4 MiB windows > the 16 MiB connection window: only acknowledged DATA leaves room.
    payload = b"y" * (8 * MiB)
    status, (response,), _ = await asyncio.wait_for(
        unary(pool, pb2.EchoRequest(payload=payload)), 30
    )
    assert status.code is StatusCode.OK
    assert response.payload == payload
    assert pool.connections == [connection]
    assert h2c_peer.state.cancelled >= 1


async def test_receive_buffer_is_bounded_by_the_stream_window(h2c_peer: Peer) -> None:
    """A reader that does not read holds at most one stream window; reading resumes the flow."""
    window = 256 * 1024
    pool = h2c_peer.pool(settings=ConnectionSettings(stream_window=window))
    request = pb2.EchoRequest(payload=b"z" * 32_000, count=200)  # ~6.4 MB in all
    stream = await pool.request(SERVER_STREAM, headers(), frame(request.SerializeToString()))
    async with stream:

        def buffered() -> int:
            return sum(len(data) for data, _ in stream._chunks)

        await until(lambda: buffered() >= window // 2, timeout=5)
        await asyncio.sleep(0.2)  # time for more to come in, were the window not enforced
        assert window // 2 <= buffered() <= window
        total = buffered()
        while chunk := await asyncio.wait_for(stream.read(), 10):
            total += len(chunk)
        assert total > 6_000_000
        trailers = await stream.trailers()
    assert (b"grpc-status", b"0") in trailers


async def test_small_frames_and_windows_still_work(peer: Peer) -> None:
    pool = peer.pool(
        settings=ConnectionSettings(
            stream_window=65535, connection_window=65535, max_frame_size=16384
        )
    )
    payload = b"q" * (1 * MiB)
    status, (response,), _ = await asyncio.wait_for(
        unary(pool, pb2.EchoRequest(payload=payload)), 30
    )
    assert status.code is StatusCode.OK
    assert response.payload == payload


async def test_reset_by_server_is_stream_reset(h2c_peer: Peer) -> None:
    """A deadline the server enforces ends the stream; our reset code mapping is exercised by
    the scripted server tests. Here: the stream fails cleanly, others are untouched."""
    pool = h2c_peer.pool()
    request = pb2.EchoRequest(count=1000, delay_ms=50)
    stream = await pool.open_stream(
        SERVER_STREAM,
        headers(timeout=0.2),
        body=frame(request.SerializeToString()),
        end_stream=True,
    )
    async with stream:
        trailers = await asyncio.wait_for(stream.trailers(), 5)
    assert (b"grpc-status", str(StatusCode.DEADLINE_EXCEEDED.value[0]).encode()) in trailers
    status, _, _ = await unary(pool, pb2.EchoRequest(message="still fine"))
    assert status.code is StatusCode.OK
    assert ErrorCodes.CANCEL == 8
