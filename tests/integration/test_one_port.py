"""REST and gRPC on one Hypercorn port: a Starlette app and the Echo service in one ASGI app,
reached by httpx (HTTP/1.1 and h2c) and grpcio (sync and aio) at the same time."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import httpx
import pytest

from tests.integration.echo_app import (
    SERVICE,
    STYLES,
    Lifespan,
    MethodRecorder,
    build,
    pb2,
    pb2_grpc,
)
from tests.integration.servers import Running, in_process


async def check_rest(url: str, *, http2: bool) -> None:
    async with httpx.AsyncClient(base_url=url, http1=not http2, http2=http2, timeout=10) as client:
        response = await client.get("/health")
        assert response.status_code == 200
        assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        assert response.json() == {
            "status": "ok",
            "http_version": "2" if http2 else "1.1",
            "started_by_lifespan": True,
        }
        posted = await client.post("/echo", json={"n": [1, 2, 3]})
        assert posted.status_code == 200
        assert posted.json() == {"echo": {"n": [1, 2, 3]}}
        missing = await client.get("/nope")
        assert missing.status_code == 404


async def check_grpc_aio(target: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb2_grpc.EchoStub(channel)
        reply = await stub.Unary(pb2.EchoRequest(message="aio", payload=b"\x00\xff"), timeout=10)
        assert (reply.message, reply.payload) == ("aio", b"\x00\xff")
        streamed = [r.index async for r in stub.ServerStream(pb2.EchoRequest(count=5), timeout=10)]
        assert streamed == [0, 1, 2, 3, 4]
        # Bidi ping-pong: each reply arrives before the next request is sent (full duplex).
        call = stub.BidiStream(timeout=10)
        for word in ("a", "b", "c"):
            await call.write(pb2.EchoRequest(message=word))
            assert (await call.read()).message == word
        await call.done_writing()
        assert await call.read() == grpc.aio.EOF
        assert await call.code() == grpc.StatusCode.OK


def check_grpc_sync(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = pb2_grpc.EchoStub(channel)
        assert stub.Unary(pb2.EchoRequest(message="sync"), timeout=10).message == "sync"
        requests = iter([pb2.EchoRequest(message=m) for m in "xyz"])
        assert stub.ClientStream(requests, timeout=10).message == "x,y,z"


async def check_unimplemented(target: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        for method in (f"/{SERVICE}/NoSuchMethod", "/no.such.Service/Call"):
            call = channel.unary_unary(method)(b"", timeout=10)
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call
            assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED, method


async def check_all(server: Running) -> None:
    """Every client at once on the same port (gRPC sync calls block: they get a thread)."""
    await asyncio.gather(
        check_rest(server.url, http2=False),
        check_rest(server.url, http2=True),
        check_grpc_aio(server.target),
        asyncio.to_thread(check_grpc_sync, server.target),
    )


@pytest.mark.parametrize("style", STYLES)
async def test_rest_and_grpc_share_one_port(style: str) -> None:
    lifespan = Lifespan()
    recorder = MethodRecorder()
    async with in_process(build(style, lifespan=lifespan, recorder=recorder)) as server:
        await check_all(server)
        await check_all(server)  # and again, on a server that has served both kinds
        await check_unimplemented(server.target)
    assert lifespan.events == ["startup", "shutdown"]
    # A Starlette Mount sets root_path and keeps the full path: the gRPC app sees (and must
    # route on) the whole method name, not the part below the mount point.
    assert f"/{SERVICE}/Unary" in recorder.methods
    assert f"/{SERVICE}/BidiStream" in recorder.methods
    assert all(method.startswith("/") and method.count("/") == 2 for method in recorder.methods)


@pytest.mark.parametrize("style", STYLES)
async def test_many_concurrent_calls_of_both_kinds(style: str) -> None:
    """REST and gRPC requests interleaved on shared HTTP/2 connections, 50 of each in flight."""
    async with in_process(build(style)) as server:
        async with (
            httpx.AsyncClient(base_url=server.url, http1=False, http2=True, timeout=20) as http,
            grpc.aio.insecure_channel(server.target) as channel,
        ):
            stub = pb2_grpc.EchoStub(channel)

            async def rest(i: int) -> Any:
                return (await http.post("/echo", json=i)).json()["echo"]

            async def rpc(i: int) -> Any:
                return int((await stub.Unary(pb2.EchoRequest(message=str(i)), timeout=20)).message)

            results = await asyncio.gather(*(f(i) for i in range(50) for f in (rest, rpc)))
        assert results == [i for i in range(50) for _ in range(2)]
