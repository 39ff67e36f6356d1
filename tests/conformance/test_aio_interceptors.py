"""grpc.aio client interceptors, as grpcio runs them: one scenario, both libraries.

Each test runs against grpcio (client and grpcio aio server) and asgi_grpc (client and asgi_grpc
server) and asserts grpcio's outcome: debug_error_string on every intercepted call, cancellation
before, during and after the RPC, writes after a failure, bare responses and response iterators
returned by interceptors, and the metadata interceptors see.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import ModuleType
from typing import Any

import pytest

from . import aio_peer
from .aio_peer import FAIL_DETAILS, Peer, methods

# A write or read that never returns is a failure, not a hang of the suite.
LIMIT = 10


@pytest.fixture
async def peer(grpc: ModuleType) -> AsyncIterator[Peer]:
    started = await aio_peer.start(grpc)
    yield started
    await started.server.stop(None)


Intercept = Callable[[Any, Any, Any], Awaitable[Any]]


async def passthrough(continuation: Any, details: Any, request: Any) -> Any:
    return await continuation(details, request)


def interceptor(grpc: ModuleType, kind: str, intercept: Intercept = passthrough) -> Any:
    """An interceptor of one kind (grpcio files each interceptor under the first kind it is
    an instance of, so one object per kind) that runs ``intercept``."""
    base = getattr(grpc.aio, "".join(p.title() for p in kind.split("_")) + "ClientInterceptor")

    async def run(self: Any, continuation: Any, details: Any, request: Any) -> Any:
        return await intercept(continuation, details, request)

    return type(f"Test{base.__name__}", (base,), {f"intercept_{kind}": run})()


KINDS = ["unary_unary", "unary_stream", "stream_unary", "stream_stream"]


def start_call(channel: Any, kind: str, request: bytes) -> Any:
    uu, us, su, ss = methods(channel)
    if kind == "unary_unary":
        return uu(request)
    if kind == "unary_stream":
        return us(request)
    if kind == "stream_unary":
        return su(iter([request]))
    return ss(iter([request]))


async def finish(call: Any, kind: str) -> list[bytes]:
    """Await or consume the call; its responses."""
    if kind in ("unary_unary", "stream_unary"):
        return [await asyncio.wait_for(call, LIMIT)]

    async def consume() -> list[bytes]:
        return [response async for response in call]

    return await asyncio.wait_for(consume(), LIMIT)


# ---------------------------------------------------------------- status of intercepted calls


@pytest.mark.parametrize("kind", KINDS)
async def test_failed_intercepted_call_reports_status_and_debug_string(
    grpc: ModuleType, peer: Peer, kind: str
) -> None:
    async with peer.channel([interceptor(grpc, kind)]) as channel:
        call = start_call(channel, kind, b"fail")
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await finish(call, kind)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert await call.details() == FAIL_DETAILS
        assert ("err-key", "err-value") in tuple(await call.trailing_metadata())
        debug = await call.debug_error_string()
        assert isinstance(debug, str)
        assert debug
        assert call.done()
        assert not call.cancelled()


@pytest.mark.parametrize("kind", KINDS)
async def test_succeeded_intercepted_call_reports_ok(
    grpc: ModuleType, peer: Peer, kind: str
) -> None:
    request = b"2" if kind == "unary_stream" else b"x"
    seen: list[Any] = []
    async with peer.channel([interceptor(grpc, kind)]) as channel:
        call = start_call(channel, kind, request)
        call.add_done_callback(seen.append)
        await finish(call, kind)
        assert await call.code() == grpc.StatusCode.OK
        assert await call.details() in ("", None)
        assert isinstance(await call.debug_error_string(), str)
        assert call.done()
        await asyncio.sleep(0)
        assert seen == [call]
        assert call.cancel() is False
        assert await call.code() == grpc.StatusCode.OK


# ---------------------------------------------------------------- cancellation


@pytest.mark.parametrize("kind", KINDS)
async def test_cancel_before_the_interceptor_starts_the_rpc(
    grpc: ModuleType, peer: Peer, kind: str
) -> None:
    release = asyncio.Event()

    async def held(continuation: Any, details: Any, request: Any) -> Any:
        await release.wait()
        return await continuation(details, request)

    seen: list[Any] = []
    async with peer.channel([interceptor(grpc, kind, held)]) as channel:
        call = start_call(channel, kind, b"1")
        call.add_done_callback(seen.append)
        await asyncio.sleep(0.01)
        assert call.cancel() is True
        assert await call.code() == grpc.StatusCode.CANCELLED
        assert await call.details() == "Locally cancelled by application!"
        assert call.cancelled()
        assert call.done()
        assert call.cancel() is False
        assert seen == [call]
        with pytest.raises(asyncio.CancelledError):
            await finish(call, kind)


@pytest.mark.parametrize("kind", KINDS)
async def test_cancel_during_the_rpc(grpc: ModuleType, peer: Peer, kind: str) -> None:
    seen: list[Any] = []
    async with peer.channel([interceptor(grpc, kind)]) as channel:
        if kind in ("stream_unary", "stream_stream"):
            name = "Collect" if kind == "stream_unary" else "Echo"
            call = getattr(channel, kind)(aio_peer.method(name))()
            await call.write(b"x")
        else:
            call = start_call(channel, kind, b"slow")
            await asyncio.sleep(0.1)  # the request has reached the handler
        call.add_done_callback(seen.append)
        assert call.cancel() is True
        assert await call.code() == grpc.StatusCode.CANCELLED
        assert call.cancelled()
        with pytest.raises(asyncio.CancelledError):
            await finish(call, kind)
        await asyncio.sleep(0)
        assert seen == [call]


async def test_interceptor_cancels_a_finished_call(grpc: ModuleType, peer: Peer) -> None:
    async def latecancel(continuation: Any, details: Any, request: Any) -> Any:
        call = await continuation(details, request)
        await call
        assert call.cancel() is False
        return call

    async with peer.channel([interceptor(grpc, "unary_unary", latecancel)]) as channel:
        call = methods(channel)[0](b"hello")
        assert await call == b"hello"
        assert await call.code() == grpc.StatusCode.OK
        assert not call.cancelled()


async def test_interceptor_cancels_the_call_it_started(grpc: ModuleType, peer: Peer) -> None:
    async def earlycancel(continuation: Any, details: Any, request: Any) -> Any:
        call = await continuation(details, request)
        call.cancel()
        return call

    async with peer.channel([interceptor(grpc, "unary_unary", earlycancel)]) as channel:
        call = methods(channel)[0](b"slow")
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await call.code() == grpc.StatusCode.CANCELLED
        assert call.cancelled()


async def test_cancelling_the_awaiting_task_cancels_the_intercepted_call(
    grpc: ModuleType, peer: Peer
) -> None:
    async with peer.channel([interceptor(grpc, "unary_unary")]) as channel:
        call = methods(channel)[0](b"slow")

        async def wait() -> Any:
            return await call

        task = asyncio.ensure_future(wait())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await call.code() == grpc.StatusCode.CANCELLED
        assert call.cancelled()


# ---------------------------------------------------------------- writes after a failure


@pytest.mark.parametrize("kind", ["stream_unary", "stream_stream"])
async def test_write_after_the_interceptor_raised(grpc: ModuleType, peer: Peer, kind: str) -> None:
    async def broken(continuation: Any, details: Any, request: Any) -> Any:
        raise ValueError("interceptor broke")

    async with peer.channel([interceptor(grpc, kind, broken)]) as channel:
        call = getattr(channel, kind)(aio_peer.method("Collect"))()
        with pytest.raises(ValueError, match="interceptor broke"):
            await asyncio.wait_for(call.write(b"x"), LIMIT)
        with pytest.raises(ValueError, match="interceptor broke"):
            await asyncio.wait_for(call.done_writing(), LIMIT)
        with pytest.raises(ValueError, match="interceptor broke"):
            await call.code()


@pytest.mark.parametrize("kind", ["stream_unary", "stream_stream"])
async def test_write_after_cancel(grpc: ModuleType, peer: Peer, kind: str) -> None:
    async with peer.channel([interceptor(grpc, kind)]) as channel:
        call = getattr(channel, kind)(aio_peer.method("Collect"))()
        await call.write(b"x")
        call.cancel()
        with pytest.raises(asyncio.InvalidStateError):
            await asyncio.wait_for(call.write(b"y"), LIMIT)
        assert await call.code() == grpc.StatusCode.CANCELLED


@pytest.mark.parametrize("kind", ["stream_unary", "stream_stream"])
async def test_write_after_the_rpc_failed(grpc: ModuleType, peer: Peer, kind: str) -> None:
    name = "Collect" if kind == "stream_unary" else "Echo"
    async with peer.channel([interceptor(grpc, kind)]) as channel:
        call = getattr(channel, kind)(aio_peer.method(name))()
        await call.write(b"fail")
        assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(asyncio.InvalidStateError):
            await asyncio.wait_for(call.write(b"y"), LIMIT)


@pytest.mark.parametrize("kind", ["stream_unary", "stream_stream"])
async def test_write_after_done_writing(grpc: ModuleType, peer: Peer, kind: str) -> None:
    name = "Collect" if kind == "stream_unary" else "Echo"
    async with peer.channel([interceptor(grpc, kind)]) as channel:
        call = getattr(channel, kind)(aio_peer.method(name))()
        await call.write(b"a")
        await call.write(b"b")
        await call.done_writing()
        await call.done_writing()  # idempotent
        result = await finish(call, kind)
        assert result == ([b"a,b"] if kind == "stream_unary" else [b"a", b"b"])
        with pytest.raises(asyncio.InvalidStateError):
            await asyncio.wait_for(call.write(b"c"), LIMIT)


@pytest.mark.parametrize("kind", ["stream_unary", "stream_stream"])
async def test_write_on_a_call_given_an_iterator(grpc: ModuleType, peer: Peer, kind: str) -> None:
    name = "Collect" if kind == "stream_unary" else "Echo"
    async with peer.channel([interceptor(grpc, kind)]) as channel:
        call = getattr(channel, kind)(aio_peer.method(name))(iter([b"a"]))
        with pytest.raises(grpc.aio.UsageError):
            await call.write(b"b")
        await finish(call, kind)


# ---------------------------------------------------------------- bare responses


async def test_interceptor_returns_a_bare_response(grpc: ModuleType, peer: Peer) -> None:
    async def canned(continuation: Any, details: Any, request: Any) -> Any:
        return b"canned"

    async with peer.channel([interceptor(grpc, "unary_unary", canned)]) as channel:
        call = methods(channel)[0](b"hello")
        assert await call == b"canned"
        assert await call.code() == grpc.StatusCode.OK
        assert await call.details() == ""
        assert call.done()
        assert not call.cancelled()
        assert call.cancel() is False


async def test_chain_of_bare_responses(grpc: ModuleType, peer: Peer) -> None:
    async def suffix(continuation: Any, details: Any, request: Any) -> Any:
        call = await continuation(details, request)
        return (await call) + b"!"

    async with peer.channel([interceptor(grpc, "unary_unary", suffix)] * 3) as channel:
        assert await methods(channel)[0](b"hi") == b"hi!!!"


async def test_retrying_interceptor(grpc: ModuleType, peer: Peer) -> None:
    async def retry(continuation: Any, details: Any, request: Any) -> Any:
        call = await continuation(details, request)
        try:
            await call
        except grpc.aio.AioRpcError:
            return await continuation(details, b"retried")
        return call

    async def suffix(continuation: Any, details: Any, request: Any) -> Any:
        return (await (await continuation(details, request))) + b"!"

    async with peer.channel(
        [interceptor(grpc, "unary_unary", suffix), interceptor(grpc, "unary_unary", retry)]
    ) as channel:
        call = methods(channel)[0](b"fail")
        assert await call == b"retried!"
        assert await call.code() == grpc.StatusCode.OK


# ---------------------------------------------------------------- metadata


@pytest.mark.parametrize("given", ["none", "tuple", "list", "Metadata"])
@pytest.mark.parametrize("kind", KINDS)
async def test_details_metadata_is_aio_metadata(
    grpc: ModuleType, peer: Peer, given: str, kind: str
) -> None:
    seen: list[Any] = []

    async def adds(continuation: Any, details: Any, request: Any) -> Any:
        seen.append(details)
        assert isinstance(details.metadata, grpc.aio.Metadata)
        details.metadata.add("x-added", "yes")
        return await continuation(details, request)

    pairs = (("x-given", "1"),)
    metadata = {
        "none": None,
        "tuple": pairs,
        "list": list(pairs),
        "Metadata": grpc.aio.Metadata(*pairs),
    }[given]
    async with peer.channel([interceptor(grpc, kind, adds)]) as channel:
        if kind == "unary_unary":
            response = await methods(channel)[0](b"meta", metadata=metadata)
            expected = b"x-added=yes" if given == "none" else b"x-given=1\nx-added=yes"
            assert response == expected
        else:
            call = start_call_with_metadata(channel, kind, metadata)
            await finish(call, kind)
    (details,) = seen
    assert isinstance(details.metadata, grpc.aio.Metadata)
    assert ("x-added", "yes") in tuple(details.metadata)


def start_call_with_metadata(channel: Any, kind: str, metadata: Any) -> Any:
    _, us, su, ss = methods(channel)
    if kind == "unary_stream":
        return us(b"1", metadata=metadata)
    if kind == "stream_unary":
        return su(iter([b"x"]), metadata=metadata)
    return ss(iter([b"x"]), metadata=metadata)


# ---------------------------------------------------------------- response iterators


def iterating_interceptor(grpc: ModuleType, kind: str = "unary_stream") -> Any:
    async def iterates(continuation: Any, details: Any, request: Any) -> Any:
        call = await continuation(details, request)

        async def responses() -> AsyncIterator[bytes]:
            async for response in call:
                yield response + b"!"

        return responses()

    return interceptor(grpc, kind, iterates)


@pytest.mark.parametrize("kind", ["unary_stream", "stream_stream"])
async def test_response_iterator_from_interceptor(grpc: ModuleType, peer: Peer, kind: str) -> None:
    async with peer.channel([iterating_interceptor(grpc, kind)]) as channel:
        call = start_call(channel, kind, b"3" if kind == "unary_stream" else b"a")
        expected = [b"0!", b"1!", b"2!"] if kind == "unary_stream" else [b"a!"]
        assert await finish(call, kind) == expected
        assert await call.code() == grpc.StatusCode.OK
        assert call.done()


async def test_response_iterator_from_interceptor_read(grpc: ModuleType, peer: Peer) -> None:
    async with peer.channel([iterating_interceptor(grpc)]) as channel:
        call = methods(channel)[1](b"2")
        assert await call.read() == b"0!"
        assert await call.read() == b"1!"
        assert await call.read() is grpc.aio.EOF
        assert await call.code() == grpc.StatusCode.OK


@pytest.mark.parametrize("kind", ["unary_stream", "stream_stream"])
async def test_response_iterator_from_interceptor_failed_rpc(
    grpc: ModuleType, peer: Peer, kind: str
) -> None:
    async with peer.channel([iterating_interceptor(grpc, kind)]) as channel:
        call = start_call(channel, kind, b"fail")
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await finish(call, kind)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert await call.details() == FAIL_DETAILS
        assert call.done()


async def test_response_iterator_from_interceptor_cancelled(grpc: ModuleType, peer: Peer) -> None:
    async with peer.channel([iterating_interceptor(grpc)]) as channel:
        call = methods(channel)[1](b"slow")
        received = []
        with pytest.raises(asyncio.CancelledError):
            async for response in call:
                received.append(response)
                if len(received) == 2:
                    assert call.cancel() is True
        assert received == [b"0!", b"1!"]
        assert await call.code() == grpc.StatusCode.CANCELLED
        assert call.cancelled()


# ---------------------------------------------------------------- what users do next


@pytest.mark.parametrize("kind", KINDS)
async def test_interceptor_raises_an_rpc_error(grpc: ModuleType, peer: Peer, kind: str) -> None:
    async def refuse(continuation: Any, details: Any, request: Any) -> Any:
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.aio.Metadata(),
            grpc.aio.Metadata(("why", "policy")),
            "refused by interceptor",
        )

    seen: list[Any] = []
    async with peer.channel([interceptor(grpc, kind, refuse)]) as channel:
        call = start_call(channel, kind, b"1")
        call.add_done_callback(seen.append)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await finish(call, kind)
        assert raised.value.details() == "refused by interceptor"
        assert await call.code() == grpc.StatusCode.PERMISSION_DENIED
        assert await call.details() == "refused by interceptor"
        assert tuple(await call.trailing_metadata()) == (("why", "policy"),)
        assert await call.debug_error_string() == raised.value.debug_error_string()
        assert call.done()
        assert not call.cancelled()
        assert call.cancel() is False
        await asyncio.sleep(0)
        assert seen == [call]


@pytest.mark.parametrize("kind", KINDS)
async def test_interceptor_sets_a_deadline(grpc: ModuleType, peer: Peer, kind: str) -> None:
    async def short_deadline(continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(details._replace(timeout=0.2), request)

    async with peer.channel([interceptor(grpc, kind, short_deadline)]) as channel:
        if kind in ("stream_unary", "stream_stream"):
            name = "Collect" if kind == "stream_unary" else "Echo"
            call = getattr(channel, kind)(aio_peer.method(name))()
        else:
            call = start_call(channel, kind, b"slow" if kind == "unary_unary" else b"hold")
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await finish(call, kind)
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert await call.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_interceptors_run_outermost_first(grpc: ModuleType, peer: Peer) -> None:
    order: list[str] = []

    def tagged(tag: str) -> Any:
        async def record(continuation: Any, details: Any, request: Any) -> Any:
            order.append(f"{tag} in")
            call = await continuation(details, request + tag.encode())
            order.append(f"{tag} out")
            return call

        return interceptor(grpc, "unary_unary", record)

    async with peer.channel([tagged("a"), tagged("b"), tagged("c")]) as channel:
        assert await methods(channel)[0](b"-") == b"-abc"
    assert order == ["a in", "b in", "c in", "c out", "b out", "a out"]


@pytest.mark.parametrize("kind", ["unary_stream", "stream_stream"])
async def test_read_after_an_intercepted_stream_failed(
    grpc: ModuleType, peer: Peer, kind: str
) -> None:
    async with peer.channel([interceptor(grpc, kind)]) as channel:
        call = start_call(channel, kind, b"fail")
        if kind == "unary_stream":
            assert await call.read() == b"0"
            assert await call.read() == b"1"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await asyncio.wait_for(call.read(), LIMIT)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_wait_for_connection_of_an_intercepted_call(grpc: ModuleType, peer: Peer) -> None:
    async with peer.channel([interceptor(grpc, "unary_unary")]) as channel:
        call = methods(channel)[0](b"hello")
        await call.wait_for_connection()
        assert await call == b"hello"
        assert await call.initial_metadata() is not None


async def test_interceptor_on_a_channel_that_cannot_connect(grpc: ModuleType) -> None:
    calls: list[Any] = []

    async def keep(continuation: Any, details: Any, request: Any) -> Any:
        call = await continuation(details, request)
        calls.append(call)
        return call

    # Port 1 on loopback: nothing listens there.
    channel = grpc.aio.insecure_channel(
        "127.0.0.1:1", interceptors=[interceptor(grpc, "unary_unary", keep)]
    )
    async with channel:
        call = methods(channel)[0](b"x", timeout=LIMIT)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert await call.code() == grpc.StatusCode.UNAVAILABLE
        assert await calls[0].code() == grpc.StatusCode.UNAVAILABLE


def test_an_object_that_is_no_interceptor_is_refused(grpc: ModuleType) -> None:
    async def build() -> None:
        with pytest.raises(ValueError, match="Interceptor"):
            grpc.aio.insecure_channel("127.0.0.1:1", interceptors=[object()])

    asyncio.run(build())


@pytest.mark.parametrize("kind", KINDS)
async def test_done_callback_added_while_the_interceptor_runs(
    grpc: ModuleType, peer: Peer, kind: str
) -> None:
    release = asyncio.Event()

    async def held(continuation: Any, details: Any, request: Any) -> Any:
        await release.wait()
        return await continuation(details, request)

    seen: list[Any] = []
    async with peer.channel([interceptor(grpc, kind, held)]) as channel:
        call = start_call(channel, kind, b"2" if kind == "unary_stream" else b"x")
        call.add_done_callback(seen.append)
        await asyncio.sleep(0.01)
        assert not call.done()
        assert seen == []
        release.set()
        await finish(call, kind)
        for _ in range(100):  # the callback runs soon after the status arrives
            if seen:
                break
            await asyncio.sleep(0.01)
        assert seen == [call]
        assert call.done()
        assert await call.code() == grpc.StatusCode.OK
