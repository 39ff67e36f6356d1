"""Fix d: on shutdown every HTTP/2 connection says GOAWAY at once, refuses new streams, finishes
the streams in flight, then closes."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from hyperframe.frame import DataFrame, Frame, GoAwayFrame, HeadersFrame, RstStreamFrame

from asgi_grpc.server._hypercorn import grpc_config

from .helpers import VARIANTS, RawH2, echo_app, grpc_frame, serve, stock_config

REFUSED_STREAM = 7


async def frames_until(client: RawH2, want: type[Frame], timeout: float) -> list[Frame]:
    """Frames read up to and including the first ``want``; AssertionError if none in time."""
    seen: list[Frame] = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            frame = await client.frame(timeout=max(left, 0.001))
        except (TimeoutError, asyncio.IncompleteReadError):
            raise AssertionError(f"no {want.__name__} within {timeout}s; saw {seen}") from None
        seen.append(frame)
        if isinstance(frame, want):
            return seen


@pytest.mark.parametrize("fixed", VARIANTS)
async def test_goaway_refuse_and_finish(fixed: bool) -> None:
    config = None if fixed else stock_config()
    async with serve(echo_app, config, fixed=fixed) as server:
        client = await RawH2.connect(server.port)
        try:
            slow = client.request("/test/Slow", grpc_frame(b"1500"))
            await asyncio.sleep(0.3)
            server.shutdown.set()

            # Promptly, without waiting for another request: GOAWAY(NO_ERROR, 2^31-1) + PING,
            # then (PING answered by RawH2) GOAWAY(NO_ERROR, last stream served).
            first = (await frames_until(client, GoAwayFrame, timeout=0.5))[-1]
            assert (first.error_code, first.last_stream_id) == (0, 2**31 - 1)
            final = (await frames_until(client, GoAwayFrame, timeout=1.5))[-1]
            assert (final.error_code, final.last_stream_id) == (0, slow)

            late = slow + 2
            client.raw_request(late, "/test/Unary")
            frames = await frames_until(client, RstStreamFrame, timeout=1.0)
            reset = frames[-1]
            assert (reset.stream_id, reset.error_code) == (late, REFUSED_STREAM)

            # The in-flight stream is answered in full, then the connection closes.
            frames += await frames_until(client, HeadersFrame, timeout=3.0)  # response headers
            rest = []
            while not rest or "END_STREAM" not in rest[-1].flags:
                rest.append(await client.frame(timeout=3.0))
            mine = [f for f in frames + rest if f.stream_id == slow]
            assert [type(f) for f in mine][-2:] == [DataFrame, HeadersFrame]
            assert client.headers(mine[0])[b":status"] == b"200"
            assert client.headers(mine[-1])[b"grpc-status"] == b"0"
            assert await asyncio.wait_for(client.reader.read(), 2.0) == b""  # closed when idle
        finally:
            await client.close()


async def test_grpcio_in_flight_completes_new_call_unavailable() -> None:
    """With a real gRPC peer. (Stock Hypercorn is not run here: whether it passes depends on
    timing; the frame-level test above pins its failure down.)"""
    async with (
        serve(echo_app, grpc_config(graceful_timeout=5.0)) as server,
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        slow = asyncio.ensure_future(channel.unary_unary("/test/Slow")(b"1500", timeout=10))
        await asyncio.sleep(0.3)
        server.shutdown.set()
        await asyncio.sleep(0.3)
        start = time.monotonic()
        late: object
        try:
            late = await channel.unary_unary("/test/Unary")(b"late", timeout=5)
        except grpc.aio.AioRpcError as error:
            late = error.code()
        took = time.monotonic() - start
        (answer,) = await asyncio.gather(slow, return_exceptions=True)
        assert answer == b"1500"  # the in-flight call completed during shutdown
        assert late == grpc.StatusCode.UNAVAILABLE
        assert took < 2.0  # failed fast: never hung on the old connection
        await asyncio.wait_for(asyncio.shield(server.task), 3.0)  # the worker finished early


async def test_keep_alive_timeout_counts_from_the_last_call() -> None:
    """The idle timer is armed once and left running while calls come and go: calls closer
    together than keep_alive_timeout keep the connection open however long it lives, a call
    longer than it is never cut, and the close comes a full timeout after the last call."""
    timeout = 0.5
    async with serve(echo_app, grpc_config(keep_alive_timeout=timeout)) as server:
        client = await RawH2.connect(server.port)
        try:
            for _ in range(5):  # 1.5 s of calls 0.3 s apart: three timeouts, never idle that long
                stream_id = client.request("/test/Unary", grpc_frame(b"hi"))
                frames = await frames_until(client, HeadersFrame, timeout=3.0)  # (headers)
                frames += await frames_until(client, HeadersFrame, timeout=3.0)  # (trailers)
                assert not any(isinstance(f, GoAwayFrame) for f in frames), frames
                assert frames[-1].stream_id == stream_id
                await asyncio.sleep(0.3)
            slow = client.request("/test/Slow", grpc_frame(b"800"))  # longer than the timeout
            frames = await frames_until(client, HeadersFrame, timeout=3.0)
            frames += await frames_until(client, HeadersFrame, timeout=3.0)
            assert not any(isinstance(f, GoAwayFrame) for f in frames), frames
            assert frames[-1].stream_id == slow
            assert "END_STREAM" in frames[-1].flags
            ended = time.monotonic()
            await frames_until(client, GoAwayFrame, timeout=3.0)
            assert time.monotonic() - ended >= timeout - 0.05
        finally:
            await client.close()


async def test_idle_connection_closes_gracefully_after_keep_alive_timeout() -> None:
    async with serve(echo_app, grpc_config(keep_alive_timeout=0.3)) as server:
        client = await RawH2.connect(server.port)
        try:
            stream_id = client.request("/test/Unary", grpc_frame(b"hi"))
            frames = await frames_until(client, GoAwayFrame, timeout=3.0)
            # The response came first; the GOAWAYs only once the connection had been idle.
            assert any(f.stream_id == stream_id and "END_STREAM" in f.flags for f in frames)
            assert frames[-1].last_stream_id == 2**31 - 1
            final = (await frames_until(client, GoAwayFrame, timeout=2.0))[-1]
            assert (final.error_code, final.last_stream_id) == (0, stream_id)
            assert await asyncio.wait_for(client.reader.read(), 2.0) == b""
        finally:
            await client.close()
