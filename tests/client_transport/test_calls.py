"""gRPC calls done by hand over our streams, against a real grpcio server, on every transport."""

from __future__ import annotations

import asyncio

from asgi_grpc._core import MessageReader, StatusCode, frame, parse_trailers

from .conftest import Peer
from .support import BIDI, CLIENT_STREAM, SERVER_STREAM, MiB, headers, pb2, read_messages, unary


async def test_unary(peer: Peer) -> None:
    pool = peer.pool()
    status, responses, stream = await unary(pool, pb2.EchoRequest(message="hello"))
    assert status.code is StatusCode.OK
    assert [r.message for r in responses] == ["hello"]
    assert not stream.trailers_only
    # A second call reuses the connection.
    status, _, _ = await unary(pool, pb2.EchoRequest(message="again"))
    assert status.code is StatusCode.OK
    assert len(pool.connections) == 1
    assert pool.connections[0].active_streams == 0


async def test_unimplemented_is_trailers_only(peer: Peer) -> None:
    pool = peer.pool()
    body = frame(pb2.EchoRequest(message="x").SerializeToString())
    stream = await pool.request("/asgi_grpc.test.Echo/Nope", headers(), body)
    async with stream:
        response_headers = await stream.headers()
        assert stream.trailers_only
        assert await stream.read() == b""
        trailers = await stream.trailers()
    assert trailers == response_headers
    status = parse_trailers(trailers)
    assert status.code is StatusCode.UNIMPLEMENTED
    assert stream.status == 200


async def test_server_streaming(peer: Peer) -> None:
    pool = peer.pool()
    status, responses, _ = await unary(
        pool, pb2.EchoRequest(message="m", count=100), method=SERVER_STREAM
    )
    assert status.code is StatusCode.OK
    assert [r.index for r in responses] == list(range(100))


async def test_client_streaming(peer: Peer) -> None:
    pool = peer.pool()
    stream = await pool.open_stream(CLIENT_STREAM, headers())
    async with stream:
        for _ in range(10):
            await stream.send(frame(pb2.EchoRequest(payload=b"x" * 100).SerializeToString()))
        await stream.end()
        (message,) = await read_messages(stream)
        status = parse_trailers(await stream.trailers())
    assert status.code is StatusCode.OK
    assert pb2.EchoResponse.FromString(message).message == "10 messages, 1000 bytes"


async def test_bidi_ping_pong(peer: Peer) -> None:
    """Full duplex: each response arrives before the next request is sent (200 rounds)."""
    pool = peer.pool()
    stream = await pool.open_stream(BIDI, headers())
    reader = MessageReader()
    async with stream:
        for i in range(200):
            await stream.send(frame(pb2.EchoRequest(message=f"ping {i}").SerializeToString()))
            messages: list[bytes] = []
            while not messages:
                chunk = await asyncio.wait_for(stream.read(), 10)
                assert chunk, "the response ended early"
                messages = [payload for _, payload in reader.feed(chunk)]
            assert [pb2.EchoResponse.FromString(m).message for m in messages] == [f"ping {i}"]
        await stream.end()
        assert await stream.read() == b""
        status = parse_trailers(await stream.trailers())
    assert status.code is StatusCode.OK


async def test_bidi_concurrent_writer_and_reader(peer: Peer) -> None:
    """A writer task and a reader task on one stream, 64 KiB messages both ways."""
    pool = peer.pool()
    count, size = 100, 64 * 1024
    stream = await pool.open_stream(BIDI, headers())

    async def write() -> None:
        for i in range(count):
            request = pb2.EchoRequest(message=str(i), payload=bytes([i % 256]) * size)
            await stream.send(frame(request.SerializeToString()))
        await stream.end()

    async with stream:
        writer = asyncio.ensure_future(write())
        messages = await read_messages(stream)
        await writer
        status = parse_trailers(await stream.trailers())
    assert status.code is StatusCode.OK
    responses = [pb2.EchoResponse.FromString(m) for m in messages]
    assert [r.message for r in responses] == [str(i) for i in range(count)]
    assert all(r.payload == bytes([i % 256]) * size for i, r in enumerate(responses))


async def test_64k_messages_both_ways(peer: Peer) -> None:
    pool = peer.pool()
    payload = bytes(range(256)) * 256
    for _ in range(20):
        status, (response,), _ = await unary(pool, pb2.EchoRequest(payload=payload))
        assert status.code is StatusCode.OK
        assert response.payload == payload


async def test_8mib_messages_both_ways(peer: Peer) -> None:
    """Bigger than every window: the send side waits for WINDOW_UPDATEs, the receive side
    acknowledges as it reads; nothing stalls."""
    pool = peer.pool()
    payload = bytes(range(256)) * (8 * MiB // 256)
    status, (response,), _ = await asyncio.wait_for(
        unary(pool, pb2.EchoRequest(payload=payload)), 30
    )
    assert status.code is StatusCode.OK
    assert response.payload == payload
