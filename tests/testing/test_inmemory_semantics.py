"""The in-memory channel behaves as a real socket does: the server-semantics scenarios (from
tests/server) run over both, with the asgi_grpc client, and must give the same outcomes.

``transport`` is ``memory`` (``asgi_grpc.testing.channel_for``: no sockets, no Hypercorn) or
``socket`` (the same app on a real Hypercorn on 127.0.0.1, port 0, via
``asgi_grpc.testing.serve``). Every scenario asserts the outcome, so both params passing means
one outcome; ``test_outcomes_are_identical`` also compares a battery of them side by side,
details strings and metadata included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

import asgi_grpc
from asgi_grpc.testing import channel_for, serve
from tests.server.servicer import AsyncEcho, Events, pb2, pb2_grpc

TRANSPORTS = ["memory", "socket"]
Connect = Callable[..., contextlib.AbstractAsyncContextManager[Any]]
StatusCode = asgi_grpc.StatusCode
AioRpcError = asgi_grpc.aio.AioRpcError


def echo_app(servicer: Any = None, **server_kwargs: Any) -> Any:
    """The GrpcApp an ``asgi_grpc.aio.server(**server_kwargs)`` serves, with the echo servicer."""
    server = asgi_grpc.aio.server(**server_kwargs)
    pb2_grpc.add_EchoServicer_to_server(servicer or AsyncEcho(Events()), server)
    return server.app


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def connect(transport: str) -> Connect:
    """``async with connect(app, **channel_kwargs) as channel`` over the transport under test."""

    @contextlib.asynccontextmanager
    async def open_channel(app: Any, **kwargs: Any) -> AsyncIterator[Any]:
        if transport == "memory":
            async with channel_for(app, lifespan="auto", **kwargs) as channel:
                yield channel
            return
        async with serve(app) as server, server.channel(**kwargs) as channel:
            yield channel

    return open_channel


@contextlib.asynccontextmanager
async def rest_client(transport: str, app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for the app's REST routes: the in-memory channel's own ``http_client``,
    or plain httpx over the socket."""
    if transport == "memory":
        async with channel_for(app) as channel:
            yield channel.http_client
        return
    async with serve(app) as server, httpx.AsyncClient(base_url=server.url) as client:
        yield client


async def rpc_error(awaitable: Any) -> Any:
    with pytest.raises(AioRpcError) as info:
        await awaitable
    return info.value


async def drain(call: Any) -> list[Any]:
    return [item async for item in call]


def requests(n: int, payload: bytes = b"") -> Any:
    async def gen() -> Any:
        for i in range(n):
            yield pb2.EchoRequest(message=str(i), payload=payload)

    return gen()


# -- the four cardinalities ----------------------------------------------------------------------


async def test_all_four_cardinalities(connect: Connect) -> None:
    async with connect(echo_app()) as channel:
        stub = pb2_grpc.EchoStub(channel)
        reply = await stub.Unary(pb2.EchoRequest(message="hello", payload=b"\x00" * 1000))
        assert (reply.message, reply.payload) == ("hello", b"\x00" * 1000)
        assert [r.index async for r in stub.ServerStream(pb2.EchoRequest(count=25))] == list(
            range(25)
        )
        reply = await stub.ClientStream(requests(17, b"ab"))
        assert (reply.index, reply.message) == (17, "34")
        assert [r.message async for r in stub.BidiStream(requests(12))] == [
            str(i) for i in range(12)
        ]


async def test_bidi_ping_pong_is_full_duplex(connect: Connect) -> None:
    async with connect(echo_app()) as channel:
        call = pb2_grpc.EchoStub(channel).BidiStream()
        for i in range(100):
            await call.write(pb2.EchoRequest(message=str(i), payload=b"p" * 1024))
            assert (await call.read()).message == str(i)
        await call.done_writing()
        assert await call.read() is asgi_grpc.aio.EOF
        assert await call.code() is StatusCode.OK


async def test_large_messages_both_ways(connect: Connect) -> None:
    options = [
        ("grpc.max_receive_message_length", 16 << 20),
        ("grpc.max_send_message_length", 16 << 20),
    ]
    big = bytes(range(256)) * (3 << 12)  # 3 MiB: several windows each way
    async with connect(echo_app(options=options), options=options) as channel:
        stub = pb2_grpc.EchoStub(channel)
        assert (await stub.Unary(pb2.EchoRequest(payload=big))).payload == big
        reply = await stub.ClientStream(requests(6, big[: 1 << 20]))
        assert reply.message == str(6 << 20)
        got = await drain(stub.ServerStream(pb2.EchoRequest(count=3, payload=big)))
        assert [r.payload == big for r in got] == [True] * 3


