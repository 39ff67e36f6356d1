"""Connectivity states, channel_ready, wait_for_ready and reconnect backoff."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest

import asgi_grpc
from asgi_grpc import ChannelConnectivity

from .conftest import Peer, StartPeer
from .servicer import pb2, pb2_grpc

FAST_BACKOFF = [("grpc.initial_reconnect_backoff_ms", 50), ("grpc.max_reconnect_backoff_ms", 200)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_states_from_idle_to_ready_to_shutdown(peer: Peer) -> None:
    channel = peer.channel()
    assert channel.get_state() is ChannelConnectivity.IDLE
    assert channel.get_state(try_to_connect=True) in (
        ChannelConnectivity.IDLE,
        ChannelConnectivity.CONNECTING,
    )
    await asyncio.wait_for(channel.channel_ready(), 5)
    assert channel.get_state() is ChannelConnectivity.READY
    waiter = asyncio.ensure_future(channel.wait_for_state_change(ChannelConnectivity.READY))
    await channel.close()
    await asyncio.wait_for(waiter, 5)
    assert channel.get_state() is ChannelConnectivity.SHUTDOWN
    # The values are grpcio's, so code comparing by value keeps working.
    assert ChannelConnectivity.READY.value == grpc.ChannelConnectivity.READY.value


async def test_a_call_makes_the_channel_ready(peer: Peer) -> None:
    channel = peer.channel()
    await pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="x"))
    assert channel.get_state() is ChannelConnectivity.READY


async def test_unreachable_is_transient_failure_and_unavailable() -> None:
    channel = asgi_grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}", options=FAST_BACKOFF)
    try:
        with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
            await asyncio.wait_for(pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest()), 5)
        assert info.value.code() is asgi_grpc.StatusCode.UNAVAILABLE
        assert channel.get_state() is ChannelConnectivity.TRANSIENT_FAILURE
    finally:
        await channel.close()


async def test_channel_ready_and_wait_for_ready_wait_for_a_late_server(
    start_peer: StartPeer,
) -> None:
    port = free_port()
    channel = asgi_grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=FAST_BACKOFF)
    stub = pb2_grpc.EchoStub(channel)
    try:
        ready = asyncio.ensure_future(channel.channel_ready())
        waiting = asyncio.ensure_future(
            stub.Unary(pb2.EchoRequest(message="patient"), wait_for_ready=True, timeout=10)
        )
        # Without wait_for_ready the same call fails at once.
        with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
            await stub.Unary(pb2.EchoRequest(message="hasty"), timeout=10)
        assert info.value.code() is asgi_grpc.StatusCode.UNAVAILABLE
        await asyncio.sleep(0.3)
        assert not ready.done()
        assert not waiting.done()
        await start_peer("grpcio", "h2c", address=f"127.0.0.1:{port}")
        await asyncio.wait_for(ready, 5)
        assert (await asyncio.wait_for(waiting, 5)).message == "patient"
        assert channel.get_state() is ChannelConnectivity.READY
    finally:
        await channel.close()


async def test_wait_for_ready_still_honours_the_deadline() -> None:
    channel = asgi_grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}", options=FAST_BACKOFF)
    try:
        with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
            await pb2_grpc.EchoStub(channel).Unary(
                pb2.EchoRequest(), wait_for_ready=True, timeout=0.5
            )
        assert info.value.code() is asgi_grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        await channel.close()


async def test_a_dropped_connection_goes_back_to_idle(start_peer: StartPeer) -> None:
    peer = await start_peer("asgi_grpc", "h2c")
    channel = peer.channel()
    await asyncio.wait_for(channel.channel_ready(), 5)
    await peer.server.stop(None)
    await asyncio.wait_for(channel.wait_for_state_change(ChannelConnectivity.READY), 5)
    assert channel.get_state() is not ChannelConnectivity.READY
