"""What every one-port server must answer: REST over httpx (HTTP/1.1 or h2c) and gRPC over
grpcio (aio and sync), shared by the in-process and CLI tests."""

from __future__ import annotations

import grpc
import httpx
import pytest

from tests.integration.echo_app import SERVICE, pb2, pb2_grpc


def wait_until_serving(target: str, timeout: float = 60) -> None:
    """One call that may wait in the socket's backlog while a server process starts up."""
    with grpc.insecure_channel(target) as channel:
        stub = pb2_grpc.EchoStub(channel)
        reply = stub.Unary(pb2.EchoRequest(message="ready"), timeout=timeout, wait_for_ready=True)
        assert reply.message == "ready"


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
