"""What grpcio clients rely on: statuses, metadata, deadlines, cancellation, limits."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

import asgi_grpc
from tests.server.servicer import AsyncEcho, Events, pb2, pb2_grpc


async def rpc_error(awaitable: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    return info.value


async def test_unknown_method_and_service_are_unimplemented(start_server: Any) -> None:
    async with start_server() as endpoint, endpoint.aio_channel() as channel:
        for path in ("/asgi_grpc.test.Echo/Nope", "/no.such.Service/Unary"):
            error = await rpc_error(channel.unary_unary(path)(b""))
            assert error.code() == grpc.StatusCode.UNIMPLEMENTED
            assert error.details() == "Method not found!"
        # Streaming calls to unknown methods too, and the connection still serves. (Not a
        # request stream: grpcio's client then races its writes against the early status and
        # may report INTERNAL, against grpcio's own server as well.)
        error = await rpc_error(channel.unary_stream("/x.Y/Z")(b"").read())
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED
        reply = await pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="still up"))
        assert reply.message == "still up"


async def test_generated_base_servicer_is_unimplemented(start_server: Any) -> None:
    async with start_server(pb2_grpc.EchoServicer()) as endpoint, endpoint.aio_channel() as channel:
        error = await rpc_error(pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest()))
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED
        assert error.details() == "Method not implemented!"


async def test_handler_exception_is_unknown_with_message(start_server: Any) -> None:
    async with start_server() as endpoint, endpoint.aio_channel() as channel:
        stub = pb2_grpc.EchoStub(channel)
        error = await rpc_error(stub.Unary(pb2.EchoRequest(message="raise")))
        assert error.code() == grpc.StatusCode.UNKNOWN
        assert "handler failed on purpose" in (error.details() or "")
        # Mid-stream: the messages sent so far arrive, then the status.
        call = stub.ServerStream(pb2.EchoRequest(message="raise", count=5))
        got = []
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for reply in call:
                got.append(reply.index)
        assert got == [0, 1]
        assert info.value.code() == grpc.StatusCode.UNKNOWN
        assert "stream broke" in (info.value.details() or "")


@pytest.mark.parametrize(
    "details",
    ["plain", "tab\there", "new\nline", "percent % sign", "unicode é 中 😀 \U0001f600", ""],
)
async def test_abort_code_details_and_trailing_metadata(start_server: Any, details: str) -> None:
    async with start_server() as endpoint, endpoint.aio_channel() as channel:
        call = pb2_grpc.EchoStub(channel).Unary(
            pb2.EchoRequest(message=f"abort:PERMISSION_DENIED:{details}")
        )
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error.details() == details
        assert ("abort-md", "yes") in tuple(error.trailing_metadata())


async def test_set_code_wins_over_the_response(start_server: Any) -> None:
    async with start_server() as endpoint, endpoint.aio_channel() as channel:
        error = await rpc_error(
            pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="set_code:ALREADY_EXISTS:dup"))
        )
        assert (error.code(), error.details()) == (grpc.StatusCode.ALREADY_EXISTS, "dup")


async def test_metadata_round_trip(start_server: Any) -> None:
    async with start_server() as endpoint, endpoint.aio_channel() as channel:
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
        # Reserved and server-added headers are not metadata.
        assert not {key for key, _ in initial} & {"content-type", "date", "server", "grpc-encoding"}
        trailing = tuple(await call.trailing_metadata())
        assert ("trailing-key", "tv") in trailing
        assert ("trailing-bin", b"\xff") in trailing


async def test_invalid_trailing_metadata_is_internal(start_server: Any) -> None:
    async with start_server() as endpoint, endpoint.aio_channel() as channel:
        error = await rpc_error(
            pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="bad_trailing_metadata"))
        )
        assert error.code() == grpc.StatusCode.INTERNAL
        assert "Bad Key" in (error.details() or "")


async def test_none_response_is_an_error(start_server: Any) -> None:
    async with start_server() as endpoint, endpoint.aio_channel() as channel:
        error = await rpc_error(pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="none")))
        assert error.code() == grpc.StatusCode.UNKNOWN


async def test_peer_and_time_remaining(start_server: Any) -> None:
    async with start_server() as endpoint, endpoint.aio_channel() as channel:
        stub = pb2_grpc.EchoStub(channel)
        peer = (await stub.Unary(pb2.EchoRequest(message="peer"))).message
        assert peer.startswith("ipv4:127.0.0.1:")
        assert int(peer.rsplit(":", 1)[1]) > 0
        assert (await stub.Unary(pb2.EchoRequest(message="time_remaining"))).message == "None"
        left = float(
            (await stub.Unary(pb2.EchoRequest(message="time_remaining"), timeout=30)).message
        )
        assert 25 < left <= 31  # grpcio rounds the timeout it sends up


async def test_deadline_cancels_the_handler(start_server: Any) -> None:
    events = Events()
    async with start_server(AsyncEcho(events)) as endpoint, endpoint.aio_channel() as channel:
        stub = pb2_grpc.EchoStub(channel)
        error = await rpc_error(stub.Unary(pb2.EchoRequest(delay_ms=10_000), timeout=0.3))
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await asyncio.wait_for(events.cancelled.wait(), 5)
        events.cancelled.clear()
        error = await rpc_error(
            _drain(stub.ServerStream(pb2.EchoRequest(count=100, delay_ms=100), timeout=0.5))
        )
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await asyncio.wait_for(events.cancelled.wait(), 5)


async def _drain(call: Any) -> list[Any]:
    return [item async for item in call]


async def test_client_cancel_cancels_the_handler(start_server: Any) -> None:
    events = Events()
    async with start_server(AsyncEcho(events)) as endpoint, endpoint.aio_channel() as channel:
        stub = pb2_grpc.EchoStub(channel)
        call = stub.Unary(pb2.EchoRequest(delay_ms=10_000))
        while not events.contexts:
            await asyncio.sleep(0.01)
        call.cancel()
        await asyncio.wait_for(events.cancelled.wait(), 5)
        context = events.contexts[0]
        for _ in range(100):
            if events.done_callbacks:
                break
            await asyncio.sleep(0.01)
        assert context.cancelled()
        assert context.done()
        assert events.done_callbacks == [context]
        # The connection keeps serving.
        assert (await stub.Unary(pb2.EchoRequest(message="after"))).message == "after"


async def test_message_size_limits(start_server: Any) -> None:
    options = [("grpc.max_receive_message_length", 4096), ("grpc.max_send_message_length", 2048)]
    async with start_server(options=options) as endpoint, endpoint.aio_channel() as channel:
        stub = pb2_grpc.EchoStub(channel)
        error = await rpc_error(stub.Unary(pb2.EchoRequest(payload=b"x" * 8192)))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in (error.details() or "")
        error = await rpc_error(
            _drain(stub.ServerStream(pb2.EchoRequest(count=2, payload=b"x" * 3000)))
        )
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Within the limits all is well.
        assert (await stub.Unary(pb2.EchoRequest(payload=b"x" * 500))).payload == b"x" * 500


async def test_default_receive_limit_is_4_mib(start_server: Any) -> None:
    options = [("grpc.max_send_message_length", 8 << 20)]
    async with start_server() as endpoint, endpoint.aio_channel(options) as channel:
        stub = pb2_grpc.EchoStub(channel)
        error = await rpc_error(stub.Unary(pb2.EchoRequest(payload=b"x" * (5 << 20))))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_maximum_concurrent_rpcs(start_server: Any) -> None:
    async with start_server(maximum_concurrent_rpcs=2) as endpoint, endpoint.aio_channel() as ch:
        stub = pb2_grpc.EchoStub(ch)
        slow = [asyncio.ensure_future(stub.Unary(pb2.EchoRequest(delay_ms=500))) for _ in range(2)]
        await asyncio.sleep(0.2)
        error = await rpc_error(stub.Unary(pb2.EchoRequest(message="excess")))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        await asyncio.gather(*slow)
        assert (await stub.Unary(pb2.EchoRequest(message="ok"))).message == "ok"


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate])
async def test_compressed_requests_and_responses(start_server: Any, compression: Any) -> None:
    payload = b"compress me " * 1000
    async with start_server(compression=compression) as endpoint:
        async with grpc.aio.insecure_channel(endpoint.target, compression=compression) as channel:
            stub = pb2_grpc.EchoStub(channel)
            assert (await stub.Unary(pb2.EchoRequest(payload=payload))).payload == payload
            got = [r async for r in stub.ServerStream(pb2.EchoRequest(count=3, payload=payload))]
            assert [r.payload for r in got] == [payload] * 3
            reply = await stub.ClientStream(
                _requests(5, payload), compression=grpc.Compression.Gzip
            )
            assert reply.message == str(5 * len(payload))


def _requests(n: int, payload: bytes) -> Any:
    async def gen() -> Any:
        for _ in range(n):
            yield pb2.EchoRequest(payload=payload)

    return gen()


class CountingInterceptor(grpc.aio.ServerInterceptor):
    """A grpcio aio interceptor class: asgi_grpc must accept grpcio's own base classes."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        self.methods.append(handler_call_details.method)
        if dict(handler_call_details.invocation_metadata).get("deny"):
            return grpc.unary_unary_rpc_method_handler(_deny)
        return await continuation(handler_call_details)