# -- errors --------------------------------------------------------------------------------------


async def test_unknown_method_is_a_trailers_only_unimplemented(connect: Connect) -> None:
    async with connect(echo_app()) as channel:
        for path in ("/asgi_grpc.test.Echo/Nope", "/no.such.Service/Unary"):
            call = channel.unary_unary(path)(b"")
            error = await rpc_error(call)
            assert (error.code(), error.details()) == (
                StatusCode.UNIMPLEMENTED,
                "Method not found!",
            )
            assert tuple(await call.initial_metadata()) == ()
        error = await rpc_error(drain(channel.unary_stream("/x.Y/Z")(b"")))
        assert error.code() is StatusCode.UNIMPLEMENTED
        reply = await pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="still up"))
        assert reply.message == "still up"


async def test_handler_exceptions_and_aborts(connect: Connect) -> None:
    async with connect(echo_app()) as channel:
        stub = pb2_grpc.EchoStub(channel)
        error = await rpc_error(stub.Unary(pb2.EchoRequest(message="raise")))
        assert error.code() is StatusCode.UNKNOWN
        assert "handler failed on purpose" in (error.details() or "")
        # Mid-stream: the messages sent so far arrive, then the status.
        got: list[int] = []
        with pytest.raises(AioRpcError) as info:
            async for reply in stub.ServerStream(pb2.EchoRequest(message="raise", count=5)):
                got.append(reply.index)
        assert got == [0, 1]
        assert info.value.code() is StatusCode.UNKNOWN
        details = "unicode é 中 😀 % \t\n"
        error = await rpc_error(
            stub.Unary(pb2.EchoRequest(message=f"abort:PERMISSION_DENIED:{details}"))
        )
        assert (error.code(), error.details()) == (StatusCode.PERMISSION_DENIED, details)
        assert ("abort-md", "yes") in tuple(error.trailing_metadata())
        error = await rpc_error(stub.Unary(pb2.EchoRequest(message="abort_with_status")))
        assert (error.code(), error.details()) == (StatusCode.FAILED_PRECONDITION, "rich")
        assert ("grpc-status-details-bin", b"\x08\x09") in tuple(error.trailing_metadata())


async def test_message_size_limits(connect: Connect) -> None:
    options = [("grpc.max_receive_message_length", 4096), ("grpc.max_send_message_length", 2048)]
    async with connect(echo_app(options=options)) as channel:
        stub = pb2_grpc.EchoStub(channel)
        error = await rpc_error(stub.Unary(pb2.EchoRequest(payload=b"x" * 8192)))
        assert error.code() is StatusCode.RESOURCE_EXHAUSTED
        error = await rpc_error(
            drain(stub.ServerStream(pb2.EchoRequest(count=2, payload=b"x" * 3000)))
        )
        assert error.code() is StatusCode.RESOURCE_EXHAUSTED
        assert (await stub.Unary(pb2.EchoRequest(payload=b"x" * 500))).payload == b"x" * 500


# -- deadlines and cancellation ------------------------------------------------------------------


async def test_deadline_exceeded_cancels_the_handler(connect: Connect) -> None:
    events = Events()
    async with connect(echo_app(AsyncEcho(events))) as channel:
        stub = pb2_grpc.EchoStub(channel)
        left = float(
            (await stub.Unary(pb2.EchoRequest(message="time_remaining"), timeout=30)).message
        )
        assert 25 < left <= 30  # the grpc-timeout header reached the server
        error = await rpc_error(stub.Unary(pb2.EchoRequest(delay_ms=10_000), timeout=0.3))
        assert error.code() is StatusCode.DEADLINE_EXCEEDED
        await asyncio.wait_for(events.cancelled.wait(), 5)
        events.cancelled.clear()
        error = await rpc_error(
            drain(stub.ServerStream(pb2.EchoRequest(count=100, delay_ms=100), timeout=0.5))
        )
        assert error.code() is StatusCode.DEADLINE_EXCEEDED
        await asyncio.wait_for(events.cancelled.wait(), 5)


