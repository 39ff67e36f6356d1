"""The Hypercorn hardening (tests/hypercorn/) checked on every ASGI server asgi_grpc supports,
each served by ``asgi-grpc serve --server NAME`` (the app: tests/asgi_servers/apps.py
``hardening``), against grpcio and raw HTTP/2 frames (tests/hostile/_server_h2.Peer):

- a handler answering before its request ended (early response) leaves the connection working;
- a handler that does not read its body does not block other calls on the connection;
- shutdown is HTTP/2's two-step GOAWAY: a notice (last stream 2^31-1), then the final GOAWAY
  naming the last stream served, the calls in flight finishing in between;
- a status with no messages (UNIMPLEMENTED) is one HEADERS frame, or the portable fallback
  (HEADERS, then the trailers; never an empty DATA frame, which grpcio rejects);
- rapid reset (streams opened and reset in a loop) costs the server a bounded amount and gets
  the connection closed.

Where a server falls short, the strict test is an xfail naming the shortfall (README, "Other
ASGI servers"), so it shows up when the server fixes it.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Iterator

import grpc
import psutil
import pytest
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame, RstStreamFrame, SettingsFrame

from tests.cli.serving import Served
from tests.hostile._server_h2 import ENHANCE_YOUR_CALM, MiB, Peer, request_headers

from .serving import port, serve, server_params

CANCEL = 0x8
NOTICE = 2**31 - 1

# What each server does not do (README, "Other ASGI servers: uvicorn and pyvoy").
NO_GOAWAY_NOTICE = {
    "uvicorn": "uvicorn (zttp) has no GOAWAY notice on shutdown: it answers new streams HTTP 503 "
    "(UNAVAILABLE to gRPC clients) and sends one GOAWAY once the connection is idle",
}
NO_GOAWAY_NOTICE["pyvoy"] = (
    "Envoy's drain is not proactive: the GOAWAY notice goes out with a connection's next "
    "response, so a connection waiting on a call in flight hears nothing until it completes"
)
HEAD_OF_LINE = {
    "uvicorn": "uvicorn (zttp) pauses reading the whole connection once one stream has 64 KiB "
    "of body its handler has not read: every other call on it waits (and a client's RST_STREAM "
    "for that stream is not seen either)",
}
NO_TRAILERS_ONLY = {
    "uvicorn": "uvicorn (zttp) cannot send a trailers-only response from ASGI: headers, then "
    "trailers (the portable fallback)",
}


@pytest.fixture(scope="module", params=server_params())
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    with serve(request.param, "hardening") as running:
        yield running


def server_name(served: Served) -> str:
    return served.process.args[served.process.args.index("--server") + 1]  # type: ignore[no-any-return,union-attr]


def tree_rss(pid: int) -> int:
    """The server's memory, Envoy (pyvoy's child) included."""
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


async def outcome(call: Awaitable[bytes]) -> bytes | str:
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        return f"{error.code().name}: {error.details()}"


# -- early response ------------------------------------------------------------------------------


async def test_early_response_keeps_connection(served: Served) -> None:
    async with grpc.aio.insecure_channel(served.target) as channel:
        slow = channel.unary_unary("/h.H/Slow")
        unary = channel.unary_unary("/h.H/Unary")
        early = channel.stream_unary("/h.H/Early")
        assert await unary(b"warm-up", timeout=5) == b"warm-up"
        in_flight = [asyncio.ensure_future(outcome(slow(b"700", timeout=10))) for _ in range(8)]
        await asyncio.sleep(0.1)

        async def body() -> AsyncIterator[bytes]:
            for _ in range(32):  # 2 MiB the handler never reads
                yield b"x" * 65536
                await asyncio.sleep(0)

        early_results = [await outcome(early(body(), timeout=10)) for _ in range(4)]
        results = await asyncio.gather(*in_flight)
        after = await outcome(unary(b"after", timeout=5))
    # grpc.aio's own race (tests/hypercorn/test_early_response.py): "Internal error from Core"
    # when the status beats the client's last write.
    assert set(early_results) <= {"INVALID_ARGUMENT: early", "INTERNAL: Internal error from Core"}
    assert results == [b"700"] * 8
    assert after == b"after"


# -- head-of-line blocking -----------------------------------------------------------------------


@pytest.mark.parametrize("server", server_params())
async def test_unread_body_does_not_block_other_calls(
    server: str, request: pytest.FixtureRequest
) -> None:
    """A server of its own: on uvicorn the connection stays stuck after this test."""
    reason = HEAD_OF_LINE.get(server)
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason))
    with serve(server, "hardening") as served:
        await _unread_body_does_not_block_other_calls(served)


async def _unread_body_does_not_block_other_calls(served: Served) -> None:
    before = tree_rss(served.process.pid)
    async with grpc.aio.insecure_channel(served.target) as channel:
        unary = channel.unary_unary("/h.H/Unary")
        assert await unary(b"warm-up", timeout=5) == b"warm-up"

        async def body() -> AsyncIterator[bytes]:
            for i in range(160):  # 10 MiB: far more than any flow-control window
                yield bytes([i]) * 65536

        hog = channel.stream_unary("/h.H/Hold")(body(), timeout=30)
        await asyncio.sleep(0.5)  # let it fill whatever the server buffers
        results = await asyncio.gather(*(outcome(unary(b"%d" % i, timeout=5)) for i in range(20)))
        hog.cancel()
    assert results == [b"%d" % i for i in range(20)]
    # What one unread stream can make the server hold is bounded (windows, not the body).
    assert tree_rss(served.process.pid) - before < 64 * MiB


# -- trailers-only -------------------------------------------------------------------------------


async def _status_only_frames(served: Served) -> list[object]:
    async with Peer.connect(port(served)) as peer:
        stream_id = peer.request("/h.H/Missing")
        response = await peer.response(stream_id)
        assert isinstance(response, dict)
        assert response[b"grpc-status"] == b"12"
        frames = [f for f in peer.frames if f.stream_id == stream_id]
    # Up to END_STREAM: a server may follow the response with RST_STREAM(NO_ERROR) when it
    # answered before the request's END_STREAM arrived (RFC 9113 8.1), a matter of timing.
    end = next(i for i, f in enumerate(frames) if "END_STREAM" in getattr(f, "flags", ()))
    assert all(isinstance(f, RstStreamFrame) and f.error_code == 0 for f in frames[end + 1 :]), (
        frames
    )
    return frames[: end + 1]


async def test_status_only_response_grpcio_accepts(served: Served) -> None:
    """One HEADERS frame, or headers then trailers: never a DATA frame (grpcio rejects an empty
    DATA with END_STREAM after a status)."""
    frames = await _status_only_frames(served)
    assert not any(isinstance(f, DataFrame) for f in frames)
    assert all(isinstance(f, HeadersFrame) for f in frames)
    assert len(frames) in (1, 2)
    assert "END_STREAM" in frames[-1].flags  # type: ignore[attr-defined]
    async with grpc.aio.insecure_channel(served.target) as channel:
        assert await outcome(channel.unary_unary("/h.H/Missing")(b"", timeout=5)) == (
            "UNIMPLEMENTED: Method not found!"
        )


async def test_trailers_only_in_one_frame(served: Served, request: pytest.FixtureRequest) -> None:
    reason = NO_TRAILERS_ONLY.get(server_name(served))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason))
    frames = await _status_only_frames(served)
    assert [type(f) for f in frames] == [HeadersFrame]


# -- rapid reset ---------------------------------------------------------------------------------


async def test_rapid_reset_is_cut_off(served: Served) -> None:
    """10,000 streams opened and reset at once (CVE-2023-44487): the server closes the
    connection (Hypercorn and zttp with GOAWAY ENHANCE_YOUR_CALM, Envoy by its premature-reset
    check), stays small, and serves others."""
    before = tree_rss(served.process.pid)
    async with Peer.connect(port(served)) as peer:
        await peer.wait(lambda f: isinstance(f, SettingsFrame))
        block = peer.encoder.encode(request_headers("/h.H/Hold"))
        for _ in range(20):
            batch = bytearray()
            for _ in range(500):
                stream_id = peer.next_stream_id
                peer.next_stream_id += 2
                batch += HeadersFrame(stream_id, data=block, flags=["END_HEADERS"]).serialize()
                batch += RstStreamFrame(stream_id, error_code=CANCEL).serialize()
            peer.write(bytes(batch))
            if not await peer.drain(5) or peer.goaway is not None or peer.eof:
                break
        goaway = await peer.closed(10)
    assert peer.eof
    if goaway is not None:
        assert goaway.error_code == ENHANCE_YOUR_CALM
    assert tree_rss(served.process.pid) - before < 64 * MiB
    async with grpc.aio.insecure_channel(served.target) as channel:
        assert await channel.unary_unary("/h.H/Unary")(b"witness", timeout=5) == b"witness"


# -- graceful shutdown (last: it stops the server) -----------------------------------------------


@pytest.mark.parametrize("server", server_params())
async def test_two_step_goaway_on_shutdown(server: str, request: pytest.FixtureRequest) -> None:
    reason = NO_GOAWAY_NOTICE.get(server)
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason))
    with serve(server, "hardening") as running:
        async with Peer.connect(port(running)) as peer:
            await peer.wait(lambda f: isinstance(f, SettingsFrame))
            slow = peer.request("/h.H/Slow", b"1500")
            await asyncio.sleep(0.3)
            running.process.send_signal(signal.SIGTERM)
            # The notice comes at once, while the slow call is still in flight.
            try:
                notice = await peer.wait(lambda f: isinstance(f, GoAwayFrame), timeout=1.0)
            except TimeoutError:
                notice = None
            late = peer.request("/h.H/Unary", b"late")
            assert notice is not None
            assert (notice.error_code, notice.last_stream_id) == (0, NOTICE)
            # Streams sent before the final GOAWAY are served; so is the one in flight.
            assert (await peer.response(late, 5))[b"grpc-status"] == b"0"  # type: ignore[index]
            assert (await peer.response(slow, 5))[b"grpc-status"] == b"0"  # type: ignore[index]
            final = await peer.closed(10)
        assert final is not None
        assert (final.error_code, final.last_stream_id) == (0, late)
        assert running.process.wait(15) in (0, -signal.SIGTERM)


@pytest.mark.parametrize("server", server_params())
async def test_in_flight_call_finishes_on_shutdown(server: str) -> None:
    """With grpcio: the call in flight completes, a new call fails fast (UNAVAILABLE) or is
    still served (it raced the GOAWAY), the server exits."""
    with serve(server, "hardening") as running:
        async with grpc.aio.insecure_channel(running.target) as channel:
            slow = asyncio.ensure_future(channel.unary_unary("/h.H/Slow")(b"1500", timeout=10))
            await asyncio.sleep(0.3)
            running.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            late = await outcome(channel.unary_unary("/h.H/Unary")(b"late", timeout=5))
            assert await slow == b"1500"
        assert late == b"late" or late.startswith("UNAVAILABLE")  # type: ignore[union-attr]
        assert running.process.wait(15) in (0, -signal.SIGTERM)
