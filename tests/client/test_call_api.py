"""The grpc.aio call object API: metadata, status, errors, cancellation, callbacks, deadlines,
misuse; against grpcio's server and ours over h2c."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import grpc
import pytest

import asgi_grpc
from asgi_grpc import aio

from .conftest import Peer
from .servicer import pb2, pb2_grpc

StatusCode = asgi_grpc.StatusCode


async def rpc_error(awaitable: Any) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as info:
        await awaitable
    return info.value


# -- metadata and status ----------------------------------------------------------------------


async def test_metadata_round_trip_with_binary(peer: Peer) -> None:
    stub = peer.stub()
    sent = (("k1", "v1"), ("k1", "v2"), ("raw-bin", b"\x00\x01\xfe\xff"), ("empty", ""))
    call = stub.Unary(pb2.EchoRequest(message="metadata"), metadata=sent)
    reply = await call
    # The servicer reports the invocation metadata it saw, sorted.
    assert reply.message == repr(sorted(sent))
    initial = await call.initial_metadata()
    assert isinstance(initial, aio.Metadata)
    assert initial["initial-key"] == "iv"
    assert initial["initial-bin"] == b"\x00\x01"
    trailing = await call.trailing_metadata()
    assert isinstance(trailing, aio.Metadata)
    assert trailing["trailing-key"] == "tv"
    assert trailing["trailing-bin"] == b"\xff"
    assert await call.code() is StatusCode.OK


async def test_metadata_object_and_initial_metadata_before_response(peer: Peer) -> None:
    stub = peer.stub()
    metadata = aio.Metadata(("a", "1"), ("b-bin", b"\x02"))
    call = stub.Unary(pb2.EchoRequest(message="metadata"), metadata=metadata)
    initial = await call.initial_metadata()  # before the response is awaited
    assert initial["initial-key"] == "iv"
    assert (await call).message == repr(sorted([("a", "1"), ("b-bin", b"\x02")]))


async def test_streaming_metadata_awaited_before_reading(peer: Peer) -> None:
    """code/details/trailing metadata awaited first: the call ends, and the responses are
    kept for the reads that follow."""
    stub = peer.stub()
    call = stub.ServerStream(pb2.EchoRequest(count=4, payload=b"q"))
    assert await asyncio.wait_for(call.code(), 5) is StatusCode.OK
    assert await call.details() in ("", None)
    assert await call.trailing_metadata() == aio.Metadata()
    assert call.done()
    assert [r.index async for r in call] == [0, 1, 2, 3]
    call = stub.ServerStream(pb2.EchoRequest(count=2))
    assert await asyncio.wait_for(call.details(), 5) in ("", None)
    assert (await call.read()).index == 0
    assert (await call.read()).index == 1
    assert await call.read() is aio.EOF
    call = stub.BidiStream(iter([pb2.EchoRequest(message="x")] * 3))
    assert await asyncio.wait_for(call.code(), 5) is StatusCode.OK
    assert [r.message async for r in call] == ["x"] * 3
    call = stub.ServerStream(pb2.EchoRequest(count=2))
    assert await asyncio.wait_for(call.initial_metadata(), 5) == aio.Metadata()
    assert [r.index async for r in call] == [0, 1]


async def test_error_status_and_aio_rpc_error(peer: Peer) -> None:
    stub = peer.stub()
    error = await rpc_error(stub.Unary(pb2.EchoRequest(message="abort:NOT_FOUND:no such thing")))
    assert isinstance(error, asgi_grpc.RpcError)
    assert error.code() is StatusCode.NOT_FOUND
    assert error.code().value == grpc.StatusCode.NOT_FOUND.value
    assert error.details() == "no such thing"
    assert error.trailing_metadata()["abort-md"] == "yes"
    assert isinstance(error.initial_metadata(), aio.Metadata)
    assert isinstance(error.debug_error_string(), str)
    assert error.debug_error_string()
    assert "NOT_FOUND" in repr(error)
    # The call object reports the same status.
    call = stub.Unary(pb2.EchoRequest(message="abort:INVALID_ARGUMENT:bad arg"))
    with pytest.raises(aio.AioRpcError):
        await call
    assert await call.code() is StatusCode.INVALID_ARGUMENT
    assert await call.details() == "bad arg"
    assert (await call.trailing_metadata())["abort-md"] == "yes"
    assert call.done()
    assert not call.cancelled()


async def test_error_keeps_initial_metadata_sent_before_abort(peer: Peer) -> None:
    stub = peer.stub()
    call = stub.Unary(pb2.EchoRequest(message="md_abort"))
    error = await rpc_error(call)
    assert error.code() is StatusCode.PERMISSION_DENIED
    assert error.details() == "after headers"
    assert error.initial_metadata()["early-key"] == "early"
    assert (await call.initial_metadata())["early-key"] == "early"


async def test_handler_exception_is_unknown(peer: Peer) -> None:
    stub = peer.stub()
    error = await rpc_error(stub.Unary(pb2.EchoRequest(message="raise")))
    assert error.code() is StatusCode.UNKNOWN
    assert "handler failed on purpose" in (error.details() or "")
    # Mid-stream: the responses sent before the failure arrive, then the error.
    call = stub.ServerStream(pb2.EchoRequest(message="raise", count=5))
    got = []
    with pytest.raises(aio.AioRpcError) as info:
        async for reply in call:
            got.append(reply.index)
    assert got == [0, 1]
    assert info.value.code() is StatusCode.UNKNOWN
    # read() reports the same.
    call = stub.ServerStream(pb2.EchoRequest(message="raise", count=5))
    assert (await call.read()).index == 0
    assert (await call.read()).index == 1
    with pytest.raises(aio.AioRpcError):
        await call.read()


async def test_unknown_method_is_unimplemented(peer: Peer) -> None:
    channel = peer.channel()
    error = await rpc_error(channel.unary_unary("/asgi_grpc.test.Echo/Nope")(b""))
    assert error.code() is StatusCode.UNIMPLEMENTED
    error = await rpc_error(channel.unary_stream("/no.Such/Method")(b"").read())
    assert error.code() is StatusCode.UNIMPLEMENTED
    # Raw bytes in and out without serializers.
    raw = channel.unary_unary("/asgi_grpc.test.Echo/Unary")
    reply = await raw(pb2.EchoRequest(message="raw").SerializeToString())
    assert pb2.EchoResponse.FromString(reply).message == "raw"


# -- cancellation, callbacks, done ------------------------------------------------------------


async def test_cancel_unary_reaches_the_server(peer: Peer) -> None:
    stub = peer.stub()
    call = stub.Unary(pb2.EchoRequest(message="block"))
    await asyncio.wait_for(peer.servicer.started.wait(), 5)
    assert not call.done()
    seen: list[Any] = []
    call.add_done_callback(seen.append)
    assert call.cancel() is True
    assert call.cancelled()
    assert call.done()
    assert call.cancel() is False  # already ended
    assert seen == [call]
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await call.code() is StatusCode.CANCELLED
    assert await call.details() == "Locally cancelled by application!"
    await asyncio.wait_for(peer.servicer.events.cancelled.wait(), 5)


async def test_cancel_stream_mid_way(peer: Peer) -> None:
    stub = peer.stub()
    call = stub.ServerStream(pb2.EchoRequest(count=100, delay_ms=20))
    assert (await call.read()).index == 0
    assert call.cancel()
    assert call.cancelled()
    with pytest.raises(asyncio.CancelledError):
        await call.read()
    assert await call.code() is StatusCode.CANCELLED
    await asyncio.wait_for(peer.servicer.events.cancelled.wait(), 5)
    # The channel still works after a reset stream.
    assert (await stub.Unary(pb2.EchoRequest(message="after"))).message == "after"


async def test_cancel_request_stream(peer: Peer) -> None:
    stub = peer.stub()
    call = stub.BidiStream()
    await call.write(pb2.EchoRequest(message="1"))
    assert (await call.read()).message == "1"
    assert call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call.read()
    assert await call.code() is StatusCode.CANCELLED
    call = stub.ClientStream()
    await call.write(pb2.EchoRequest())
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_cancelling_the_awaiting_task_cancels_the_call(peer: Peer) -> None:
    stub = peer.stub()
    call = stub.Unary(pb2.EchoRequest(message="block"))

    async def wait() -> Any:
        return await call

    task = asyncio.ensure_future(wait())
    await asyncio.wait_for(peer.servicer.started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(peer.servicer.events.cancelled.wait(), 5)
    assert call.cancelled()


async def test_done_callbacks(peer: Peer) -> None:
    stub = peer.stub()
    seen: list[tuple[str, Any]] = []
    call = stub.Unary(pb2.EchoRequest(message="x"))
    call.add_done_callback(lambda c: seen.append(("first", c)))
    call.add_done_callback(lambda c: seen.append(("second", c)))
    assert not call.done()
    await call
    assert seen == [("first", call), ("second", call)]
    call.add_done_callback(lambda c: seen.append(("late", c)))  # runs at once
    assert seen[-1] == ("late", call)
    stream = stub.ServerStream(pb2.EchoRequest(count=2))
    stream.add_done_callback(lambda c: seen.append(("stream", c)))
    assert [r.index async for r in stream] == [0, 1]
    assert seen[-1] == ("stream", stream)
    failed = stub.Unary(pb2.EchoRequest(message="abort:ABORTED:x"))
    failed.add_done_callback(lambda c: seen.append(("failed", c)))
    await rpc_error(failed)
    assert seen[-1] == ("failed", failed)


# -- deadlines ---------------------------------------------------------------------------------


async def test_time_remaining(peer: Peer) -> None:
    stub = peer.stub()
    call = stub.Unary(pb2.EchoRequest(message="time_remaining"), timeout=5)
    remaining = call.time_remaining()
    assert remaining is not None
    assert 4 < remaining <= 5
    # The deadline reached the server (grpc-timeout).
    server_remaining = float((await call).message)
    assert 3 < server_remaining <= 5
    no_deadline = stub.Unary(pb2.EchoRequest(message="x"))
    assert no_deadline.time_remaining() is None
    await no_deadline


async def test_timeout_is_deadline_exceeded(peer: Peer) -> None:
    stub = peer.stub()
    loop = asyncio.get_running_loop()
    start = loop.time()
    call = stub.Unary(pb2.EchoRequest(message="slow", delay_ms=3000), timeout=0.2)
    error = await rpc_error(call)
    assert error.code() is StatusCode.DEADLINE_EXCEEDED
    assert loop.time() - start < 1.5
    assert call.time_remaining() == 0
    assert await call.code() is StatusCode.DEADLINE_EXCEEDED
    # Streams: mid-way through the responses.
    call = stub.ServerStream(pb2.EchoRequest(count=100, delay_ms=50), timeout=0.3)
    got = 0
    with pytest.raises(aio.AioRpcError) as info:
        async for _ in call:
            got += 1
    assert info.value.code() is StatusCode.DEADLINE_EXCEEDED
    assert 0 < got < 100
    # A request stream that never ends.
    bidi = stub.BidiStream(timeout=0.2)
    await bidi.write(pb2.EchoRequest(message="x"))
    assert (await bidi.read()).message == "x"
    with pytest.raises(aio.AioRpcError) as info:
        await bidi.read()
    assert info.value.code() is StatusCode.DEADLINE_EXCEEDED


# -- wait_for_connection -----------------------------------------------------------------------


async def test_wait_for_connection(peer: Peer) -> None:
    stub = peer.stub()
    call = stub.Unary(pb2.EchoRequest(message="x"))
    assert await call.wait_for_connection() is None
    assert (await call).message == "x"
    await call.wait_for_connection()  # after the end too
    stream = stub.BidiStream()
    await stream.wait_for_connection()
    await stream.write(pb2.EchoRequest(message="w"))
    await stream.done_writing()
    assert [r.message async for r in stream] == ["w"]


# -- misuse ------------------------------------------------------------------------------------


async def test_write_after_done_writing(peer: Peer) -> None:
    stub = peer.stub()
    call = stub.BidiStream()
    await call.write(pb2.EchoRequest(message="a"))
    await call.done_writing()
    await call.done_writing()  # twice is fine
    # grpc.aio raises asyncio.InvalidStateError here; grpc.aio users may catch either.
    with pytest.raises(aio.UsageError):
        await call.write(pb2.EchoRequest(message="b"))
    with pytest.raises(asyncio.InvalidStateError):
        await call.write(pb2.EchoRequest(message="b"))
    assert [r.message async for r in call] == ["a"]
    # After the call has ended.
    with pytest.raises(asyncio.InvalidStateError):
        await call.write(pb2.EchoRequest(message="c"))


async def test_write_after_call_ended(peer: Peer) -> None:
    stub = peer.stub()
    call = stub.BidiStream()
    await call.write(pb2.EchoRequest(message="stop"))
    assert await call.read() is aio.EOF
    with pytest.raises(asyncio.InvalidStateError):
        await call.write(pb2.EchoRequest(message="late"))
    await call.done_writing()  # harmless once ended


async def test_write_or_done_writing_with_request_iterator(peer: Peer) -> None:
    stub = peer.stub()
    for method in (stub.BidiStream, stub.ClientStream):
        call = method(iter([pb2.EchoRequest(message="it")]))
        with pytest.raises(aio.UsageError):
            await call.write(pb2.EchoRequest())
        with pytest.raises(aio.UsageError):
            await call.done_writing()
        await call.code()


async def test_mixing_read_and_async_iteration(peer: Peer) -> None:
    stub = peer.stub()
    call = stub.ServerStream(pb2.EchoRequest(count=3))
    assert (await call.read()).index == 0
    with pytest.raises(aio.UsageError):
        async for _ in call:
            pass
    call = stub.ServerStream(pb2.EchoRequest(count=3))
    async for reply in call:
        assert reply.index == 0
        with pytest.raises(aio.UsageError):
            await call.read()
        break
    call.cancel()
    # Once iteration has ended, read() returns EOF (as in grpc.aio).
    call = stub.ServerStream(pb2.EchoRequest(count=2))
    assert [r.index async for r in call] == [0, 1]
    assert await call.read() is aio.EOF


async def test_request_iterator_that_raises_cancels_the_call(peer: Peer) -> None:
    """As in grpc.aio: the client's iterator failing cancels the RPC."""
    stub = peer.stub()

    def requests() -> Any:
        yield pb2.EchoRequest(message="one")
        raise ValueError("iterator broke")

    call = stub.ClientStream(requests())
    with pytest.raises(asyncio.CancelledError):
        await call
    assert call.cancelled()
    assert await call.code() is StatusCode.CANCELLED