async def _deny(request: Any, context: Any) -> Any:
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, "denied by interceptor")


class SyncStyleInterceptor(asgi_grpc.ServerInterceptor):
    def __init__(self) -> None:
        self.seen = 0

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        self.seen += 1
        return continuation(handler_call_details)


async def test_interceptors_async_and_sync(start_server: Any) -> None:
    counting, sync_style = CountingInterceptor(), SyncStyleInterceptor()
    async with start_server(interceptors=[counting, sync_style]) as endpoint:
        async with endpoint.aio_channel() as channel:
            stub = pb2_grpc.EchoStub(channel)
            assert (await stub.Unary(pb2.EchoRequest(message="a"))).message == "a"
            error = await rpc_error(stub.Unary(pb2.EchoRequest(), metadata=(("deny", "1"),)))
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            error = await rpc_error(channel.unary_unary("/x.Y/Z")(b""))
            assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert counting.methods == ["/asgi_grpc.test.Echo/Unary"] * 2 + ["/x.Y/Z"]
    assert sync_style.seen == 2


async def test_generic_handler_with_raw_bytes(start_server: Any) -> None:
    async def shout(request: bytes, context: Any) -> bytes:
        return request.upper()

    handler = asgi_grpc.method_handlers_generic_handler(
        "raw.Service", {"Shout": asgi_grpc.unary_unary_rpc_method_handler(shout)}
    )
    async with start_server(handlers=[handler]) as endpoint, endpoint.aio_channel() as channel:
        assert await channel.unary_unary("/raw.Service/Shout")(b"hey") == b"HEY"


