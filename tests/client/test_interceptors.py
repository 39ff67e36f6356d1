"""grpc.aio client interceptors on asgi_grpc channels (grpcio's own base classes, and ours)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

import asgi_grpc

from .conftest import Peer
from .servicer import pb2, pb2_grpc


class Recorder(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """grpcio's interceptor bases: adds metadata and records what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    def _details(self, kind: str, details: Any) -> Any:
        self.seen.append((kind, details.method))
        metadata = (*tuple(details.metadata or ()), ("x-intercepted", kind))
        return details._replace(metadata=metadata)

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details("uu", details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details("us", details), request)

    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details("su", details), requests)

    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details("ss", details), requests)


class Cache(asgi_grpc.aio.UnaryUnaryClientInterceptor):
    """Ours: answers some calls without sending them."""

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if request.message == "cached":
            return pb2.EchoResponse(message="from cache")
        return await continuation(details, request)


class Retry(asgi_grpc.aio.UnaryUnaryClientInterceptor):
    """Awaits the call and retries once on an error status."""

    def __init__(self) -> None:
        self.attempts = 0

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        for _ in range(2):
            self.attempts += 1
            call = await continuation(details, request)
            if await call.code() is asgi_grpc.StatusCode.OK:
                return call
            request = pb2.EchoRequest(message="fixed")
        return call


def _requests(n: int) -> Any:
    async def gen() -> Any:
        for i in range(n):
            yield pb2.EchoRequest(message=str(i))

    return gen()


async def test_all_four_kinds_see_and_change_the_call(peer: Peer) -> None:
    recorder = Recorder()
    channel = asgi_grpc.aio.insecure_channel(peer.target, interceptors=[recorder])
    peer.channels.append(channel)
    stub = pb2_grpc.EchoStub(channel)
    call = stub.Unary(pb2.EchoRequest(message="metadata"))
    reply = await call
    assert ("x-intercepted", "uu") in eval(reply.message)  # the servicer echoes the metadata
    assert await call.code() is asgi_grpc.StatusCode.OK
    assert ("initial-key", "iv") in tuple(await call.initial_metadata())
    assert [r.index async for r in stub.ServerStream(pb2.EchoRequest(count=3))] == [0, 1, 2]
    assert (await stub.ClientStream(_requests(4))).index == 4
    assert [r.message async for r in stub.BidiStream(_requests(2))] == ["0", "1"]
    bidi = stub.BidiStream()
    await bidi.write(pb2.EchoRequest(message="w"))
    assert (await bidi.read()).message == "w"
    await bidi.done_writing()
    assert await bidi.code() is asgi_grpc.StatusCode.OK
    kinds = [kind for kind, _ in recorder.seen]
    assert kinds == ["uu", "us", "su", "ss", "ss"]
    assert recorder.seen[0][1] == b"/asgi_grpc.test.Echo/Unary"  # bytes, as grpc.aio


async def test_short_circuit_and_errors(peer: Peer) -> None:
    channel = asgi_grpc.aio.insecure_channel(peer.target, interceptors=[Cache()])
    peer.channels.append(channel)
    stub = pb2_grpc.EchoStub(channel)
    call = stub.Unary(pb2.EchoRequest(message="cached"))
    assert (await call).message == "from cache"
    assert await call.code() is asgi_grpc.StatusCode.OK
    assert peer.servicer.calls == 0
    with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
        await stub.Unary(pb2.EchoRequest(message="abort:NOT_FOUND:gone"))
    assert info.value.code() is asgi_grpc.StatusCode.NOT_FOUND


async def test_an_interceptor_can_retry(peer: Peer) -> None:
    retry = Retry()
    channel = asgi_grpc.aio.insecure_channel(peer.target, interceptors=[retry])
    peer.channels.append(channel)
    reply = await pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="abort:UNAVAILABLE:x"))
    assert reply.message == "fixed"
    assert retry.attempts == 2


async def test_cancel_through_an_interceptor(peer: Peer) -> None:
    channel = asgi_grpc.aio.insecure_channel(peer.target, interceptors=[Recorder()])
    peer.channels.append(channel)
    call = pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="block"))
    await asyncio.wait_for(peer.servicer.started.wait(), 5)
    assert call.cancel()
    assert await call.code() is asgi_grpc.StatusCode.CANCELLED
    assert call.cancelled()