async def test_channel_usable_after_errors(peer: Peer) -> None:
    stub = peer.stub()
    for _ in range(3):
        await rpc_error(stub.Unary(pb2.EchoRequest(message="abort:INTERNAL:x")))
        call = stub.Unary(pb2.EchoRequest(message="block"))
        await asyncio.sleep(0.01)
        call.cancel()
        peer.servicer.started.clear()
    assert (await stub.Unary(pb2.EchoRequest(message="ok"))).message == "ok"


async def test_cancelling_a_task_blocked_in_read_cancels_the_call(peer: Peer) -> None:
    """As in grpc.aio: a read() abandoned by its task (a timeout around it) cancels the RPC."""
    stub = peer.stub()
    call = stub.ServerStream(pb2.EchoRequest(count=100, delay_ms=500))
    with pytest.raises(asyncio.TimeoutError):  # the builtin one only from Python 3.11
        await asyncio.wait_for(call.read(), 0.1)
    assert call.cancelled()
    assert await asyncio.wait_for(call.code(), 2) is StatusCode.CANCELLED
    await asyncio.wait_for(peer.servicer.events.cancelled.wait(), 5)
    bidi = stub.BidiStream()

    async def iterate() -> None:
        async for _ in bidi:
            pass

    task = asyncio.ensure_future(iterate())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.wait_for(bidi.code(), 2) is StatusCode.CANCELLED


