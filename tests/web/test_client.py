"""The asgi_grpc client speaking gRPC-Web (channel option ``asgi_grpc.grpc_web``) to our server,
binary and text, over HTTP/1.1 and HTTP/2. Each outcome is the one the same call gets over
plain gRPC (the server serves both from one port)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest

import asgi_grpc
from tests.web.servicer import FAIL_DETAILS, WebEcho, pb2, pb2_grpc, status_details

MODES = [
    pytest.param([("asgi_grpc.grpc_web", True)], id="binary-http1"),
    pytest.param([("asgi_grpc.grpc_web", "text")], id="text-http1"),
    pytest.param(
        [("asgi_grpc.grpc_web", True), ("asgi_grpc.grpc_web_http2", True)], id="binary-http2"
    ),
    pytest.param(
        [("asgi_grpc.grpc_web", "text"), ("asgi_grpc.grpc_web_http2", True)], id="text-http2"
    ),
]


@pytest.fixture(params=MODES)
async def stub(request: pytest.FixtureRequest, web_server: Any) -> AsyncIterator[Any]:
    async with web_server() as base_url:
        target = base_url.removeprefix("http://")
        async with asgi_grpc.aio.insecure_channel(target, options=request.param) as channel:
            yield pb2_grpc.EchoStub(channel)


async def test_http_version(stub: Any, request: pytest.FixtureRequest) -> None:
    reply = await stub.Unary(pb2.EchoRequest(message="http_version"))
    assert reply.message == ("2" if "http2" in request.node.callspec.id else "1.1")


async def test_unary(stub: Any) -> None:
    reply = await stub.Unary(pb2.EchoRequest(message="hi", payload=b"\x00" * 70_000))
    assert reply.message == "hi"
    assert reply.payload == b"\x00" * 70_000


async def test_server_streaming(stub: Any) -> None:
    call = stub.ServerStream(pb2.EchoRequest(message="s", count=5))
    assert [r.index async for r in call] == [0, 1, 2, 3, 4]
    assert await call.code() == asgi_grpc.StatusCode.OK


async def test_client_streaming_and_half_duplex_bidi(stub: Any) -> None:
    async def requests() -> AsyncIterator[Any]:
        for word in ("a", "b", "c"):
            yield pb2.EchoRequest(message=word)

    reply = await stub.ClientStream(requests())
    assert (reply.message, reply.index) == ("a+b+c", 3)
    # Bidi over gRPC-Web is half-duplex: the responses come once the requests ended.
    call = stub.BidiStream(requests())
    assert [r.message async for r in call] == ["a", "b", "c"]


async def test_metadata_both_ways(stub: Any) -> None:
    call = stub.Unary(pb2.EchoRequest(message="meta"), metadata=(("x-req", "py"),))
    assert (await call).message == "meta:py"
    initial = dict(await call.initial_metadata())
    assert initial["x-echo"] == "py"
    assert initial["x-echo-bin"] == b"\x00\xff"
    trailing = dict(await call.trailing_metadata())
    assert trailing["x-trail"] == "t-py"
    assert trailing["x-trail-bin"] == b"\x01\xfe"


@pytest.mark.parametrize("method", ["Unary", "ServerStream"])
async def test_error_with_details(stub: Any, method: str) -> None:
    request = pb2.EchoRequest(message="fail", count=5)
    with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
        if method == "Unary":
            await stub.Unary(request)
        else:
            received = [r.index async for r in stub.ServerStream(request)]
            raise AssertionError(received)
    error = info.value
    assert error.code() == asgi_grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == FAIL_DETAILS
    trailing = dict(error.trailing_metadata())
    assert trailing["grpc-status-details-bin"] == status_details(FAIL_DETAILS)
    assert trailing["x-fail"] == "yes"


async def test_error_mid_stream_keeps_messages(stub: Any) -> None:
    call = stub.ServerStream(pb2.EchoRequest(message="fail", count=5))
    assert [(await call.read()).index for _ in range(2)] == [0, 1]
    with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
        await call.read()
    assert info.value.code() == asgi_grpc.StatusCode.INVALID_ARGUMENT


async def test_deadline(stub: Any) -> None:
    reply = await stub.Unary(pb2.EchoRequest(message="deadline"), timeout=5)
    assert 3000 < reply.index <= 5000  # the server saw the deadline
    with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
        await stub.Unary(pb2.EchoRequest(message="slow", delay_ms=5000), timeout=0.3)
    assert info.value.code() == asgi_grpc.StatusCode.DEADLINE_EXCEEDED


async def test_unknown_method(stub: Any) -> None:
    channel = stub.Unary._channel  # (the stub's channel, for a method the server lacks)
    nope = channel.unary_unary("/asgi_grpc.test.Echo/Nope")
    with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
        await nope(b"")
    assert info.value.code() == asgi_grpc.StatusCode.UNIMPLEMENTED


async def test_cancel(stub: Any) -> None:
    call = stub.ServerStream(pb2.EchoRequest(message="s", count=1000, delay_ms=20))
    await call.read()
    assert call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call.read()


async def test_unreachable_server_is_unavailable() -> None:
    async with asgi_grpc.aio.insecure_channel(
        "127.0.0.1:1", options=[("asgi_grpc.grpc_web", True)]
    ) as channel:
        with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
            await pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest())
        assert info.value.code() == asgi_grpc.StatusCode.UNAVAILABLE


async def test_compression(web_server: Any) -> None:
    options = [
        ("asgi_grpc.grpc_web", True),
        ("grpc.default_compression_algorithm", asgi_grpc.Compression.Gzip),
    ]
    server_options = [("grpc.default_compression_algorithm", asgi_grpc.Compression.Gzip)]
    async with web_server(server_options) as base_url:
        target = base_url.removeprefix("http://")
        async with asgi_grpc.aio.insecure_channel(target, options=options) as channel:
            reply = await pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="z" * 5000))
            assert reply.message == "z" * 5000


# The same calls over gRPC, made by grpcio (the oracle), and over gRPC-Web by asgi_grpc: the
# same outcome (responses, status, details, user metadata).
SCENARIOS = {
    "ok": ("Unary", pb2.EchoRequest(message="hi"), None),
    "metadata": ("Unary", pb2.EchoRequest(message="meta"), None),
    "error": ("Unary", pb2.EchoRequest(message="fail"), None),
    "stream": ("ServerStream", pb2.EchoRequest(message="s", count=3), None),
    "stream-error": ("ServerStream", pb2.EchoRequest(message="fail", count=5), None),
    "deadline": ("Unary", pb2.EchoRequest(message="slow", delay_ms=3000), 0.3),
    "unknown": ("Nope", pb2.EchoRequest(), None),
}


async def _outcome(channel: Any, method: str, request: Any, timeout: float | None) -> Any:
    path = f"/asgi_grpc.test.Echo/{method}"
    kwargs = {
        "request_serializer": pb2.EchoRequest.SerializeToString,
        "response_deserializer": pb2.EchoResponse.FromString,
    }
    if method == "ServerStream":
        call = channel.unary_stream(path, **kwargs)(
            request, timeout=timeout, metadata=(("x-req", "r"),)
        )
    else:
        call = channel.unary_unary(path, **kwargs)(
            request, timeout=timeout, metadata=(("x-req", "r"),)
        )
    responses = []
    try:
        if method == "ServerStream":
            async for response in call:
                responses.append(str(response))
        else:
            responses.append(str(await call))
    except (grpc.aio.AioRpcError, asgi_grpc.aio.AioRpcError):
        pass  # the outcome is compared below

    def user(metadata: Any) -> list[Any]:
        keep = ("x-", "grpc-status-details-bin")
        return sorted((k, v) for k, v in (metadata or ()) if k.startswith(keep))

    return (
        responses,
        (await call.code()).name,
        await call.details(),
        user(await call.initial_metadata()),
        user(await call.trailing_metadata()),
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_same_outcome_as_grpcio_over_grpc(web_server: Any, scenario: str) -> None:
    method, request, timeout = SCENARIOS[scenario]
    async with web_server() as base_url:
        target = base_url.removeprefix("http://")
        async with grpc.aio.insecure_channel(target) as channel:
            expected = await _outcome(channel, method, request, timeout)
        for options in ([("asgi_grpc.grpc_web", True)], [("asgi_grpc.grpc_web", "text")]):
            async with asgi_grpc.aio.insecure_channel(target, options=options) as channel:
                assert await _outcome(channel, method, request, timeout) == expected


def test_blocking_api_both_sides() -> None:
    """grpc's blocking server and channel: the same options reach gRPC-Web and CORS."""
    server = asgi_grpc.server(
        concurrent.futures.ThreadPoolExecutor(4),
        options=[("asgi_grpc.cors_origins", "http://a.test, http://b.test")],
    )

    class Echo(pb2_grpc.EchoServicer):
        def Unary(self, request: Any, context: Any) -> Any:
            return pb2.EchoResponse(message=request.message)

    pb2_grpc.add_EchoServicer_to_server(Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        preflight = httpx.options(
            f"http://127.0.0.1:{port}/asgi_grpc.test.Echo/Unary",
            headers={"origin": "http://b.test", "access-control-request-method": "POST"},
        )
        assert preflight.headers["access-control-allow-origin"] == "http://b.test"
        with asgi_grpc.insecure_channel(
            f"127.0.0.1:{port}", options=[("asgi_grpc.grpc_web", "text")]
        ) as channel:
            reply, call = pb2_grpc.EchoStub(channel).Unary.with_call(
                pb2.EchoRequest(message="sync"), timeout=10
            )
            assert reply.message == "sync"
            assert call.code() == asgi_grpc.StatusCode.OK
    finally:
        server.stop(None)


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
async def test_tls(tls: Any, http2: bool) -> None:
    """Over TLS: HTTP/1.1, or HTTP/2 chosen by ALPN; the server's certificate is verified."""
    server = asgi_grpc.aio.server()
    pb2_grpc.add_EchoServicer_to_server(WebEcho(), server)
    credentials = asgi_grpc.ssl_server_credentials([(tls.server_key, tls.server_chain)])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        options = [("asgi_grpc.grpc_web", "text"), ("asgi_grpc.grpc_web_http2", http2)]
        channel_credentials = asgi_grpc.ssl_channel_credentials(root_certificates=tls.ca_pem)
        async with asgi_grpc.aio.secure_channel(
            f"localhost:{port}", channel_credentials, options=options
        ) as channel:
            reply = await pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="http_version"))
            assert reply.message == ("2" if http2 else "1.1")
        untrusted = asgi_grpc.ssl_channel_credentials()  # the system CAs: not ours
        async with asgi_grpc.aio.secure_channel(
            f"localhost:{port}", untrusted, options=options
        ) as channel:
            with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
                await pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest())
            assert info.value.code() == asgi_grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(None)
