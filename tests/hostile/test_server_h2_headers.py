"""Hostile HTTP/2 peers against header handling (issue 9, items 2, 5 and 6): CONTINUATION floods,
oversized header lists, one stream over the concurrency limit, malformed requests; over a real
socket against a live asgi_grpc server in its own process (grpcio's server as the control where
it behaves the same)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
)

from ._server_h2 import (
    ENHANCE_YOUR_CALM,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    MiB,
    Peer,
    ServerProcess,
    grpc_message,
    request_headers,
    server_process,
)

FRAME_SIZE_ERROR = 0x6


@pytest.fixture(scope="module")
def asgi() -> Iterator[ServerProcess]:
    with server_process("asgi_grpc") as server:
        yield server


@pytest.fixture(scope="module", params=["asgi_grpc", "grpcio"])
def both(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with server_process(request.param) as server:
        yield server


def advertised(peer: Peer, setting: int) -> int:
    for frame in peer.frames:
        if isinstance(frame, SettingsFrame) and setting in frame.settings:
            return int(frame.settings[setting])
    raise AssertionError(f"the server did not advertise setting {setting:#x}")


async def ok(peer: Peer) -> None:
    """A well-formed call on the same connection still succeeds."""
    response = await peer.response(peer.request())
    assert isinstance(response, dict), response
    assert response[b"grpc-status"] == b"0"


# -- item 2: header blocks ------------------------------------------------------------------------


async def continuation_flood(port: int, frames: int) -> tuple[Peer, int]:
    """HEADERS without END_HEADERS, then up to ``frames`` 1 MiB CONTINUATIONs (never ending the
    block), written while the server reads; how many bytes of block went out."""
    async with Peer.connect(port) as peer:
        await peer.wait(lambda f: isinstance(f, SettingsFrame))
        peer.write(HeadersFrame(1, data=peer.encoder.encode(request_headers())))
        sent = 0
        chunk = ContinuationFrame(1, data=b"a" * MiB).serialize()
        for _ in range(frames):
            if peer.eof or peer.goaway is not None:
                break
            peer.write(chunk)
            sent += MiB
            if not await peer.drain(5):
                break
        await peer.closed(10)
        return peer, sent


async def test_continuation_flood_is_refused_at_the_header_list_size(asgi: ServerProcess) -> None:
    """8 connections each sending a header block of 1 MiB CONTINUATION frames: each is refused
    (GOAWAY ENHANCE_YOUR_CALM) once the block passes the advertised header-list size (times
    two), before it is buffered; memory stays flat (was ~64 MiB per connection)."""
    before = asgi.rss
    results = await asyncio.gather(*(continuation_flood(asgi.port, 63) for _ in range(8)))
    grown = asgi.rss - before
    for peer, sent in results:
        assert peer.goaway is not None
        assert peer.goaway.error_code == ENHANCE_YOUR_CALM
        # Refused at the first CONTINUATION frame: it alone is over the limit. (A few more
        # may be in the socket buffers already.)
        assert sent <= 16 * MiB
    assert grown < 48 * MiB, f"RSS grew by {grown} bytes"
    assert asgi.witness() == b"witness"


async def test_small_continuations_are_counted_too(asgi: ServerProcess) -> None:
    """A block in many small CONTINUATION frames is refused once the bytes add up, whatever the
    frame count."""
    async with Peer.connect(asgi.port) as peer:
        await peer.wait(lambda f: isinstance(f, SettingsFrame))
        limit = advertised(peer, 0x6)
        peer.write(HeadersFrame(1, data=peer.encoder.encode(request_headers())))
        piece = ContinuationFrame(1, data=b"b" * (limit // 16)).serialize()
        peer.write(piece * 40)
        goaway = await peer.closed()
    assert goaway is not None
    assert goaway.error_code == ENHANCE_YOUR_CALM


async def test_frame_over_max_frame_size_is_refused_from_its_header(asgi: ServerProcess) -> None:
    """A frame announcing more than SETTINGS_MAX_FRAME_SIZE is refused as soon as its 9-byte
    header arrives, without waiting for (and buffering) its body."""
    async with Peer.connect(asgi.port) as peer:
        await peer.wait(lambda f: isinstance(f, SettingsFrame))
        length = 16 * MiB - 1
        stream_id = peer.headers(request_headers("/h.H/Hold"))
        peer.write(length.to_bytes(3, "big") + b"\x00\x00" + stream_id.to_bytes(4, "big"))
        goaway = await peer.closed()
    assert goaway is not None
    assert goaway.error_code == FRAME_SIZE_ERROR


async def test_header_list_over_the_limit_refuses_that_call_only(asgi: ServerProcess) -> None:
    """Metadata over the advertised SETTINGS_MAX_HEADER_LIST_SIZE (but within what the server
    decodes) fails that call with RESOURCE_EXHAUSTED, like HTTP 431; the connection and its other
    calls carry on."""
    async with Peer.connect(asgi.port) as peer:
        await peer.wait(lambda f: isinstance(f, SettingsFrame))
        limit = advertised(peer, 0x6)
        held = peer.headers(request_headers("/h.H/Hold"))
        # A literal (not indexed) value, in CONTINUATIONs of 16 KiB, a little over the limit.
        block = peer.encoder.encode(
            [*request_headers(), (b"big-bin", b"A" * (limit + 100))], huffman=False
        )
        pieces = [block[i : i + 16384] for i in range(0, len(block), 16384)]
        stream_id = peer.next_stream_id
        peer.next_stream_id += 2
        frames: list[HeadersFrame | ContinuationFrame] = [HeadersFrame(stream_id, data=pieces[0])]
        frames += [ContinuationFrame(stream_id, data=piece) for piece in pieces[1:]]
        frames[-1].flags.add("END_HEADERS")
        peer.write(*frames, DataFrame(stream_id, data=grpc_message(b"x"), flags=["END_STREAM"]))
        response = await peer.response(stream_id)
        assert isinstance(response, dict)
        assert response[b"grpc-status"] == b"8"  # RESOURCE_EXHAUSTED
        await ok(peer)
        assert peer.goaway is None
        assert held not in {f.stream_id for f in peer.frames if isinstance(f, RstStreamFrame)}
    assert asgi.witness() == b"witness"


# -- item 5: one stream too many ----------------------------------------------------------------


async def test_stream_over_the_limit_is_refused_alone(asgi: ServerProcess) -> None:
    """SETTINGS_MAX_CONCURRENT_STREAMS + 1 streams at once: the extra one is refused with
    RST_STREAM REFUSED_STREAM; the others, and the connection, carry on."""
    await over_the_limit(asgi, 100)


@pytest.mark.parametrize("impl", ["asgi_grpc", "grpcio"])
async def test_stream_limit_option(impl: str) -> None:
    """grpcio's ``grpc.max_concurrent_streams`` option sets the advertised limit, and one stream
    over it is refused alone, as grpcio's server does."""
    with server_process(impl, [("grpc.max_concurrent_streams", 5)]) as server:
        await over_the_limit(server, 5)