async def test_status_details_bin_reaches_the_error(peer: Peer) -> None:
    error = await rpc_error(peer.stub().Unary(pb2.EchoRequest(message="abort_with_status")))
    assert error.code() is StatusCode.FAILED_PRECONDITION
    assert error.details() == "rich"
    assert error.trailing_metadata()["grpc-status-details-bin"] == b"\x08\x09"


async def test_invalid_metadata_never_leaves(peer: Peer) -> None:
    stub = peer.stub()
    for metadata in ((("Bad Key", "x"),), (("k", "bad\nvalue"),), ((":path", "/x"),)):
        with pytest.raises(aio.AioRpcError) as info:
            await stub.Unary(pb2.EchoRequest(message="metadata"), metadata=metadata)
        assert info.value.code() is StatusCode.INTERNAL
    assert peer.servicer.calls == 0
    # Reserved-looking but legal keys pass, as in grpcio.
    reply = await stub.Unary(pb2.EchoRequest(message="metadata"), metadata=(("grpc-foo", "x"),))
    assert reply.message == repr([("grpc-foo", "x")])


async def test_failed_call_nobody_awaits_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """A unary call whose failure is read through code() only: no 'Task exception was never
    retrieved' from the event loop."""
    async with aio.insecure_channel("127.0.0.1:1") as channel:
        stub = pb2_grpc.EchoStub(channel)
        call = stub.Unary(pb2.EchoRequest())
        assert await call.code() is StatusCode.UNAVAILABLE
        stream_unary = stub.ClientStream(iter([pb2.EchoRequest()]))
        assert await stream_unary.code() is StatusCode.UNAVAILABLE
        del call, stream_unary
        gc.collect()
        await asyncio.sleep(0)
    assert "never retrieved" not in caplog.text