async def test_abort_with_status_carries_rich_details(start_server: Any) -> None:
    async with start_server() as endpoint, endpoint.aio_channel() as channel:
        error = await rpc_error(
            pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="abort_with_status"))
        )
        assert (error.code(), error.details()) == (grpc.StatusCode.FAILED_PRECONDITION, "rich")
        assert ("grpc-status-details-bin", b"\x08\x09") in tuple(error.trailing_metadata())


@pytest.mark.parametrize(
    ("transport", "expected"),
    [
        ("h2c", (None, None, [b"insecure"])),  # grpcio describes an insecure connection too
        ("tls", (None, None, [b"ssl"])),
        ("mtls", ("x509_subject_alternative_name", [b"client.example.com"], [b"ssl"])),
    ],
)
async def test_auth_context_and_peer_identity(
    start_server: Any, transport: str, expected: Any
) -> None:
    async with start_server(transport=transport) as endpoint, endpoint.aio_channel() as channel:
        reply = await pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="auth"))
        assert reply.message == repr(expected)


async def test_ipv6_port() -> None:
    server = asgi_grpc.aio.server()
    pb2_grpc.add_EchoServicer_to_server(AsyncEcho(Events()), server)
    port = server.add_insecure_port("[::1]:0")
    assert port > 0
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"ipv6:[::1]:{port}") as channel:
            stub = pb2_grpc.EchoStub(channel)
            assert (await stub.Unary(pb2.EchoRequest(message="peer"))).message.startswith(
                "ipv6:[::1]:"
            )
    finally:
        await server.stop(None)


async def test_metadata_values_with_edge_spaces_are_accepted(start_server: Any) -> None:
    # grpcio sends them as given and grpcio's server keeps them; one such value must not break
    # the connection (HTTP/2 calls them malformed, h2's inbound checks would reset everything).
    async with start_server() as endpoint, endpoint.aio_channel() as channel:
        stub = pb2_grpc.EchoStub(channel)
        reply = await stub.Unary(pb2.EchoRequest(message="metadata"), metadata=(("k", " v "),))
        assert reply.message == repr([("k", " v ")])  # kept as sent, as grpcio's server does
        assert (await stub.Unary(pb2.EchoRequest(message="after"))).message == "after"
