"""All four RPC patterns, async and sync handlers, from grpcio clients over every transport."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from tests.server.conftest import TRANSPORTS
from tests.server.servicer import Events, SyncEcho, pb2, pb2_grpc


def requests(n: int, payload: bytes = b"") -> Any:
    async def gen() -> Any:
        for i in range(n):
            yield pb2.EchoRequest(message=str(i), payload=payload)

    return gen()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_all_patterns_async_handlers(start_server: Any, transport: str) -> None:
    async with start_server(transport=transport) as endpoint, endpoint.aio_channel() as channel:
        stub = pb2_grpc.EchoStub(channel)
        reply = await stub.Unary(pb2.EchoRequest(message="hello", payload=b"\x00" * 1000))
        assert reply.message == "hello"
        assert reply.payload == b"\x00" * 1000

        indexes = [r.index async for r in stub.ServerStream(pb2.EchoRequest(count=25))]
        assert indexes == list(range(25))

        reply = await stub.ClientStream(requests(17, b"ab"))
        assert (reply.index, reply.message) == (17, "34")

        messages = [r.message async for r in stub.BidiStream(requests(12))]
        assert messages == [str(i) for i in range(12)]


@pytest.mark.parametrize("transport", ["h2c", "tls"])
async def test_all_patterns_sync_grpcio_client(start_server: Any, transport: str) -> None:
    async with start_server(transport=transport) as endpoint:

        def client() -> tuple[Any, ...]:
            with endpoint.sync_channel() as channel:
                stub = pb2_grpc.EchoStub(channel)
                unary = stub.Unary(pb2.EchoRequest(message="sync"), timeout=5)
                stream = [r.index for r in stub.ServerStream(pb2.EchoRequest(count=5), timeout=5)]
                client_stream = stub.ClientStream(
                    iter([pb2.EchoRequest(payload=b"xyz")] * 4), timeout=5
                )
                bidi = [
                    r.message
                    for r in stub.BidiStream(
                        iter(pb2.EchoRequest(message=m) for m in "abc"), timeout=5
                    )
                ]
                return unary.message, stream, client_stream.message, bidi

        result = await asyncio.to_thread(client)
        assert result == ("sync", [0, 1, 2, 3, 4], "12", ["a", "b", "c"])


async def test_sync_handlers_run_on_the_migration_pool(start_server: Any) -> None:
    events = Events()
    pool = ThreadPoolExecutor(4, thread_name_prefix="migration")
    try:
        async with start_server(SyncEcho(events), migration_thread_pool=pool) as endpoint:
            async with endpoint.aio_channel() as channel:
                stub = pb2_grpc.EchoStub(channel)
                assert (await stub.Unary(pb2.EchoRequest(message="s"))).message == "s"
                got = [r.index async for r in stub.ServerStream(pb2.EchoRequest(count=30))]
                assert got == list(range(30))
                assert (await stub.ClientStream(requests(9))).index == 9
                assert [r.message async for r in stub.BidiStream(requests(4))] == list("0123")
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.Unary(pb2.EchoRequest(message="abort:NOT_FOUND:sync abort"))
                assert info.value.code() == grpc.StatusCode.NOT_FOUND
                assert info.value.details() == "sync abort"
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.Unary(pb2.EchoRequest(message="raise"))
                assert info.value.code() == grpc.StatusCode.UNKNOWN
                assert "sync handler failed" in (info.value.details() or "")
                call = stub.Unary(pb2.EchoRequest(message="metadata"))
                await call
                assert ("initial-key", "sync") in tuple(await call.initial_metadata())
                assert ("trailing-key", "sync") in tuple(await call.trailing_metadata())
        assert events.thread_ids
        main = asyncio.get_running_loop()
        assert main is not None
    finally:
        pool.shutdown(wait=True)


async def test_context_read_and_write(start_server: Any) -> None:
    async with start_server() as endpoint, endpoint.aio_channel() as channel:
        stub = pb2_grpc.EchoStub(channel)
        reply = await stub.ClientStream(requests(6), metadata=(("use-read", "1"),))
        assert (reply.index, reply.message) == (6, "read")
        written = [
            r.index async for r in stub.ServerStream(pb2.EchoRequest(message="write", count=7))
        ]
        assert written == list(range(7))


async def test_bidi_ping_pong(start_server: Any) -> None:
    async with start_server() as endpoint, endpoint.aio_channel() as channel:
        call = pb2_grpc.EchoStub(channel).BidiStream()
        for i in range(200):
            await call.write(pb2.EchoRequest(message=str(i), payload=b"p" * 1024))
            reply = await call.read()
            assert reply.message == str(i)
        await call.done_writing()
        assert await call.read() is grpc.aio.EOF
        assert await call.code() == grpc.StatusCode.OK


async def test_large_messages_both_ways(start_server: Any) -> None:
    options = [
        ("grpc.max_receive_message_length", 16 << 20),
        ("grpc.max_send_message_length", 16 << 20),
    ]
    big = bytes(range(256)) * (3 << 12)  # 3 MiB
    async with start_server(options=options) as endpoint, endpoint.aio_channel(options) as channel:
        stub = pb2_grpc.EchoStub(channel)
        reply = await stub.Unary(pb2.EchoRequest(payload=big))
        assert reply.payload == big
        reply = await stub.ClientStream(requests(8, big[: 1 << 20]))
        assert reply.message == str(8 << 20)
        got = [r async for r in stub.ServerStream(pb2.EchoRequest(count=4, payload=big))]
        assert all(r.payload == big for r in got)
