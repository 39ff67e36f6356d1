"""Hostile HTTP/2 peers against flow control and stream lifetimes (issue 9, items 1, 13 and the
control-frame floods), over a real socket, against a live asgi_grpc server in its own process
(grpcio's server as the control where it behaves the same)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hyperframe.frame import (
    DataFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from ._server_h2 import (
    FLOW_CONTROL_ERROR,
    NO_ERROR,
    MiB,
    Peer,
    ServerProcess,
    grpc_message,
    request_headers,
    server_process,
)


@pytest.fixture(scope="module")
def asgi() -> Iterator[ServerProcess]:
    with server_process("asgi_grpc") as server:
        yield server


@pytest.fixture(scope="module", params=["asgi_grpc", "grpcio"])
def both(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    with server_process(request.param) as server:
        yield server


def stream_window(peer: Peer, stream_id: int, sent: int) -> int:
    """What the server still lets us send on ``stream_id``, by its SETTINGS and WINDOW_UPDATEs."""
    initial = 65_535
    for frame in peer.frames:
        if isinstance(frame, SettingsFrame) and 4 in frame.settings:
            initial = frame.settings[4]
    granted = sum(
        f.window_increment
        for f in peer.frames
        if isinstance(f, WindowUpdateFrame) and f.stream_id == stream_id
    )
    return int(initial + granted - sent)


async def settled(peer: Peer, timeout: float = 60.0) -> None:
    """Wait until the server has handled everything sent before: a unary call sent after it is
    answered only then (frames are handled in order). Not a PING: too many of those are abuse."""
    response = await peer.response(peer.request(), timeout)
    assert isinstance(response, dict)


async def test_window_overrun_is_a_flow_control_error(asgi: ServerProcess) -> None:
    """A client that ignores the window gets GOAWAY FLOW_CONTROL_ERROR once it overruns it; the
    handler does not read, so only what the server granted is ever buffered."""
    before = asgi.rss
    async with Peer.connect(asgi.port) as peer:
        stream_id = peer.headers(request_headers("/h.H/Hold"))
        megabyte = DataFrame(stream_id, data=grpc_message(b"x" * (16 * 1024 - 5))).serialize() * 64
        sent = 0
        while sent < 64 * MiB and not peer.eof and peer.goaway is None:
            peer.write(megabyte)
            sent += len(megabyte)
            if not await peer.drain(5):
                break
        goaway = await peer.closed(10)
    assert goaway is not None
    assert goaway.error_code == FLOW_CONTROL_ERROR
    # It stopped near what it granted (the app's request buffer plus one stream window), with
    # the socket buffers on top, far from the 64 MiB the client would have sent.
    assert sent < 32 * MiB
    assert asgi.rss - before < 48 * MiB
    assert asgi.witness() == b"witness"


async def test_unread_stream_holds_at_most_its_window_in_tiny_frames(asgi: ServerProcess) -> None:
    """A stream whose handler stopped reading, filled to its window with one-byte DATA frames,
    costs about its window: small frames are merged, not kept one Python object each (that was
    ~40 bytes per byte: +51 MiB for one 1 MiB window)."""
    async with Peer.connect(asgi.port) as peer:
        stream_id = peer.headers(request_headers("/h.H/Hold"))
        # Whole messages just past what the handler's request buffer takes (256 KiB by default,
        # asgi_grpc.max_buffered_request_bytes), well within the 1 MiB stream window: the app has
        # then stopped reading, and most of the window is still open.
        message = DataFrame(stream_id, data=grpc_message(b"x" * (16 * 1024 - 5))).serialize()
        sent = 0
        for _ in range(24):
            if stream_window(peer, stream_id, sent) < 16 * 1024:
                await settled(peer)
            peer.write(message)
            sent += 16 * 1024
        await settled(peer)
        window = stream_window(peer, stream_id, sent)
        assert window >= 256 * 1024, "the server should have granted a stream window"
        before = asgi.rss
        tiny = 256 * 1024
        peer.write(DataFrame(stream_id, data=b"y").serialize() * tiny)
        await settled(peer)
        grown = asgi.rss - before
        assert peer.goaway is None
    assert grown < 7 * MiB, f"{tiny} one-byte frames cost {grown} bytes"
    assert asgi.witness() == b"witness"


async def test_request_still_open_after_trailers_is_reset(both: ServerProcess) -> None:
    """The handler answered without reading (its request is still open): after the trailers
    the server resets the request stream with NO_ERROR, so the client's slot frees."""
    async with Peer.connect(both.port) as peer:
        stream_id = peer.headers(request_headers("/h.H/EarlyEnd"))
        peer.write(DataFrame(stream_id, data=grpc_message(b"one")))

        def reset(frame: object) -> bool:
            return isinstance(frame, RstStreamFrame) and frame.stream_id == stream_id

        response = await peer.response(stream_id)
        assert isinstance(response, dict)
        assert response[b"grpc-status"] == b"0"
        rst = await peer.wait(reset)
        assert isinstance(rst, RstStreamFrame)
        assert rst.error_code == NO_ERROR
        # The trailers came first, then the reset.
        trailers = [
            i
            for i, f in enumerate(peer.frames)
            if isinstance(f, HeadersFrame) and f.stream_id == stream_id and "END_STREAM" in f.flags
        ]
        assert trailers
        assert trailers[0] < peer.frames.index(rst)
        # The connection carries on.
        again = await peer.response(peer.request())
        assert isinstance(again, dict)
        assert again[b"grpc-status"] == b"0"


async def test_finished_request_is_not_reset(asgi: ServerProcess) -> None:
    """A request the client has ended gets its response and no RST_STREAM."""
    async with Peer.connect(asgi.port) as peer:
        stream_id = peer.request()
        response = await peer.response(stream_id)
        assert isinstance(response, dict)
        assert response[b"grpc-status"] == b"0"
        await settled(peer)
        assert not [f for f in peer.frames if isinstance(f, RstStreamFrame)]


@pytest.mark.parametrize("flood", ["settings", "window_update_closed", "empty_data"])
async def test_control_frame_floods_are_bounded(asgi: ServerProcess, flood: str) -> None:
    """Floods of frames that cost the server an answer or a little work each: memory stays flat
    even when the client does not read what it provokes, and other clients are served."""
    before = asgi.rss
    async with Peer.connect(asgi.port) as peer:
        if flood == "settings":
            # Every SETTINGS needs an ACK; the client reads none of them.
            peer.reader._transport.pause_reading()  # type: ignore[attr-defined]
            batch = SettingsFrame(0, settings={4: 65_535}).serialize() * 10_000
        elif flood == "window_update_closed":
            closed = peer.request()
            await peer.response(closed)
            batch = WindowUpdateFrame(closed, window_increment=1).serialize() * 10_000
        else:
            stream_id = peer.headers(request_headers("/h.H/Hold"))
            batch = DataFrame(stream_id, data=b"").serialize() * 10_000
        for _ in range(20):  # 200,000 frames
            peer.write(batch)
            if not await peer.drain(3):
                break  # the server stopped reading: what it provoked was not read
        grown = asgi.rss - before
        assert asgi.witness() == b"witness"
    assert grown < 32 * MiB
