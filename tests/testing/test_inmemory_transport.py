"""The in-memory transport itself: the ASGI scope it builds (compared with Hypercorn's), lifespan,
closing, header limits, and the blocking channel."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest

import asgi_grpc
from asgi_grpc.server import GrpcApp
from asgi_grpc.testing import LifespanError, blocking_channel_for, channel_for, serve
from tests.server.servicer import AsyncEcho, Events, SyncEcho, pb2, pb2_grpc

StatusCode = asgi_grpc.StatusCode


def recording_app(
    scopes: list[dict[str, Any]], trailer_size: int = 0, content_type: bytes = b"content-type"
) -> Any:
    """Answers every gRPC call with an empty OK response, and records the scopes."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].replace("lifespan.", "")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        scopes.append(dict(scope))
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(content_type, b"application/grpc"), (b"x-padded", b"  v  ")],
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        trailers = [(b"grpc-status", b"0")]
        if trailer_size:
            trailers.append((b"x-big", b"b" * trailer_size))
        await send({"type": "http.response.trailers", "headers": trailers})

    return app


async def _call(channel: Any) -> Any:
    call = channel.unary_stream("/scope.Test/Call?q=1")(b"", metadata=(("x-meta", "m"),))
    assert [m async for m in call] == []
    return call


async def test_scope_is_the_one_hypercorn_builds() -> None:
    memory: list[dict[str, Any]] = []
    socket: list[dict[str, Any]] = []
    async with channel_for(recording_app(memory)) as channel:
        call = await _call(channel)
        memory_initial = tuple(await call.initial_metadata())
    async with serve(recording_app(socket)) as server, server.channel() as channel:
        call = await _call(channel)
        socket_initial = tuple(await call.initial_metadata())
    assert memory_initial == socket_initial == (("x-padded", "v"),)
    (ours,), (theirs,) = memory, socket
    assert ours["headers"][0] == (b"host", b"testserver")
    assert theirs["headers"][0] == (b"host", f"127.0.0.1:{server.port}".encode())
    assert ours["headers"][1:] == theirs["headers"][1:]
    assert all(name == name.lower() for name, _ in ours["headers"])
    assert ours["client"] == ("127.0.0.1", 123)
    assert isinstance(theirs["client"], (tuple, list))
    same = ["type", "asgi", "http_version", "method", "scheme", "path", "raw_path"]
    same += ["query_string", "root_path"]
    assert {key: ours[key] for key in same} == {key: theirs[key] for key in same}
    assert ours["http_version"] == "2"
    assert (ours["path"], ours["query_string"]) == ("/scope.Test/Call", b"q=1")
    # Hypercorn offers push too (not implemented in memory, and refused by gRPC clients), and
    # our protocol the body's pieces (a copy less for large DATA frames; memory has no frames).
    assert set(ours["extensions"]) == set(theirs["extensions"]) - {
        "http.response.push",
        # The server's own hot-path hand-offs (server/_types.py), not part of what apps see.
        "asgi_grpc.body_parts",
        "asgi_grpc.body_sink",
        "asgi_grpc.body_listen",
        "asgi_grpc.response",
    }
    assert "http.response.trailers" in ours["extensions"]
    assert "asgi_grpc.trailers_only" in ours["extensions"]


async def _outcomes(app: Any) -> dict[str, tuple[Any, ...]]:
    """The outcome of ``_call`` over memory and over a socket."""
    outcomes: dict[str, tuple[Any, ...]] = {}
    for transport in ("memory", "socket"):
        async with contextlib.AsyncExitStack() as stack:
            if transport == "memory":
                channel = await stack.enter_async_context(channel_for(app))
            else:
                server = await stack.enter_async_context(serve(app))
                channel = await stack.enter_async_context(server.channel())
            try:
                await _call(channel)
            except asgi_grpc.aio.AioRpcError as error:
                outcomes[transport] = (error.code(), error.details())
            else:
                outcomes[transport] = (StatusCode.OK,)
    return outcomes


async def test_response_metadata_over_the_client_limit_fails_that_call() -> None:
    outcomes = await _outcomes(recording_app([], trailer_size=32 * 1024))
    assert outcomes["memory"] == outcomes["socket"]
    assert outcomes["memory"][0] is StatusCode.RESOURCE_EXHAUSTED


async def test_response_header_names_go_out_as_the_app_wrote_them() -> None:
    # Upper case is malformed in HTTP/2; asgi_grpc's Hypercorn sends it as is, and so the
    # client finds no content-type. The in-memory transport must not hide that.
    outcomes = await _outcomes(recording_app([], content_type=b"Content-Type"))
    assert outcomes["memory"] == outcomes["socket"]
    assert outcomes["memory"][0] is StatusCode.UNKNOWN


