"""Wire-level behaviour, checked frame by frame with a bare h2 client."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import asgi_grpc
from asgi_grpc._core import frame
from tests.server.h2raw import RawClient
from tests.server.servicer import AsyncEcho, Events, pb2, pb2_grpc

UNARY = "/asgi_grpc.test.Echo/Unary"


@pytest.fixture
async def server() -> AsyncIterator[tuple[Any, int]]:
    srv = asgi_grpc.aio.server(compression=None)
    pb2_grpc.add_EchoServicer_to_server(AsyncEcho(Events()), srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    yield srv, port
    await srv.stop(None)


@pytest.fixture
async def client(server: tuple[Any, int]) -> AsyncIterator[RawClient]:
    raw = await RawClient.connect("127.0.0.1", server[1])
    yield raw
    await raw.close()


def request(message: str = "", **fields: Any) -> bytes:
    return frame(pb2.EchoRequest(message=message, **fields).SerializeToString())


async def test_unary_response_shape(client: RawClient) -> None:
    response = await client.call(UNARY, request("shape"))
    assert response.status == 200
    assert response.header(b"content-type") == b"application/grpc"
    assert response.trailers is not None
    assert dict(response.trailers)[b"grpc-status"] == b"0"
    [(compressed, payload)] = response.messages()
    assert not compressed
    assert pb2.EchoResponse.FromString(payload).message == "shape"
    # Hypercorn's date/server headers would reach clients as metadata: none are sent.
    names = {name for name, _ in response.headers}
    assert not names & {b"date", b"server"}


async def test_errors_before_any_response_are_trailers_only(client: RawClient) -> None:
    response = await client.call("/no.Such/Method", request())
    assert response.trailers_only
    assert response.grpc_status == 12
    assert response.header(b"content-type") == b"application/grpc"
    assert response.data == b""


async def test_status_message_is_percent_encoded(client: RawClient) -> None:
    response = await client.call(UNARY, request("abort:INTERNAL:a\tb\nc % é😀"))
    assert response.grpc_status == 13
    assert response.header(b"grpc-message") == b"a%09b%0Ac %25 %C3%A9%F0%9F%98%80"


async def test_unsupported_encoding_is_unimplemented(client: RawClient) -> None:
    response = await client.call(UNARY, request(), [(b"grpc-encoding", b"snappy")])
    assert response.grpc_status == 12
    accepted = response.header(b"grpc-accept-encoding") or b""
    assert {b"gzip", b"deflate", b"identity"} <= set(accepted.replace(b" ", b"").split(b","))


async def test_gzip_request_and_negotiated_response(server: tuple[Any, int]) -> None:
    srv = asgi_grpc.aio.server(compression=asgi_grpc.Compression.Gzip)
    pb2_grpc.add_EchoServicer_to_server(AsyncEcho(Events()), srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    raw = await RawClient.connect("127.0.0.1", port)
    try:
        body = pb2.EchoRequest(message="zip", payload=b"a" * 500).SerializeToString()
        compressed_request = frame(gzip.compress(body), compressed=True)
        headers = [(b"grpc-encoding", b"gzip"), (b"grpc-accept-encoding", b"gzip")]
        response = await raw.call(UNARY, compressed_request, headers)
        assert response.header(b"grpc-encoding") == b"gzip"
        [(compressed, payload)] = response.messages()
        assert compressed
        assert pb2.EchoResponse.FromString(gzip.decompress(payload)).payload == b"a" * 500
        # A client that accepts only identity gets identity, whatever the server prefers.
        response = await raw.call(UNARY, request("plain"), [(b"grpc-accept-encoding", b"identity")])
        assert response.header(b"grpc-encoding") in (None, b"identity")
        [(compressed, _)] = response.messages()
        assert not compressed
    finally:
        await raw.close()
        await srv.stop(None)


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        pytest.param(b"\x02\x00\x00\x00\x00", [], 13, id="bad-compressed-flag"),
        pytest.param(b"\x00\x00\x00\x00\x10abc", [], 13, id="truncated-message"),
        pytest.param(frame(b"xx", compressed=True), [], 13, id="compressed-without-encoding"),
        pytest.param(
            frame(b"not gzip", compressed=True),
            [(b"grpc-encoding", b"gzip")],
            13,
            id="corrupt-gzip",
        ),
        pytest.param(frame(b"\xff\xff\xff"), [], 13, id="undecodable-protobuf"),
        pytest.param(request(), [(b"grpc-timeout", b"soon")], 13, id="malformed-timeout"),
        pytest.param(request(), [(b"grpc-timeout", b"123456789S")], 13, id="timeout-too-long"),
        pytest.param(request(), [(b"x-bad-bin", b"!!notbase64!!")], 13, id="bad-binary-metadata"),
        pytest.param(request() + request(), [], 13, id="two-messages-for-unary"),
        pytest.param(b"", [], 12, id="no-message-for-unary"),
        pytest.param(b"\x00\x7f\xff\xff\xff", [], 8, id="length-over-limit"),
    ],
)
async def test_malformed_input_gets_a_status_and_the_connection_survives(
    client: RawClient, body: bytes, headers: list[tuple[bytes, bytes]], code: int
) -> None:
    response = await client.call(UNARY, body, headers)
    assert response.grpc_status == code, response
    assert response.header(b"grpc-message")
    ok = await client.call(UNARY, request("next"))
    assert ok.grpc_status == 0


async def test_client_reset_mid_request_stream(client: RawClient) -> None:
    stream_id = client.start("/asgi_grpc.test.Echo/ClientStream")
    client.send(stream_id, request("part"))
    client.reset(stream_id)
    ok = await client.call(UNARY, request("after reset"))
    assert ok.grpc_status == 0


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"method": b"GET", "end_stream": True}, 405),
        ({"content_type": b"application/json"}, 415),
    ],
)
async def test_not_grpc_gets_an_http_error(client: RawClient, kwargs: Any, status: int) -> None:
    end = kwargs.pop("end_stream", False)
    stream_id = client.start(UNARY, end_stream=end, **kwargs)
    if not end:
        client.send(stream_id, b"{}", end_stream=True)
    response = await client.response(stream_id)
    assert response.status == status
    assert b"gRPC" in response.data or b"grpc" in response.data
    assert (await client.call(UNARY, request("fine"))).grpc_status == 0


async def test_missing_te_trailers_is_rejected(client: RawClient) -> None:
    response = await client.call(UNARY, request(), [(b"te", None)])  # type: ignore[list-item]
    assert response.status == 400
    assert b"te: trailers" in response.data


async def test_http1_request_gets_505(server: tuple[Any, int]) -> None:
    async with httpx.AsyncClient(http1=True, http2=False) as http:
        response = await http.post(
            f"http://127.0.0.1:{server[1]}{UNARY}",
            content=request(),
            headers={"content-type": "application/grpc", "te": "trailers"},
        )
    assert response.status_code == 505
    assert "HTTP/2" in response.text


async def test_set_compression_and_disable_next_message_compression(client: RawClient) -> None:
    headers = [(b"grpc-accept-encoding", b"gzip,identity")]
    response = await client.call(UNARY, request("compress", payload=b"z" * 100), headers)
    assert response.header(b"grpc-encoding") == b"gzip"
    [(compressed, payload)] = response.messages()
    assert compressed
    assert pb2.EchoResponse.FromString(gzip.decompress(payload)).payload == b"z" * 100

    response = await client.call(
        "/asgi_grpc.test.Echo/ServerStream", request("disable_next", count=4, payload=b"q"), headers
    )
    flags = [compressed for compressed, _ in response.messages()]
    assert flags == [False, True, False, True]
    # A client that does not accept gzip never gets it, whatever the handler asks for.
    response = await client.call(
        UNARY, request("compress"), [(b"grpc-accept-encoding", b"identity")]
    )
    [(compressed, _)] = response.messages()
    assert not compressed
