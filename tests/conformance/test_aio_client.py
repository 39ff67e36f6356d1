"""grpc.aio calls and channels without interceptors: one scenario, both libraries.

Cancelled readers, done_writing() after cancel(), a closed channel's connectivity, targets that
cannot connect, metadata of the wrong type and errors that cross process boundaries (pickle),
each asserting what grpcio does (its client against its aio server; ours against ours).
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import pytest

from . import aio_peer
from .aio_peer import FAIL_DETAILS, Peer, methods

LIMIT = 10


@pytest.fixture
async def peer(grpc: ModuleType) -> AsyncIterator[Peer]:
    started = await aio_peer.start(grpc)
    yield started
    await started.server.stop(None)


# ---------------------------------------------------------------- cancelled readers


@pytest.mark.parametrize("received_first", [0, 2])
@pytest.mark.parametrize("pause", [0.0, 0.1])
@pytest.mark.parametrize("style", ["read", "async_for"])
async def test_cancelled_reader_task_cancels_the_call(
    grpc: ModuleType, peer: Peer, style: str, received_first: int, pause: float
) -> None:
    async with peer.channel() as channel:
        call = methods(channel)[1](b"slow" if received_first else b"hold")
        received: list[bytes] = []

        async def reader() -> None:
            if style == "read":
                while True:
                    received.append(await call.read())
            else:
                async for response in call:
                    received.append(response)

        task = asyncio.ensure_future(reader())
        await asyncio.sleep(0)  # the reader has started
        if pause or received_first:
            await asyncio.sleep(0.1)  # the reader is waiting (for the first response, or the third)
        assert len(received) == received_first
        task.cancel()
        # Asked before the reader has even seen its cancellation.
        assert await call.code() == grpc.StatusCode.CANCELLED
        with pytest.raises(asyncio.CancelledError):
            await task
        assert call.cancelled()
        assert call.done()


async def test_cancelled_awaiting_task_cancels_the_unary_call(grpc: ModuleType, peer: Peer) -> None:
    async with peer.channel() as channel:
        call = methods(channel)[0](b"slow")

        async def wait() -> Any:
            return await call

        task = asyncio.ensure_future(wait())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await call.code() == grpc.StatusCode.CANCELLED


@pytest.mark.parametrize("written", [False, True])
@pytest.mark.parametrize("kind", ["stream_unary", "stream_stream"])
async def test_done_writing_after_cancel_is_a_no_op(
    grpc: ModuleType, peer: Peer, kind: str, written: bool
) -> None:
    name = "Collect" if kind == "stream_unary" else "Echo"
    async with peer.channel() as channel:
        call = getattr(channel, kind)(aio_peer.method(name))()
        if written:
            await call.write(b"a")
        assert call.cancel() is True
        await asyncio.wait_for(call.done_writing(), LIMIT)
        await asyncio.wait_for(call.done_writing(), LIMIT)
        with pytest.raises(asyncio.InvalidStateError):
            await call.write(b"b")
        assert await call.code() == grpc.StatusCode.CANCELLED


@pytest.mark.parametrize("kind", ["stream_unary", "stream_stream"])
async def test_done_writing_after_failure_is_a_no_op(
    grpc: ModuleType, peer: Peer, kind: str
) -> None:
    name = "Collect" if kind == "stream_unary" else "Echo"
    async with peer.channel() as channel:
        call = getattr(channel, kind)(aio_peer.method(name))()
        await call.write(b"fail")
        assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT
        await asyncio.wait_for(call.done_writing(), LIMIT)
        assert await call.details() == FAIL_DETAILS


async def test_debug_error_string_of_plain_calls(grpc: ModuleType, peer: Peer) -> None:
    async with peer.channel() as channel:
        call = methods(channel)[1](b"fail")
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for _ in call:
                pass
        assert isinstance(await call.debug_error_string(), str)
        assert isinstance(raised.value.debug_error_string(), str)


# ---------------------------------------------------------------- channels


async def test_wait_for_shutdown_state_on_a_closed_channel(grpc: ModuleType, peer: Peer) -> None:
    channel = peer.channel()
    await channel.close()
    assert channel.get_state() == grpc.ChannelConnectivity.SHUTDOWN
    with pytest.raises(grpc.aio.UsageError):
        await asyncio.wait_for(
            channel.wait_for_state_change(grpc.ChannelConnectivity.SHUTDOWN), LIMIT
        )


async def test_closed_channel_refuses_calls(grpc: ModuleType, peer: Peer) -> None:
    channel = peer.channel()
    await channel.close()
    with pytest.raises(grpc.aio.UsageError):
        await methods(channel)[0](b"x")


@pytest.mark.parametrize(
    ("target", "code"),
    [("", "UNKNOWN"), ("dns:///", "UNKNOWN"), ("[::]:0", "UNAVAILABLE")],
)
async def test_unusable_target_fails_calls_not_construction(
    grpc: ModuleType, target: str, code: str
) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        call = methods(channel)[0](b"x", timeout=LIMIT)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        assert raised.value.code() == grpc.StatusCode[code]
        assert await call.code() == grpc.StatusCode[code]


@pytest.mark.parametrize(("target", "code"), [("", "UNKNOWN"), ("[::]:0", "UNAVAILABLE")])
def test_unusable_target_fails_blocking_calls(grpc: ModuleType, target: str, code: str) -> None:
    # The blocking channel wraps the aio one: the same target rules reach it.
    with grpc.insecure_channel(target) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            channel.unary_unary(aio_peer.method("Unary"))(b"x", timeout=LIMIT)
        assert raised.value.code() == grpc.StatusCode[code]


def test_channel_built_outside_an_event_loop(grpc: ModuleType, peer_outside_loop: str) -> None:
    # The pattern of code written before asyncio.run(): a loop is set, not running, when the
    # channel is built; the channel is used once it runs.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        channel = grpc.aio.insecure_channel(peer_outside_loop)

        async def use() -> bytes:
            response: bytes = await methods(channel)[0](b"hello")
            await channel.close()
            return response

        assert loop.run_until_complete(use()) == b"hello"
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture
def peer_outside_loop(grpc: ModuleType) -> Any:
    """A server on a thread of its own, for tests that run outside any event loop."""
    import threading

    ready: Any = {}
    started = threading.Event()
    stop: list[Any] = []

    def serve() -> None:
        async def main() -> None:
            server = await aio_peer.start(grpc)
            ready["target"] = server.target
            done = asyncio.Event()
            stop.append((asyncio.get_running_loop(), done))
            started.set()
            await done.wait()
            await server.server.stop(None)

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(LIMIT)
    yield ready["target"]
    loop, done = stop[0]
    loop.call_soon_threadsafe(done.set)
    thread.join(LIMIT)


# ---------------------------------------------------------------- metadata types


BAD_METADATA = {
    "int": (42, TypeError),
    "int value": ((("key", 42),), TypeError),
    "int key": (((42, "value"),), TypeError),
    "float value": ([("key", 1.5)], TypeError),
    "None binary value": ([("key-bin", None)], TypeError),
    "pair of three": ((("key", "value", "extra"),), ValueError),
}


@pytest.mark.parametrize("bad", BAD_METADATA)
@pytest.mark.parametrize("kind", ["unary_unary", "unary_stream", "stream_unary", "stream_stream"])
async def test_metadata_of_the_wrong_type_raises_at_once(
    grpc: ModuleType, peer: Peer, bad: str, kind: str
) -> None:
    async with peer.channel() as channel:
        multicallable = getattr(channel, kind)(aio_peer.method("Unary"))
        request = b"x" if kind.startswith("unary") else iter([b"x"])
        metadata, error = BAD_METADATA[bad]
        with pytest.raises(error):
            # grpcio raises a wrong shape (42, a triple) at the call site and a wrong key or
            # value type when the call starts; asgi_grpc raises all of them at the call site.
            # Either way it is this error, before anything is sent.
            call = multicallable(request, metadata=metadata)
            await call if kind.endswith("unary") else [r async for r in call]


@pytest.mark.parametrize(
    "metadata",
    [
        (("x-k", b"bytes"),),
        ((b"x-k", "v"),),
        [("x-k", "v")],
        {"x-k": "v"}.items(),
        (("x-k", None),),
    ],
    ids=["bytes value", "bytes key", "list", "dict items", "None value"],
)
async def test_metadata_shapes_grpcio_accepts(grpc: ModuleType, peer: Peer, metadata: Any) -> None:
    async with peer.channel() as channel:
        response = await methods(channel)[0](b"meta", metadata=metadata)
        assert response in (b"x-k=v", b"x-k=bytes", b"x-k=")


async def test_metadata_from_a_generator(grpc: ModuleType, peer: Peer) -> None:
    async with peer.channel() as channel:
        pairs = (pair for pair in [("x-a", "1"), ("x-b", "2")])
        assert await methods(channel)[0](b"meta", metadata=pairs) == b"x-a=1\nx-b=2"


# ---------------------------------------------------------------- errors cross processes


async def test_aio_rpc_error_pickles(grpc: ModuleType, peer: Peer) -> None:
    async with peer.channel() as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await methods(channel)[0](b"fail")
    error = raised.value
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert copy.details() == FAIL_DETAILS
    assert copy.trailing_metadata() == error.trailing_metadata()
    assert copy.initial_metadata() == error.initial_metadata()
    assert ("err-key", "err-value") in tuple(copy.trailing_metadata())
    assert copy.debug_error_string() == error.debug_error_string()
    assert str(copy) == str(error)


def test_constructed_aio_rpc_error_pickles(grpc: ModuleType) -> None:
    metadata = grpc.aio.Metadata(("a", "1"), ("b-bin", b"\x00"))
    error = grpc.aio.AioRpcError(
        grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), metadata, "missing", "debug"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code(), copy.details(), copy.debug_error_string()) == (
        grpc.StatusCode.NOT_FOUND,
        "missing",
        "debug",
    )
    assert copy.trailing_metadata() == metadata
