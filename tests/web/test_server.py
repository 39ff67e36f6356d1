"""gRPC-Web served by GrpcApp, spoken by hand with httpx over HTTP/1.1 and HTTP/2 (h2c)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psutil
import pytest
from google.rpc import status_pb2

import asgi_grpc
from tests.web.conftest import ORIGIN
from tests.web.servicer import FAIL_DETAILS, pb2, status_details
from tests.web.support import WEB_TYPES, echo, frame, parse_body, request_body

UNARY = "/asgi_grpc.test.Echo/Unary"
STREAM = "/asgi_grpc.test.Echo/ServerStream"
CLIENT_STREAM = "/asgi_grpc.test.Echo/ClientStream"


@pytest.fixture(params=["http1", "http2"])
async def client(request: pytest.FixtureRequest, web_server) -> AsyncIterator[httpx.AsyncClient]:
    async with web_server() as base_url:
        http2 = request.param == "http2"
        async with httpx.AsyncClient(
            base_url=base_url, http1=not http2, http2=http2, timeout=10
        ) as client:
            yield client


def headers(content_type: str, **extra: str) -> dict[str, str]:
    return {"content-type": content_type, "x-grpc-web": "1", **extra}


async def post(
    client: httpx.AsyncClient, path: str, content_type: str, body: bytes, **extra: str
) -> httpx.Response:
    response = await client.post(path, content=body, headers=headers(content_type, **extra))
    expected = "HTTP/2" if client._transport._pool._http2 else "HTTP/1.1"  # type: ignore[attr-defined]
    assert response.http_version == expected
    return response


@pytest.mark.parametrize("content_type", WEB_TYPES)
async def test_unary(client: httpx.AsyncClient, content_type: str) -> None:
    body = request_body(content_type, pb2.EchoRequest(message="hi", payload=b"\x00\x01" * 100))
    response = await post(client, UNARY, content_type, body)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert "grpc-status" not in response.headers  # the status is in the body
    parsed = parse_body(content_type, response.content)
    assert [echo(m).message for m in parsed.messages] == ["hi"]
    assert echo(parsed.messages[0]).payload == b"\x00\x01" * 100
    assert parsed.trailer_frames == 1
    assert parsed.trailers["grpc-status"] == "0"


@pytest.mark.parametrize("content_type", WEB_TYPES)
async def test_server_streaming_arrives_incrementally(
    client: httpx.AsyncClient, content_type: str
) -> None:
    body = request_body(content_type, pb2.EchoRequest(message="s", count=4, delay_ms=50))
    request = client.build_request("POST", STREAM, content=body, headers=headers(content_type))
    response = await client.send(request, stream=True)
    chunks = [chunk async for chunk in response.aiter_raw()]
    await response.aclose()
    # Each message was flushed as it was written (the handler sleeps between them).
    assert len(chunks) >= 4
    parsed = parse_body(content_type, b"".join(chunks))
    assert [echo(m).message for m in parsed.messages] == ["s-0", "s-1", "s-2", "s-3"]
    assert parsed.trailers["grpc-status"] == "0"
    if "-text" in content_type:
        for chunk in chunks:  # each chunk is base64 on its own: decodable as it arrives
            base64.b64decode(chunk, validate=True)


async def test_client_streaming_in_one_body(client: httpx.AsyncClient) -> None:
    content_type = "application/grpc-web+proto"
    body = request_body(content_type, *(pb2.EchoRequest(message=str(i)) for i in range(3)))
    response = await post(client, CLIENT_STREAM, content_type, body)
    parsed = parse_body(content_type, response.content)
    assert echo(parsed.messages[0]).message == "0+1+2"
    assert parsed.trailers["grpc-status"] == "0"


@pytest.mark.parametrize("content_type", ["application/grpc-web", "application/grpc-web-text"])
async def test_metadata_both_ways(client: httpx.AsyncClient, content_type: str) -> None:
    body = request_body(content_type, pb2.EchoRequest(message="meta"))
    response = await post(client, UNARY, content_type, body, **{"x-req": "from-client"})
    assert response.headers["x-echo"] == "from-client"
    assert base64.b64decode(response.headers["x-echo-bin"] + "==") == b"\x00\xff"
    parsed = parse_body(content_type, response.content)
    assert echo(parsed.messages[0]).message == "meta:from-client"
    assert parsed.trailers["x-trail"] == "t-from-client"
    assert base64.b64decode(parsed.trailers["x-trail-bin"] + "==") == b"\x01\xfe"


@pytest.mark.parametrize("content_type", WEB_TYPES)
async def test_error_before_any_message_is_trailers_only(
    client: httpx.AsyncClient, content_type: str
) -> None:
    body = request_body(content_type, pb2.EchoRequest(message="fail"))
    response = await post(client, UNARY, content_type, body)
    assert response.status_code == 200
    assert response.content == b""  # the status went in the headers
    assert response.headers["grpc-status"] == "3"
    assert urllib.parse.unquote(response.headers["grpc-message"]) == FAIL_DETAILS
    assert response.headers["x-fail"] == "yes"
    details = base64.b64decode(response.headers["grpc-status-details-bin"] + "==")
    assert details == status_details(FAIL_DETAILS)
    assert status_pb2.Status.FromString(details).details[0].Unpack(pb2.EchoResponse())


@pytest.mark.parametrize("content_type", ["application/grpc-web", "application/grpc-web-text"])
async def test_error_mid_stream_in_trailer_frame(
    client: httpx.AsyncClient, content_type: str
) -> None:
    body = request_body(content_type, pb2.EchoRequest(message="fail", count=5))
    response = await post(client, STREAM, content_type, body)
    parsed = parse_body(content_type, response.content)
    assert [echo(m).index for m in parsed.messages] == [0, 1]
    assert parsed.trailers["grpc-status"] == "3"
    assert urllib.parse.unquote(parsed.trailers["grpc-message"]) == FAIL_DETAILS
    details = base64.b64decode(parsed.trailers["grpc-status-details-bin"] + "==")
    assert details == status_details(FAIL_DETAILS)


async def test_deadline(client: httpx.AsyncClient) -> None:
    content_type = "application/grpc-web"
    body = request_body(content_type, pb2.EchoRequest(message="deadline"))
    response = await post(client, UNARY, content_type, body, **{"grpc-timeout": "5S"})
    parsed = parse_body(content_type, response.content)
    assert 3000 < echo(parsed.messages[0]).index <= 5000
    body = request_body(content_type, pb2.EchoRequest(message="slow", delay_ms=5000))
    response = await post(client, UNARY, content_type, body, **{"grpc-timeout": "200m"})
    assert response.headers["grpc-status"] == "4"  # DEADLINE_EXCEEDED, before any message


async def test_unknown_method(client: httpx.AsyncClient) -> None:
    content_type = "application/grpc-web"
    body = request_body(content_type, pb2.EchoRequest())
    response = await post(client, "/asgi_grpc.test.Echo/Nope", content_type, body)
    assert response.headers["grpc-status"] == "12"


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (b"!!!!", "13", "not valid base64"),
        (b"AAAAAAU", "13", "not whole base64"),  # 7 characters: truncated
        (base64.b64encode(frame(b"\x0a\x02hi")[:6]), "13", "middle of a message"),
        (base64.b64encode(b"\x80" + b"\x00" * 4), "13", "compression flag"),
    ],
)
async def test_hostile_text_bodies(
    client: httpx.AsyncClient, body: bytes, code: str, words: str
) -> None:
    for path in (UNARY, CLIENT_STREAM):
        response = await post(client, path, "application/grpc-web-text", body)
        status_headers = response.headers
        if "grpc-status" not in status_headers:  # (a message came first: the trailer frame)
            status_headers = parse_body("application/grpc-web-text", response.content).trailers
        status = status_headers["grpc-status"]
        message = urllib.parse.unquote(status_headers.get("grpc-message", ""))
        assert status == code, (path, response.headers, response.content)
        assert words in message


async def test_hostile_binary_bodies(client: httpx.AsyncClient) -> None:
    content_type = "application/grpc-web"
    # Truncated frame, too-large message, two messages for a unary call.
    truncated = frame(b"\x0a\x02hi")[:-1]
    response = await post(client, UNARY, content_type, truncated)
    assert response.headers["grpc-status"] == "13"
    huge = b"\x00" + (5 * 1024 * 1024).to_bytes(4, "big")
    response = await post(client, UNARY, content_type, huge)
    assert response.headers["grpc-status"] == "8"  # RESOURCE_EXHAUSTED: max receive length
    two = request_body(content_type, pb2.EchoRequest(), pb2.EchoRequest())
    response = await post(client, UNARY, content_type, two)
    assert response.headers["grpc-status"] == "13"


async def test_text_request_with_padding_between_chunks(client: httpx.AsyncClient) -> None:
    """A client may base64 each message on its own: padding then sits mid-body."""
    content_type = "application/grpc-web-text"
    parts = [frame(pb2.EchoRequest(message=m).SerializeToString()) for m in ("a", "bb")]
    body = b"".join(base64.b64encode(p) for p in parts)
    assert b"=" in body[:-4]
    response = await post(client, CLIENT_STREAM, content_type, body)
    parsed = parse_body(content_type, response.content)
    assert echo(parsed.messages[0]).message == "a+bb"


async def test_cors_preflight_and_exposed_headers(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        UNARY,
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-grpc-web,x-user-agent,x-req",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed = preflight.headers["access-control-allow-headers"]
    for name in ("content-type", "x-grpc-web", "x-user-agent", "x-req"):
        assert name in allowed
    content_type = "application/grpc-web"
    body = request_body(content_type, pb2.EchoRequest(message="meta"))
    response = await post(client, UNARY, content_type, body, origin=ORIGIN)
    assert response.headers["access-control-allow-origin"] == ORIGIN
    exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
    wanted = {"grpc-status", "grpc-message", "grpc-status-details-bin", "x-echo", "x-echo-bin"}
    assert wanted <= exposed


async def test_cors_other_origin_refused(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        UNARY,
        headers={"origin": "http://evil.test", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    content_type = "application/grpc-web"
    body = request_body(content_type, pb2.EchoRequest(message="x"))
    response = await post(client, UNARY, content_type, body, origin="http://evil.test")
    assert "access-control-allow-origin" not in response.headers


async def test_grpc_web_can_be_turned_off(web_server) -> None:
    async with web_server([("asgi_grpc.grpc_web", False)]) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            content_type = "application/grpc-web"
            body = request_body(content_type, pb2.EchoRequest(message="x"))
            response = await client.post(UNARY, content=body, headers=headers(content_type))
            assert response.status_code == 415


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
@pytest.mark.parametrize("content_type", ["application/grpc-web", "application/grpc-web-text"])
async def test_request_bound_when_the_handler_stops_reading(
    web_server: Any, http2: bool, content_type: str
) -> None:
    """A client-streaming handler that stops reading holds the client back (the request buffer
    bound and flow control, as over gRPC); the deadline then ends the call."""
    text = "-text" in content_type
    chunk = frame(pb2.EchoRequest(message="x" * 1000).SerializeToString()) * 64  # ~64 KiB
    total = 256 * 1024 * 1024
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        first = frame(pb2.EchoRequest(message="stall").SerializeToString())
        yield base64.b64encode(first) if text else first
        encoded = base64.b64encode(chunk) if text else chunk
        while sent < total:
            yield encoded
            sent += len(encoded)

    process = psutil.Process()
    before = process.memory_info().rss
    async with web_server() as base_url:
        async with httpx.AsyncClient(base_url=base_url, http1=not http2, http2=http2) as client:
            request = client.build_request(
                "POST",
                CLIENT_STREAM,
                content=body(),
                headers=headers(content_type, **{"grpc-timeout": "2S"}),
            )
            try:
                response = await asyncio.wait_for(client.send(request), 20)
                status = response.headers.get("grpc-status")
            except (httpx.HTTPError, asyncio.TimeoutError) as exc:
                status = repr(exc)
    grown = process.memory_info().rss - before
    # Held back long before the whole body (256 MiB); the server grew by far less. (httpx then
    # fails its upload, or gets DEADLINE_EXCEEDED: it cannot read a response while it writes.)
    assert sent < 32 * 1024 * 1024, (sent, status)
    assert grown < 64 * 1024 * 1024, (grown, status)


async def test_message_compression(web_server: Any) -> None:
    """PROTOCOL-WEB.md leaves compression to HTTP, but a gRPC-Web peer that uses gRPC's
    per-message compression (grpc-encoding) gets it, both ways, as over gRPC."""
    content_type = "application/grpc-web"
    options = [("grpc.default_compression_algorithm", asgi_grpc.Compression.Gzip)]
    async with web_server(options) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        payload = pb2.EchoRequest(message="z" * 1000).SerializeToString()
        body = frame(gzip.compress(payload), flag=1)
        response = await post(
            client,
            UNARY,
            content_type,
            body,
            **{"grpc-encoding": "gzip", "grpc-accept-encoding": "gzip"},
        )
        assert response.headers["grpc-encoding"] == "gzip"
        assert response.content[0] == 1  # a compressed message
        length = int.from_bytes(response.content[1:5], "big")
        reply = pb2.EchoResponse.FromString(gzip.decompress(response.content[5 : 5 + length]))
        assert reply.message == "z" * 1000
        assert parse_body(content_type, response.content[5 + length :]).trailers == {
            "grpc-status": "0"
        }