def lifespan_app(log: list[str], *, fail: bool = False) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            assert (await receive())["type"] == "lifespan.startup"
            if fail:
                await send({"type": "lifespan.startup.failed", "message": "no database"})
                return
            scope["state"]["db"] = "connected"
            log.append("startup")
            await send({"type": "lifespan.startup.complete"})
            assert (await receive())["type"] == "lifespan.shutdown"
            log.append("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return
        log.append(f"request state={scope['state'].get('db')}")
        await send(
            {
                "type": "http.response.trailers",
                "headers": [(b"content-type", b"application/grpc"), (b"grpc-status", b"0")],
            }
        )

    return app


async def test_lifespan_runs_around_the_channel_and_shares_its_state() -> None:
    log: list[str] = []
    async with channel_for(lifespan_app(log), lifespan=True) as channel:
        assert log == ["startup"]
        await _call(channel)
    assert log == ["startup", "request state=connected", "shutdown"]


async def test_lifespan_without_async_with_starts_before_the_first_call() -> None:
    log: list[str] = []
    channel = channel_for(lifespan_app(log), lifespan=True)
    await _call(channel)
    await channel.close()
    assert log == ["startup", "request state=connected", "shutdown"]


async def test_lifespan_off_sends_no_lifespan_events() -> None:
    log: list[str] = []
    async with channel_for(lifespan_app(log)) as channel:
        await _call(channel)
    assert log == ["request state=None"]


async def test_lifespan_failures() -> None:
    with pytest.raises(LifespanError, match="no database"):
        async with channel_for(lifespan_app([], fail=True), lifespan=True):
            pass
    # A failed startup fails calls too (UNAVAILABLE), when the channel was not entered.
    channel = channel_for(lifespan_app([], fail=True), lifespan=True)
    with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
        await _call(channel)
    assert info.value.code() is StatusCode.UNAVAILABLE
    assert "no database" in (info.value.details() or "")
    await channel.close()

    async def no_lifespan(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("unsupported scope")
        await lifespan_app([])(scope, receive, send)

    with pytest.raises(LifespanError, match="unsupported scope"):
        async with channel_for(no_lifespan, lifespan=True):
            pass
    async with channel_for(no_lifespan, lifespan="auto") as channel:  # as Hypercorn: carry on
        await _call(channel)


async def test_close_disconnects_calls_in_flight_and_leaves_no_task() -> None:
    events = Events()
    server = asgi_grpc.aio.server()
    pb2_grpc.add_EchoServicer_to_server(AsyncEcho(events), server)
    before = set(asyncio.all_tasks())
    channel = channel_for(server.app)
    stub = pb2_grpc.EchoStub(channel)
    call = stub.Unary(pb2.EchoRequest(delay_ms=10_000))
    while not events.contexts:
        await asyncio.sleep(0.01)
    await channel.close()
    await asyncio.wait_for(events.cancelled.wait(), 5)
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.sleep(0)
    left = {task for task in asyncio.all_tasks() - before if not task.done()}
    assert left == set()


def test_blocking_channel_all_patterns() -> None:
    server = asgi_grpc.aio.server()
    pb2_grpc.add_EchoServicer_to_server(SyncEcho(Events()), server)
    with blocking_channel_for(server.app) as channel:
        stub = pb2_grpc.EchoStub(channel)
        assert stub.Unary(pb2.EchoRequest(message="sync"), timeout=5).message == "sync"
        assert [r.index for r in stub.ServerStream(pb2.EchoRequest(count=5))] == list(range(5))
        requests = iter([pb2.EchoRequest(payload=b"xyz")] * 4)
        assert stub.ClientStream(requests).index == 4
        replies = stub.BidiStream(iter(pb2.EchoRequest(message=m) for m in "abc"))
        assert [r.message for r in replies] == ["a", "b", "c"]
        with pytest.raises(asgi_grpc.RpcError) as info:
            stub.Unary(pb2.EchoRequest(message="abort:NOT_FOUND:sync abort"))
        assert (info.value.code(), info.value.details()) == (StatusCode.NOT_FOUND, "sync abort")
        future = stub.Unary.future(pb2.EchoRequest(message="metadata"))
        assert future.result(timeout=5).message == "metadata"
        assert ("trailing-key", "sync") in tuple(future.trailing_metadata())


def test_blocking_channel_runs_the_lifespan_before_returning() -> None:
    log: list[str] = []
    with blocking_channel_for(lifespan_app(log), lifespan=True) as channel:
        assert log == ["startup"]
        assert list(channel.unary_stream("/scope.Test/Call")(b"")) == []
    assert log == ["startup", "request state=connected", "shutdown"]
    assert threading.current_thread() is threading.main_thread()


async def test_connectivity_and_many_concurrent_calls() -> None:
    server = asgi_grpc.aio.server()
    pb2_grpc.add_EchoServicer_to_server(AsyncEcho(Events()), server)
    async with channel_for(server.app) as channel:
        assert channel.get_state() is asgi_grpc.ChannelConnectivity.IDLE
        await asyncio.wait_for(channel.channel_ready(), 5)
        assert channel.get_state() is asgi_grpc.ChannelConnectivity.READY
        stub = pb2_grpc.EchoStub(channel)

        async def bidi(i: int) -> list[str]:
            call = stub.BidiStream()
            got = []
            for j in range(3):
                await call.write(pb2.EchoRequest(message=f"{i}.{j}"))
                got.append((await call.read()).message)
            await call.done_writing()
            return got

        results = await asyncio.gather(*(bidi(i) for i in range(300)))
        assert results == [[f"{i}.{j}" for j in range(3)] for i in range(300)]
    assert channel.get_state() is asgi_grpc.ChannelConnectivity.SHUTDOWN


async def test_handler_that_stopped_reading_is_cancelled_when_the_client_goes() -> None:
    """A client-streaming handler that never reads fills its request bound (the app then stops
    calling receive()); cancelling the call must still cancel it, in memory as over a socket."""
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def hold(request_iterator: Any, context: Any) -> bytes:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return b""

    app = GrpcApp(
        [
            asgi_grpc.method_handlers_generic_handler(
                "t.Hold", {"Hold": asgi_grpc.stream_unary_rpc_method_handler(hold)}
            )
        ]
    )
    async with channel_for(app) as channel:
        call = channel.stream_unary("/t.Hold/Hold")()
        await asyncio.wait_for(started.wait(), 5)
        chunk = b"x" * (64 * 1024)
        for _ in range(8):  # 512 KiB: past the 256 KiB request bound, within the window
            await asyncio.wait_for(call.write(chunk), 5)
        call.cancel()
        await asyncio.wait_for(cancelled.wait(), 5)
