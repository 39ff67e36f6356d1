"""Hostile HTTP/2 peers against the connection itself (issue 9, items 7 and 8, and rapid reset):
a bad preface, PING floods and keepalive policy, streams opened and reset in a loop; over a real
socket against a live asgi_grpc server in its own process, grpcio's server as the control."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hyperframe.frame import PingFrame, RstStreamFrame, SettingsFrame

import asgi_grpc
from tests.conftest import TLS

from ._server_h2 import (
    ENHANCE_YOUR_CALM,
    PREFACE,
    PROTOCOL_ERROR,
    MiB,
    Peer,
    ServerProcess,
    request_headers,
    server_process,
)

CANCEL = 0x8


@pytest.fixture(scope="module")
def asgi() -> Iterator[ServerProcess]:
    with server_process("asgi_grpc") as server:
        yield server


@pytest.fixture(scope="module", params=["asgi_grpc", "grpcio"])
def both(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with server_process(request.param) as server:
        yield server


# -- item 7: the preface ------------------------------------------------------------------------


async def test_random_bytes_instead_of_the_preface_close_at_once(both: ServerProcess) -> None:
    """4 KiB of random bytes: the connection is closed at once (it stayed open for minutes),
    with GOAWAY PROTOCOL_ERROR from asgi_grpc (RFC 9113 3.4)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", both.port)
    try:
        # Not a plausible HTTP/1.1 request line either (starts with a byte no method has).
        writer.write(b"\x00" + os.urandom(4095))
        started = time.monotonic()
        data = await asyncio.wait_for(reader.read(), 5)
        assert time.monotonic() - started < 3
    finally:
        writer.close()
    if both.impl == "asgi_grpc":
        assert data[3] == 0x7  # a GOAWAY frame
        assert int.from_bytes(data[13:17], "big") == PROTOCOL_ERROR
    assert both.witness() == b"witness"


async def test_ping_as_the_first_frame_is_a_protocol_error(both: ServerProcess) -> None:
    """The preface must be followed by SETTINGS (RFC 9113 3.4); a PING there ends the
    connection (asgi_grpc: GOAWAY PROTOCOL_ERROR; grpcio closes)."""
    async with Peer.connect(both.port, preface=False) as peer:
        peer.write(PREFACE, PingFrame(0, opaque_data=b"12345678"))
        goaway = await peer.closed(5)
        acked = [f for f in peer.frames if isinstance(f, PingFrame) and "ACK" in f.flags]
    assert not acked
    if both.impl == "asgi_grpc":
        assert goaway is not None
        assert goaway.error_code == PROTOCOL_ERROR
    assert both.witness() == b"witness"


@pytest.mark.parametrize("first", [b"\x00" * 4096, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(9)])
async def test_bad_preface_over_tls(tls: TLS, first: bytes) -> None:
    """Over TLS (ALPN h2) the same: garbage instead of the preface, or a preface followed by a
    frame that is not SETTINGS (here DATA), gets GOAWAY PROTOCOL_ERROR at once."""
    server = asgi_grpc.aio.server()
    port = server.add_secure_port(
        "127.0.0.1:0", asgi_grpc.ssl_server_credentials([(tls.server_key, tls.server_chain)])
    )
    await server.start()
    try:
        context = ssl.create_default_context(cadata=tls.ca_pem.decode())
        context.set_alpn_protocols(["h2"])
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="localhost"
        )
        try:
            writer.write(first)
            data = await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
        goaways = [i for i in range(len(data) - 8) if data[i + 3] == 0x7]
        assert goaways, data
        at = goaways[-1]
        assert int.from_bytes(data[at + 13 : at + 17], "big") == PROTOCOL_ERROR
    finally:
        await server.stop(None)