async def over_the_limit(server: ServerProcess, expected: int) -> None:
    async with Peer.connect(server.port) as peer:
        await peer.wait(lambda f: isinstance(f, SettingsFrame))
        limit = advertised(peer, 0x3)
        assert limit == expected
        held = [peer.headers(request_headers("/h.H/Hold")) for _ in range(limit)]
        extra = peer.request()
        assert await peer.response(extra) == REFUSED_STREAM
        assert peer.goaway is None
        # Free one slot (the client cancels a held call): the connection serves again.
        peer.write(RstStreamFrame(held[0], error_code=0x8))
        await ok(peer)
        assert not {f.stream_id for f in peer.frames if isinstance(f, RstStreamFrame)} & set(
            held[1:]
        )
    assert server.witness() == b"witness"


async def test_header_list_size_option() -> None:
    """``grpc.max_metadata_size`` sets the advertised SETTINGS_MAX_HEADER_LIST_SIZE, and the
    limit applied."""
    with server_process("asgi_grpc", [("grpc.max_metadata_size", 2048)]) as server:
        async with Peer.connect(server.port) as peer:
            await peer.wait(lambda f: isinstance(f, SettingsFrame))
            assert advertised(peer, 0x6) == 2048
            stream_id = peer.headers([*request_headers(), (b"k", b"v" * 3000)])
            peer.write(DataFrame(stream_id, data=grpc_message(b"x"), flags=["END_STREAM"]))
            response = await peer.response(stream_id)
            assert isinstance(response, dict)
            assert response[b"grpc-status"] == b"8"
            await ok(peer)


# -- item 6: malformed requests -----------------------------------------------------------------

