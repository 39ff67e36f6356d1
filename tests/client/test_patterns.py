"""The four call patterns, as a grpc.aio user writes them, against grpcio's server and ours,
over h2c, TLS, mutual TLS and a unix socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import asgi_grpc
from asgi_grpc import aio

from .conftest import Peer
from .servicer import pb2

StatusCode = asgi_grpc.StatusCode


async def test_unary_unary(any_peer: Peer) -> None:
    stub = any_peer.stub()
    reply = await stub.Unary(pb2.EchoRequest(message="hello", payload=b"\x00\xff" * 100))
    assert reply.message == "hello"
    assert reply.payload == b"\x00\xff" * 100
    call = stub.Unary(pb2.EchoRequest(message="again"))
    assert (await call).message == "again"
    assert await call.code() is StatusCode.OK
    assert await call.details() in ("", None)
    assert call.done()
    assert not call.cancelled()


async def test_unary_stream_async_for(any_peer: Peer) -> None:
    stub = any_peer.stub()
    call = stub.ServerStream(pb2.EchoRequest(count=5, payload=b"p"))
    replies = [reply async for reply in call]
    assert [r.index for r in replies] == [0, 1, 2, 3, 4]
    assert all(r.payload == b"p" for r in replies)
    assert await call.code() is StatusCode.OK


async def test_unary_stream_read_until_eof(any_peer: Peer) -> None:
    stub = any_peer.stub()
    call = stub.ServerStream(pb2.EchoRequest(count=3))
    got = []
    while (reply := await call.read()) is not aio.EOF:
        got.append(reply.index)
    assert got == [0, 1, 2]
    assert await call.read() is aio.EOF  # stays at EOF
    assert await call.code() is StatusCode.OK
    # No responses at all: EOF at once.
    empty = stub.ServerStream(pb2.EchoRequest(count=0))
    assert await empty.read() is aio.EOF


async def test_stream_unary_sync_iterator(any_peer: Peer) -> None:
    stub = any_peer.stub()
    requests = (pb2.EchoRequest(payload=b"x" * i) for i in range(10))
    reply = await stub.ClientStream(requests)
    assert reply.index == 10
    assert reply.message == str(sum(range(10)))


async def test_stream_unary_async_iterator(any_peer: Peer) -> None:
    stub = any_peer.stub()

    async def requests() -> AsyncIterator[Any]:
        for i in range(7):
            yield pb2.EchoRequest(payload=b"y" * i)

    reply = await stub.ClientStream(requests())
    assert (reply.index, reply.message) == (7, str(sum(range(7))))
    # An empty stream of requests is a valid call.
    reply = await stub.ClientStream(iter(()))
    assert (reply.index, reply.message) == (0, "0")


async def test_stream_unary_write_done_writing(any_peer: Peer) -> None:
    stub = any_peer.stub()
    call = stub.ClientStream()
    for i in range(4):
        await call.write(pb2.EchoRequest(payload=b"z" * i))
    await call.done_writing()
    reply = await call
    assert (reply.index, reply.message) == (4, "6")
    assert await call.code() is StatusCode.OK


async def test_stream_stream_sync_iterator(any_peer: Peer) -> None:
    stub = any_peer.stub()

    def requests() -> Iterator[Any]:
        for i in range(5):
            yield pb2.EchoRequest(message=f"m{i}")

    call = stub.BidiStream(requests())
    assert [r.message async for r in call] == [f"m{i}" for i in range(5)]
    assert await call.code() is StatusCode.OK


async def test_stream_stream_async_iterator(any_peer: Peer) -> None:
    stub = any_peer.stub()

    async def requests() -> AsyncIterator[Any]:
        for i in range(5):
            yield pb2.EchoRequest(message=f"a{i}")

    call = stub.BidiStream(requests())
    got = []
    while (reply := await call.read()) is not aio.EOF:
        got.append(reply.message)
    assert got == [f"a{i}" for i in range(5)]


async def test_stream_stream_write_read_ping_pong(any_peer: Peer) -> None:
    stub = any_peer.stub()
    call = stub.BidiStream()
    for i in range(20):
        await call.write(pb2.EchoRequest(message=str(i)))
        reply = await call.read()
        assert reply.message == str(i)  # full duplex: each answer before the next request
    await call.done_writing()
    assert await call.read() is aio.EOF
    assert await call.code() is StatusCode.OK


async def test_stream_stream_server_ends_first(any_peer: Peer) -> None:
    """The server returns while the client still could write: the call ends OK."""
    stub = any_peer.stub()
    call = stub.BidiStream()
    await call.write(pb2.EchoRequest(message="one"))
    assert (await call.read()).message == "one"
    await call.write(pb2.EchoRequest(message="stop"))
    assert await call.read() is aio.EOF
    assert await call.code() is StatusCode.OK


@pytest.mark.parametrize("size", [0, 1, 16 * 1024 + 1, 1024 * 1024])
async def test_message_sizes_round_trip(any_peer: Peer, size: int) -> None:
    stub = any_peer.stub()
    payload = bytes(range(256)) * (size // 256) + b"e" * (size % 256)
    reply = await stub.Unary(pb2.EchoRequest(payload=payload))
    assert reply.payload == payload
    call = stub.BidiStream(iter([pb2.EchoRequest(payload=payload)] * 3))
    assert [r.payload async for r in call] == [payload] * 3
