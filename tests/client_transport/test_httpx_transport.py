"""``GrpcTransport`` under ``httpx.AsyncClient``, against a real grpcio server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from asgi_grpc._core import MessageReader, StatusCode, frame, parse_trailers
from asgi_grpc.client._connection import Stream
from asgi_grpc.client._transport import GrpcTransport
from asgi_grpc.client._transport_errors import ConnectError, TransportError

from .conftest import TLS, Peer, client_ssl_context, start_peer, stop_peer
from .support import BIDI, CLIENT_STREAM, SERVER_STREAM, UNARY, headers, pb2

GRPC_HEADERS = {name.decode(): value.decode() for name, value in headers()}


def decode(body: bytes) -> list[bytes]:
    reader = MessageReader()
    messages = [payload for _, payload in reader.feed(body)]
    reader.close()
    return messages


@pytest.fixture(params=["h2c", "tls", "unix"])
async def client_and_base(
    request: pytest.FixtureRequest, tls: TLS
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    peer: Peer = await start_peer(request.param, tls)
    pool = peer.pool()  # only to learn the address
    address = pool.addresses[0]
    if request.param == "unix":
        transport = GrpcTransport(uds=str(address).removeprefix("unix:"))
        base = "http://localhost"
    elif request.param == "tls":
        transport = GrpcTransport(verify=client_ssl_context(tls))
        base = f"https://localhost:{address.port}"  # type: ignore[union-attr]
    else:
        transport = GrpcTransport()
        base = f"http://127.0.0.1:{address.port}"  # type: ignore[union-attr]
    async with httpx.AsyncClient(transport=transport, base_url=base) as client:
        yield client, base
    await stop_peer(peer)


async def test_unary_through_httpx(client_and_base: tuple[httpx.AsyncClient, str]) -> None:
    client, _ = client_and_base
    body = frame(pb2.EchoRequest(message="via httpx").SerializeToString())
    response = await client.post(UNARY, content=body, headers=GRPC_HEADERS)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/grpc"
    assert response.http_version == "HTTP/2"
    (message,) = decode(response.content)
    assert pb2.EchoResponse.FromString(message).message == "via httpx"
    stream: Stream = response.extensions["grpc_stream"]
    status = parse_trailers(await stream.trailers())
    assert status.code is StatusCode.OK


async def test_trailers_only_through_httpx(client_and_base: tuple[httpx.AsyncClient, str]) -> None:
    client, _ = client_and_base
    response = await client.post("/asgi_grpc.test.Echo/Missing", content=b"", headers=GRPC_HEADERS)
    assert response.status_code == 200
    assert response.content == b""
    stream: Stream = response.extensions["grpc_stream"]
    assert stream.trailers_only
    assert response.headers["grpc-status"] == "12"
    assert parse_trailers(await stream.trailers()).code is StatusCode.UNIMPLEMENTED


async def test_streaming_request_body_is_sent_while_reading(
    client_and_base: tuple[httpx.AsyncClient, str],
) -> None:
    """An async body is pumped in the background: the client-streaming call completes."""
    client, _ = client_and_base

    async def requests() -> AsyncIterator[bytes]:
        for i in range(5):
            yield frame(pb2.EchoRequest(payload=b"p" * i).SerializeToString())
            await asyncio.sleep(0)

    response = await client.post(CLIENT_STREAM, content=requests(), headers=GRPC_HEADERS)
    (message,) = decode(response.content)
    assert pb2.EchoResponse.FromString(message).message == "5 messages, 10 bytes"
    assert parse_trailers(await response.extensions["grpc_stream"].trailers()).code is (
        StatusCode.OK
    )


async def test_duplex_through_the_stream_handle(
    client_and_base: tuple[httpx.AsyncClient, str],
) -> None:
    """``grpc_duplex``: headers only, then request messages written through the handle while
    the response body streams through httpx. grpcio sends the response headers only with the
    first response, so the first request goes out before ``send`` returns."""
    client, _ = client_and_base
    request = client.build_request("POST", BIDI, headers=GRPC_HEADERS)
    first = frame(pb2.EchoRequest(message="m0").SerializeToString())
    opened: list[Stream] = []
    sends: list[asyncio.Future[None]] = []

    def on_stream(stream: Stream) -> None:
        opened.append(stream)
        sends.append(asyncio.ensure_future(stream.send(first)))

    request.extensions["grpc_duplex"] = on_stream
    response = await asyncio.wait_for(client.send(request, stream=True), 10)
    stream: Stream = response.extensions["grpc_stream"]
    assert opened == [stream]
    await sends[0]
    reader = MessageReader()
    chunks = response.aiter_raw()
    try:
        for i in range(50):
            if i:
                await stream.send(frame(pb2.EchoRequest(message=f"m{i}").SerializeToString()))
            messages: list[bytes] = []
            while not messages:
                messages = [p for _, p in reader.feed(await chunks.__anext__())]
            assert pb2.EchoResponse.FromString(messages[0]).message == f"m{i}"
        await stream.end()
        assert [c async for c in chunks] == []
    finally:
        await response.aclose()
    assert parse_trailers(await stream.trailers()).code is StatusCode.OK


async def test_closing_a_response_early_resets_the_stream(
    client_and_base: tuple[httpx.AsyncClient, str],
) -> None:
    client, _ = client_and_base
    body = frame(pb2.EchoRequest(payload=b"x" * 10_000, count=10_000).SerializeToString())
    async with client.stream("POST", SERVER_STREAM, content=body, headers=GRPC_HEADERS) as r:
        async for _ in r.aiter_raw():
            break
        stream: Stream = r.extensions["grpc_stream"]
    assert stream.done
    assert stream.connection.active_streams == 0
    # And the client keeps working.
    response = await client.post(
        UNARY, content=frame(pb2.EchoRequest().SerializeToString()), headers=GRPC_HEADERS
    )
    assert response.status_code == 200


async def test_lean_path_shares_the_pool(client_and_base: tuple[httpx.AsyncClient, str]) -> None:
    client, base = client_and_base
    transport = client._transport
    assert isinstance(transport, GrpcTransport)
    pool = transport.pool(base)
    body = frame(pb2.EchoRequest(message="lean").SerializeToString())
    await client.post(UNARY, content=body, headers=GRPC_HEADERS)
    stream = await pool.request(UNARY, headers(), body)
    async with stream:
        (message,) = decode(b"".join([c async for c in _chunks(stream)]))
    assert pb2.EchoResponse.FromString(message).message == "lean"
    assert len(pool.connections) == 1


async def _chunks(stream: Stream) -> AsyncIterator[bytes]:
    while chunk := await stream.read():
        yield chunk


async def test_connect_error_is_an_httpx_connect_error() -> None:
    async with httpx.AsyncClient(transport=GrpcTransport()) as client:
        with pytest.raises(httpx.ConnectError) as info:
            await client.post("http://127.0.0.1:1/x", content=b"")
    assert isinstance(info.value, ConnectError)
    assert isinstance(info.value, TransportError)
    assert info.value.status is StatusCode.UNAVAILABLE


async def test_unsupported_scheme() -> None:
    async with httpx.AsyncClient(transport=GrpcTransport()) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.post("ftp://127.0.0.1:1/x", content=b"")


async def test_tls_default_verify_rejects_a_private_ca(tls: TLS) -> None:
    peer = await start_peer("tls", tls)
    try:
        port = peer.pool().addresses[0].port  # type: ignore[union-attr]
        async with httpx.AsyncClient(transport=GrpcTransport()) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.post(f"https://localhost:{port}{UNARY}", content=b"")
    finally:
        await stop_peer(peer)