async def test_http1_still_reaches_the_server(asgi: ServerProcess) -> None:
    """The early refusal of garbage leaves HTTP/1.1 requests alone."""
    reader, writer = await asyncio.open_connection("127.0.0.1", asgi.port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    assert data.startswith(b"HTTP/1.1 ")


async def test_h2c_upgrade_still_works(asgi: ServerProcess) -> None:
    """The HTTP/1.1 request of an h2c upgrade (connection and upgrade headers included) becomes
    stream 1 and is answered: the HTTP/2 header checks do not apply to it."""
    async with Peer.connect(asgi.port, preface=False, read=False) as peer:
        peer.write(
            b"POST /h.H/Unary HTTP/1.1\r\nhost: localhost\r\n"
            b"connection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\n"
            b"http2-settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
            b"content-type: application/grpc\r\nte: trailers\r\n\r\n"
        )
        switched = await asyncio.wait_for(peer.reader.readuntil(b"\r\n\r\n"), 5)
        assert switched.startswith(b"HTTP/1.1 101")
        peer.start_reading()
        peer.write(PREFACE, SettingsFrame(0))
        response = await peer.response(1)
    assert isinstance(response, dict)
    assert response[b":status"] == b"200"
    assert b"grpc-status" in response


# -- item 8: keepalive enforcement --------------------------------------------------------------


async def pings_until_goaway(peer: Peer, count: int, between: Any = None) -> int:
    """Send up to ``count`` PINGs one at a time (each after the previous ACK, ``between``
    awaited in between); how many were sent when the server said GOAWAY (0: it never did)."""
    await peer.wait(lambda f: isinstance(f, SettingsFrame))
    for i in range(1, count + 1):
        data = b"ping%04d" % i
        peer.write(PingFrame(0, opaque_data=data))
        await peer.wait(
            lambda f, data=data: (
                (isinstance(f, PingFrame) and f.opaque_data == data) or peer.goaway is not None
            )
        )
        if peer.goaway is not None:
            return i
        if between is not None:
            await between()
    return 0


async def test_ping_flood_gets_too_many_pings(both: ServerProcess) -> None:
    """PINGs with no call in flight: grpc-core's policy allows one per two hours, and a third
    strike over ``grpc.http2.max_ping_strikes`` (2) is GOAWAY ENHANCE_YOUR_CALM "too_many_pings"
    (asgi_grpc acknowledged 164,000 of them)."""
    async with Peer.connect(both.port) as peer:
        sent = await pings_until_goaway(peer, 50)
        goaway = peer.goaway
        await peer.closed(5)
    assert sent == 4
    assert goaway is not None
    assert goaway.error_code == ENHANCE_YOUR_CALM
    assert goaway.additional_data == b"too_many_pings"
    assert both.witness() == b"witness"


async def test_pings_between_responses_are_fine(both: ServerProcess) -> None:
    """Sending HEADERS or DATA resets the strikes: a PING after each response (as BDP probes
    do) is never too many."""
    async with Peer.connect(both.port) as peer:

        async def call() -> None:
            response = await peer.response(peer.request())
            assert isinstance(response, dict)

        assert await pings_until_goaway(peer, 20, call) == 0


@pytest.mark.parametrize("impl", ["asgi_grpc", "grpcio"])
@pytest.mark.parametrize(
    "options",
    [
        [("grpc.http2.max_ping_strikes", 0)],
        [
            ("grpc.http2.min_ping_interval_without_data_ms", 0),
            ("grpc.keepalive_permit_without_calls", 1),
        ],
    ],
    ids=["no-strike-limit", "permit-without-calls"],
)
async def test_ping_policy_options_are_honoured(impl: str, options: Any) -> None:
    """grpcio's server options for the policy reach the HTTP/2 layer."""
    with server_process(impl, options) as server:
        async with Peer.connect(server.port) as peer:
            assert await pings_until_goaway(peer, 30) == 0


async def test_stricter_ping_policy_option(asgi: ServerProcess) -> None:
    """``grpc.http2.max_ping_strikes`` 1: the third quick PING is one too many."""
    with server_process("asgi_grpc", [("grpc.http2.max_ping_strikes", 1)]) as server:
        async with Peer.connect(server.port) as peer:
            assert await pings_until_goaway(peer, 30) == 3


# -- rapid reset --------------------------------------------------------------------------------


async def test_rapid_reset_gets_enhance_your_calm(asgi: ServerProcess) -> None:
    """Streams opened and at once reset by the client, in a loop (CVE-2023-44487): past a
    budget (a burst of 1000, then 200 a second) the connection gets GOAWAY ENHANCE_YOUR_CALM."""
    before = asgi.rss
    async with Peer.connect(asgi.port) as peer:
        await peer.wait(lambda f: isinstance(f, SettingsFrame))
        block = peer.encoder.encode(request_headers("/h.H/Hold"))
        sent = 0
        for _ in range(20):
            batch = bytearray()
            for _ in range(500):
                stream_id = peer.next_stream_id
                peer.next_stream_id += 2
                batch += peer_headers(stream_id, block)
                batch += RstStreamFrame(stream_id, error_code=CANCEL).serialize()
            peer.write(bytes(batch))
            sent += 500
            if not await peer.drain(5) or peer.goaway is not None:
                break
        goaway = await peer.closed(10)
    assert goaway is not None
    assert goaway.error_code == ENHANCE_YOUR_CALM
    assert goaway.additional_data == b"too_many_resets"
    assert asgi.rss - before < 64 * MiB
    assert asgi.witness() == b"witness"


async def test_resets_within_the_budget_are_fine(asgi: ServerProcess) -> None:
    """A client cancelling calls at a normal pace keeps its connection."""
    async with Peer.connect(asgi.port) as peer:
        for _ in range(200):
            stream_id = peer.headers(request_headers("/h.H/Hold"))
            peer.write(RstStreamFrame(stream_id, error_code=CANCEL))
        response = await peer.response(peer.request())
        assert isinstance(response, dict)
        assert peer.goaway is None


def peer_headers(stream_id: int, block: bytes) -> bytes:
    """A HEADERS frame reusing an encoded block: the block only refers to the static table and
    to entries the first encoding added, so it decodes the same every time."""
    from hyperframe.frame import HeadersFrame

    return bytes(HeadersFrame(stream_id, data=block, flags=["END_HEADERS"]).serialize())