async def test_client_cancel_reaches_the_handler(connect: Connect) -> None:
    events = Events()
    async with connect(echo_app(AsyncEcho(events))) as channel:
        stub = pb2_grpc.EchoStub(channel)
        call = stub.Unary(pb2.EchoRequest(delay_ms=10_000))
        while not events.contexts:
            await asyncio.sleep(0.01)
        assert call.cancel()
        await asyncio.wait_for(events.cancelled.wait(), 5)
        context = events.contexts[0]
        for _ in range(100):
            if events.done_callbacks:
                break
            await asyncio.sleep(0.01)
        assert context.cancelled()
        assert events.done_callbacks == [context]
        with pytest.raises(asyncio.CancelledError):
            await call
        assert (await stub.Unary(pb2.EchoRequest(message="after"))).message == "after"


async def test_cancel_is_http_disconnect_for_a_raw_app(connect: Connect) -> None:
    """What an ASGI app sees: ``http.disconnect`` from ``receive()`` once the call is
    cancelled mid-stream."""
    seen: list[str] = []
    got_disconnect = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/grpc")],
                "trailers": True,
            }
        )
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "http.disconnect":
                got_disconnect.set()
                return
            if message.get("body"):
                await send(
                    {"type": "http.response.body", "body": message["body"], "more_body": True}
                )

    async with connect(app) as channel:
        call = channel.stream_stream("/raw.Service/Echo")()
        await call.write(b"one")
        assert await call.read() == b"one"
        call.cancel()
        await asyncio.wait_for(got_disconnect.wait(), 5)
    assert seen[-1] == "http.disconnect"
    assert "http.request" in seen


# -- metadata, compression, interceptors ---------------------------------------------------------


async def test_metadata_both_ways(connect: Connect) -> None:
    async with connect(echo_app()) as channel:
        call = pb2_grpc.EchoStub(channel).Unary(
            pb2.EchoRequest(message="metadata"),
            metadata=(("x-key", "v1"), ("x-key", "v2"), ("x-data-bin", b"\x00\xff\x10")),
        )
        reply = await call
        assert reply.message == repr(
            sorted([("x-data-bin", b"\x00\xff\x10"), ("x-key", "v1"), ("x-key", "v2")])
        )
        initial = tuple(await call.initial_metadata())
        assert ("initial-key", "iv") in initial
        assert ("initial-bin", b"\x00\x01") in initial
        assert not {key for key, _ in initial} & {"content-type", "date", "server", "grpc-encoding"}
        trailing = tuple(await call.trailing_metadata())
        assert ("trailing-key", "tv") in trailing
        assert ("trailing-bin", b"\xff") in trailing


@pytest.mark.parametrize("compression", [asgi_grpc.Compression.Gzip, asgi_grpc.Compression.Deflate])
async def test_compression_both_ways(connect: Connect, compression: Any) -> None:
    payload = b"compress me " * 1000
    async with connect(echo_app(compression=compression), compression=compression) as channel:
        stub = pb2_grpc.EchoStub(channel)
        call = stub.Unary(pb2.EchoRequest(payload=payload))
        assert (await call).payload == payload
        got = await drain(stub.ServerStream(pb2.EchoRequest(count=3, payload=payload)))
        assert [r.payload for r in got] == [payload] * 3
        reply = await stub.ClientStream(
            requests(5, payload), compression=asgi_grpc.Compression.Gzip
        )
        assert reply.message == str(5 * len(payload))
        # Per-message compression switched off in the middle of a compressed stream.
        got = await drain(stub.ServerStream(pb2.EchoRequest(message="disable_next", count=4)))
        assert [r.index for r in got] == [0, 1, 2, 3]


