"""Volume on one channel: a long bidi ping-pong with large messages, and thousands of unary
calls in flight; against grpcio's server and ours."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import asgi_grpc
from asgi_grpc import aio

from .conftest import IMPLS, Peer
from .servicer import pb2, pb2_grpc
from .support import server_process

KiB = 1024


async def test_bidi_ping_pong_1000_rounds_of_64_kib(peer: Peer) -> None:
    stub = peer.stub()
    call = stub.BidiStream(timeout=60)
    for i in range(1000):
        payload = i.to_bytes(4, "big") * (16 * KiB)  # 64 KiB, different every round
        await call.write(pb2.EchoRequest(message=str(i), payload=payload))
        reply = await call.read()
        assert reply.message == str(i)
        assert reply.payload == payload
    await call.done_writing()
    assert await call.read() is aio.EOF
    assert await call.code() is asgi_grpc.StatusCode.OK


@pytest.mark.parametrize("impl", IMPLS)
async def test_10000_unary_calls_500_in_flight(impl: str) -> None:
    """The server runs in its own process: this measures the client, on its own core."""
    async with server_process(impl) as (port, _), aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        await run_unary_load(pb2_grpc.EchoStub(ch))


async def run_unary_load(stub: Any) -> None:
    total, in_flight = 10_000, 500
    next_index = 0
    done = 0

    async def worker() -> None:
        nonlocal next_index, done
        while next_index < total:
            index = next_index
            next_index += 1
            reply = await stub.Unary(pb2.EchoRequest(message=str(index)), timeout=60)
            assert reply.message == str(index)
            done += 1

    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(in_flight))), 60)
    assert done == total
    print(f"{total} calls, {in_flight} in flight: {total / (loop.time() - start):.0f} calls/s")


async def test_unread_stream_does_not_block_other_calls(peer: Peer) -> None:
    """Flow control per stream: 32 MiB waiting unread on one stream must not stall the
    connection's other calls, and the stream is intact when finally read."""
    stub = peer.stub()
    payload = bytes(range(256)) * 4096  # 1 MiB
    idle = stub.ServerStream(pb2.EchoRequest(count=32, payload=payload))
    await idle.wait_for_connection()
    for i in range(20):
        reply = await asyncio.wait_for(stub.Unary(pb2.EchoRequest(message=str(i))), 5)
        assert reply.message == str(i)
    bidi = stub.BidiStream()
    await bidi.write(pb2.EchoRequest(payload=payload))
    assert (await asyncio.wait_for(bidi.read(), 5)).payload == payload
    await bidi.done_writing()
    count = 0
    async for reply in idle:
        assert reply.payload == payload
        count += 1
    assert count == 32


async def test_many_concurrent_streams(peer: Peer) -> None:
    stub = peer.stub()

    async def converse(n: int) -> None:
        call = stub.BidiStream(timeout=30)
        for i in range(20):
            await call.write(pb2.EchoRequest(message=f"{n}:{i}", payload=bytes(n)))
            reply = await call.read()
            assert reply.message == f"{n}:{i}"
        await call.done_writing()
        assert await call.read() is aio.EOF

    async def listen(n: int) -> None:
        call = stub.ServerStream(pb2.EchoRequest(count=50, payload=bytes(n)), timeout=30)
        assert [r.index async for r in call] == list(range(50))

    await asyncio.gather(*(converse(n) for n in range(100)), *(listen(n) for n in range(100)))