MALFORMED = {
    "uppercase name": [*request_headers(), (b"X-Upper", b"v")],
    "space in name": [*request_headers(), (b"a b", b"v")],
    "empty name": [*request_headers(), (b"", b"v")],
    "unknown pseudo-header": [*request_headers()[:4], (b":foo", b"x"), *request_headers()[4:]],
    "response pseudo-header": [
        *request_headers()[:4],
        (b":status", b"200"),
        *request_headers()[4:],
    ],
    "pseudo-header after a regular one": [*request_headers(), (b":authority", b"other")],
    "duplicate :path": [*request_headers()[:4], (b":path", b"/h.H/Unary"), *request_headers()[4:]],
    "missing :scheme": [h for h in request_headers() if h[0] != b":scheme"],
    "empty :path": [(b":path", b"") if h[0] == b":path" else h for h in request_headers()],
    "connection": [*request_headers(), (b"connection", b"close")],
    "keep-alive": [*request_headers(), (b"keep-alive", b"300")],
    "proxy-connection": [*request_headers(), (b"proxy-connection", b"close")],
    "transfer-encoding": [*request_headers(), (b"transfer-encoding", b"chunked")],
    "upgrade": [*request_headers(), (b"upgrade", b"h2c")],
    "te other than trailers": [(b"te", b"gzip") if h[0] == b"te" else h for h in request_headers()],
    "NUL in a value": [*request_headers(), (b"k", b"a\x00b")],
    "CR LF in a value": [*request_headers(), (b"k", b"a\r\nx-injected: 1")],
    "LF in a pseudo-header": [
        (b":path", b"/h.H/Unary\n") if h[0] == b":path" else h for h in request_headers()
    ],
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_request_resets_that_stream(asgi: ServerProcess, case: str) -> None:
    """RFC 9113 8.2-8.3: a malformed request is a stream error (RST_STREAM PROTOCOL_ERROR); the
    connection carries on."""
    async with Peer.connect(asgi.port) as peer:
        stream_id = peer.headers(MALFORMED[case])
        peer.write(DataFrame(stream_id, data=grpc_message(b"x"), flags=["END_STREAM"]))
        assert await peer.response(stream_id) == PROTOCOL_ERROR
        await ok(peer)
        assert peer.goaway is None


@pytest.mark.parametrize("value", [b" leading", b"trailing ", b" both ", b"\ttab", b"a\x7fb\xff"])
async def test_values_grpcio_clients_send_are_accepted(both: ServerProcess, value: bytes) -> None:
    """Values with whitespace at either end, and other bytes than NUL/CR/LF, are served (grpcio
    clients send metadata as given, and grpcio's server accepts it)."""
    async with Peer.connect(both.port) as peer:
        stream_id = peer.headers([*request_headers(), (b"k", value)])
        peer.write(DataFrame(stream_id, data=grpc_message(b"x"), flags=["END_STREAM"]))
        response = await peer.response(stream_id)
        assert isinstance(response, dict)
        assert response[b"grpc-status"] == b"0"


@pytest.mark.parametrize(
    "trailers",
    [[(b":path", b"/x")], [(b"Bad", b"v")], [(b"k", b"a\nb")], [(b"connection", b"close")]],
    ids=["pseudo-header", "uppercase", "LF", "connection"],
)
async def test_malformed_request_trailers_reset_that_stream(
    asgi: ServerProcess, trailers: list[tuple[bytes, bytes]]
) -> None:
    """Request trailers (HEADERS after DATA) are checked like headers, pseudo-headers refused."""
    async with Peer.connect(asgi.port) as peer:
        stream_id = peer.headers(request_headers("/h.H/Drain"))
        peer.write(DataFrame(stream_id, data=grpc_message(b"x")))
        peer.headers(trailers, stream_id=stream_id, end_stream=True)
        assert await peer.response(stream_id) == PROTOCOL_ERROR
        await ok(peer)


async def test_well_formed_request_trailers_are_accepted(asgi: ServerProcess) -> None:
    async with Peer.connect(asgi.port) as peer:
        stream_id = peer.headers(request_headers("/h.H/Drain"))
        peer.write(DataFrame(stream_id, data=grpc_message(b"x")))
        peer.headers([(b"x-trailer", b" fine ")], stream_id=stream_id, end_stream=True)
        response = await peer.response(stream_id)
        assert isinstance(response, dict)
        assert response[b"grpc-status"] == b"0"