class CountingInterceptor(asgi_grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        self.methods: list[str] = []

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        self.methods.append(handler_call_details.method)
        if dict(handler_call_details.invocation_metadata).get("deny"):
            return asgi_grpc.unary_unary_rpc_method_handler(_deny)
        return await continuation(handler_call_details)


async def _deny(request: Any, context: Any) -> Any:
    await context.abort(StatusCode.PERMISSION_DENIED, "denied by interceptor")


class TaggingClientInterceptor(asgi_grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        metadata = [*(details.metadata or ()), ("x-tag", "client-interceptor")]
        return await continuation(details._replace(metadata=metadata), request)


async def test_server_and_client_interceptors(connect: Connect) -> None:
    counting = CountingInterceptor()
    app = echo_app(interceptors=[counting])
    async with connect(app, interceptors=[TaggingClientInterceptor()]) as channel:
        stub = pb2_grpc.EchoStub(channel)
        reply = await stub.Unary(pb2.EchoRequest(message="metadata"))
        assert reply.message == repr([("x-tag", "client-interceptor")])
        error = await rpc_error(stub.Unary(pb2.EchoRequest(), metadata=(("deny", "1"),)))
        assert (error.code(), error.details()) == (
            StatusCode.PERMISSION_DENIED,
            "denied by interceptor",
        )
        error = await rpc_error(channel.unary_unary("/x.Y/Z")(b""))
        assert error.code() is StatusCode.UNIMPLEMENTED
    assert counting.methods == ["/asgi_grpc.test.Echo/Unary"] * 2 + ["/x.Y/Z"]


# -- a GrpcApp inside Starlette ------------------------------------------------------------------


def starlette_app(grpc_app: Any, log: list[str]) -> Starlette:
    async def health(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.append("startup")
        yield
        log.append("shutdown")

    return Starlette(
        routes=[Route("/health", health), Mount("/asgi_grpc.test.Echo", grpc_app)],
        lifespan=lifespan,
    )


async def test_grpc_app_mounted_in_starlette_next_to_rest(connect: Connect, transport: str) -> None:
    log: list[str] = []
    app = starlette_app(echo_app(), log)
    async with connect(app) as channel:
        assert log == ["startup"]
        stub = pb2_grpc.EchoStub(channel)
        assert (await stub.Unary(pb2.EchoRequest(message="via starlette"))).message == (
            "via starlette"
        )
        assert [r.message async for r in stub.BidiStream(requests(3))] == ["0", "1", "2"]
        error = await rpc_error(stub.Unary(pb2.EchoRequest(message="abort:NOT_FOUND:gone")))
        assert (error.code(), error.details()) == (StatusCode.NOT_FOUND, "gone")
        # A path Starlette does not route: HTTP 404, which gRPC reads as UNIMPLEMENTED.
        error = await rpc_error(channel.unary_unary("/other.Service/Method")(b""))
        assert error.code() is StatusCode.UNIMPLEMENTED
    assert log == ["startup", "shutdown"]
    async with rest_client(transport, starlette_app(echo_app(), [])) as client:
        response = await client.get("/health")
        assert (response.status_code, response.text) == (200, "ok")


# -- raw ASGI apps: what the transport itself does -----------------------------------------------


def raw_app(behaviour: str) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        if behaviour == "return_early":
            return  # no response at all: the server answers 500
        if behaviour == "trailers_only":
            await send(
                {
                    "type": "http.response.trailers",
                    "headers": [
                        (b"content-type", b"application/grpc"),
                        (b"grpc-status", b"5"),
                        (b"grpc-message", b"raw%20not%20found"),
                    ],
                }
            )
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/grpc")],
                "trailers": True,
            }
        )
        frame = b"\x00\x00\x00\x00\x07partial"
        await send({"type": "http.response.body", "body": frame, "more_body": True})
        if behaviour == "crash":
            raise RuntimeError("the app dies mid-response")
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"grpc-status", b"0")]})

    return app


async def test_raw_app_behaviours(connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    async with connect(raw_app("trailers_only")) as channel:
        call = channel.unary_unary("/raw.S/M")(b"")
        error = await rpc_error(call)
        assert (error.code(), error.details()) == (StatusCode.NOT_FOUND, "raw not found")
    async with connect(raw_app("ok")) as channel:
        assert await drain(channel.unary_stream("/raw.S/M")(b"")) == [b"partial"]
    async with connect(raw_app("return_early")) as channel:
        error = await rpc_error(channel.unary_unary("/raw.S/M")(b""))
        assert error.code() is StatusCode.UNKNOWN  # HTTP 500
    async with connect(raw_app("crash")) as channel:
        got: list[bytes] = []
        with pytest.raises(AioRpcError) as info:
            async for message in channel.unary_stream("/raw.S/M")(b"", timeout=5):
                got.append(message)
        assert info.value.code() is StatusCode.INTERNAL  # RST_STREAM INTERNAL_ERROR
    assert any("the app dies mid-response" in str(r.exc_info) for r in caplog.records)


async def test_a_reader_that_stops_holds_back_the_writer(connect: Connect) -> None:
    """Flow control: a handler that does not read makes the client's writes wait (bounded
    buffering), and everything arrives once it reads."""
    reading = asyncio.Event()
    received: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/grpc")],
                "trailers": True,
            }
        )
        await reading.wait()
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            total += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        received.append(total)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"grpc-status", b"0")]})

    chunk = b"z" * (256 * 1024)
    count = 256  # 64 MiB offered
    options = [("grpc.max_send_message_length", 1 << 20)]
    async with connect(app, options=options) as channel:
        call = channel.stream_stream("/raw.S/Sink")()
        written = 0

        async def writer() -> None:
            nonlocal written
            for _ in range(count):
                await call.write(chunk)
                written += 1
            await call.done_writing()

        task = asyncio.ensure_future(writer())
        last = -1
        for _ in range(200):  # until the writer stalls (bounded wait)
            await asyncio.sleep(0.05)
            if written == last:
                break
            last = written
        assert not task.done()
        assert written * len(chunk) < 48 * 1024 * 1024  # held back long before 64 MiB
        reading.set()
        await asyncio.wait_for(task, 30)
        assert await asyncio.wait_for(call.code(), 30) is StatusCode.OK
    assert received == [count * (len(chunk) + 5)]


