"""A mixed, seeded workload on one pool with small windows: every call that is not given up
on completes, and the connection is left with no stream and its full receive window."""

from __future__ import annotations

import asyncio
import random

from asgi_grpc._core import MessageReader, StatusCode, frame, parse_trailers
from asgi_grpc.client._connection import ConnectionSettings
from asgi_grpc.client._pool import ConnectionPool

from .conftest import Peer
from .support import BIDI, SERVER_STREAM, UNARY, headers, pb2, read_messages


async def _unary(pool: ConnectionPool, rng: random.Random) -> None:
    payload = rng.randbytes(rng.choice([0, 10, 1000, 70_000, 300_000]))
    stream = await pool.request(
        UNARY, headers(), frame(pb2.EchoRequest(payload=payload).SerializeToString())
    )
    async with stream:
        (message,) = await read_messages(stream)
        assert pb2.EchoResponse.FromString(message).payload == payload
        assert parse_trailers(await stream.trailers()).code is StatusCode.OK


async def _abandoned_stream(pool: ConnectionPool, rng: random.Random) -> None:
    request = pb2.EchoRequest(payload=b"s" * 20_000, count=500)
    stream = await pool.request(SERVER_STREAM, headers(), frame(request.SerializeToString()))
    async with stream:
        for _ in range(rng.randrange(1, 20)):
            if not await stream.read():
                break
        # Leaving the block closes the stream early: RST_STREAM(CANCEL).


async def _bidi(pool: ConnectionPool, rng: random.Random) -> None:
    stream = await pool.open_stream(BIDI, headers())
    reader = MessageReader()
    async with stream:
        for i in range(rng.randrange(1, 10)):
            payload = rng.randbytes(rng.choice([1, 5000, 100_000]))
            await stream.send(
                frame(pb2.EchoRequest(message=str(i), payload=payload).SerializeToString())
            )
            got: list[bytes] = []
            while not got:
                chunk = await stream.read()
                assert chunk
                got = [p for _, p in reader.feed(chunk)]
            assert pb2.EchoResponse.FromString(got[0]).payload == payload
        await stream.end()
        assert await stream.read() == b""
        assert parse_trailers(await stream.trailers()).code is StatusCode.OK


async def test_mixed_workload_leaves_a_clean_connection(h2c_peer: Peer) -> None:
    settings = ConnectionSettings(stream_window=128 * 1024, connection_window=512 * 1024)
    pool = h2c_peer.pool(settings=settings)
    rng = random.Random(1234)
    kinds = [_unary, _unary, _abandoned_stream, _bidi]
    tasks = [rng.choice(kinds)(pool, random.Random(rng.random())) for _ in range(300)]
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    (connection,) = pool.connections
    await asyncio.sleep(0.2)  # late DATA for the abandoned streams arrives and is acknowledged
    assert connection.active_streams == 0
    assert not connection._streams
    # Everything received was handed back (h2 sends the update once half the window is used).
    assert connection._h2.inbound_flow_control_window >= settings.connection_window // 2
    await _unary(pool, rng)