# -- the two transports, side by side ------------------------------------------------------------


async def _outcome(awaitable: Any) -> tuple[Any, ...]:
    try:
        result = await awaitable
    except AioRpcError as error:
        return ("error", error.code(), error.details(), tuple(error.trailing_metadata()))
    except asyncio.CancelledError:
        return ("cancelled",)
    if isinstance(result, list):
        return ("ok", [(r.index, r.message) if hasattr(r, "index") else r for r in result])
    return ("ok", getattr(result, "message", result))


async def _battery(channel: Any) -> dict[str, tuple[Any, ...]]:
    stub = pb2_grpc.EchoStub(channel)
    call = stub.Unary(pb2.EchoRequest(message="metadata"), metadata=(("k", "v"),))
    outcomes = {
        "unary": await _outcome(stub.Unary(pb2.EchoRequest(message="x"))),
        "metadata": await _outcome(call),
        "initial": ("ok", tuple(await call.initial_metadata())),
        "trailing": ("ok", tuple(await call.trailing_metadata())),
        "stream": await _outcome(drain(stub.ServerStream(pb2.EchoRequest(count=4)))),
        "client_stream": await _outcome(stub.ClientStream(requests(3, b"abc"))),
        "bidi": await _outcome(drain(stub.BidiStream(requests(3)))),
        "bidi_stop": await _outcome(
            drain(stub.BidiStream(iter([pb2.EchoRequest(message="stop")])))
        ),
        "unimplemented": await _outcome(channel.unary_unary("/x.Y/Z")(b"")),
        "unimplemented_stream": await _outcome(drain(channel.unary_stream("/x.Y/Z")(b""))),
        "raise": await _outcome(stub.Unary(pb2.EchoRequest(message="raise"))),
        "raise_mid_stream": await _outcome(
            drain(stub.ServerStream(pb2.EchoRequest(message="raise", count=5)))
        ),
        "abort": await _outcome(stub.Unary(pb2.EchoRequest(message="abort:ABORTED:é 50%"))),
        "set_code": await _outcome(
            stub.Unary(pb2.EchoRequest(message="set_code:ALREADY_EXISTS:d"))
        ),
        "none": await _outcome(stub.Unary(pb2.EchoRequest(message="none"))),
        "bad_trailing_metadata": await _outcome(
            stub.Unary(pb2.EchoRequest(message="bad_trailing_metadata"))
        ),
        "deadline": await _outcome(stub.Unary(pb2.EchoRequest(delay_ms=5000), timeout=0.2)),
        "too_big": await _outcome(stub.Unary(pb2.EchoRequest(payload=b"x" * (5 << 20)))),
        "compressed": await _outcome(
            stub.Unary(
                pb2.EchoRequest(message="compress", payload=b"a" * 5000),
                compression=asgi_grpc.Compression.Gzip,
            )
        ),
    }
    cancelled = stub.Unary(pb2.EchoRequest(delay_ms=5000))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    outcomes["cancel"] = await _outcome(cancelled)
    return outcomes


async def test_outcomes_are_identical() -> None:
    """The same battery over both transports, compared value for value."""
    options = [("grpc.max_send_message_length", 8 << 20)]
    async with channel_for(echo_app(), options=options) as channel:
        memory = await _battery(channel)
    async with serve(echo_app()) as server, server.channel(options=options) as channel:
        socket = await _battery(channel)
    assert memory == socket
    assert memory["deadline"][1] is StatusCode.DEADLINE_EXCEEDED
    assert memory["unimplemented"][1] is StatusCode.UNIMPLEMENTED
    assert memory["cancel"] == ("cancelled",)
