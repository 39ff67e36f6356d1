"""Response headers and trailers framed by GrpcH2Connection.send_headers (without h2's frame
objects): one HEADERS frame when the block fits, HEADERS + CONTINUATIONs when it does not,
END_STREAM on the trailers, and an HPACK context in step with the client's over many calls."""

from __future__ import annotations

import grpc
import pytest
from hyperframe.frame import ContinuationFrame, DataFrame, HeadersFrame

from .helpers import RawH2, Receive, Scope, Send, read_body, serve, trailers

BIG = 40_000  # a header value larger than two 16 KiB frames


async def big_headers_app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/test/Big`` answers with large initial and trailing metadata; ``/test/BigOnly`` with a
    large trailers-only response; anything else with small ones."""
    await read_body(receive)
    size = BIG if scope["path"].startswith("/test/Big") else 3
    if scope["path"] == "/test/BigOnly":
        status = [(b"content-type", b"application/grpc"), *trailers(5, "gone")]
        await send({"type": "http.response.trailers", "headers": [*status, (b"x-t", b"t" * size)]})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/grpc"), (b"x-h", b"h" * size)],
            "trailers": True,
        }
    )
    await send({"type": "http.response.body", "body": b"\x00\x00\x00\x00\x01z"})
    await send({"type": "http.response.trailers", "headers": [*trailers(0), (b"x-t", b"t" * size)]})


async def test_large_blocks_become_headers_and_continuations() -> None:
    async with serve(big_headers_app) as server:
        client = await RawH2.connect(server.port)
        try:
            for path in ("/test/Small", "/test/Big", "/test/BigOnly", "/test/Small"):
                stream_id = client.request(path, b"\x00\x00\x00\x00\x00")
                frames = []
                ended = False  # END_STREAM seen (on a HEADERS frame, CONTINUATIONs may follow)
                while True:
                    frame = await client.frame()
                    if frame.stream_id == stream_id:
                        frames.append(frame)
                        ended = ended or "END_STREAM" in frame.flags
                        if ended and "END_HEADERS" in frame.flags:
                            break
                kinds = [type(frame) for frame in frames]
                if path == "/test/Small":
                    assert kinds == [HeadersFrame, DataFrame, HeadersFrame]
                    assert all("END_HEADERS" in f.flags for f in frames if f is not frames[1])
                    assert client.headers(frames[0])[b"x-h"] == b"hhh"
                    assert client.headers(frames[2])[b"x-t"] == b"ttt"
                    continue
                blocks: list[bytes] = []
                for frame in frames:
                    assert len(frame.data) <= 16_384
                    if isinstance(frame, HeadersFrame):
                        assert "END_HEADERS" not in frame.flags  # too large for one frame
                        blocks.append(frame.data)
                    elif isinstance(frame, ContinuationFrame):
                        blocks[-1] += frame.data
                headers = [client.headers(HeadersFrame(stream_id, data=b)) for b in blocks]
                assert isinstance(frames[-1], ContinuationFrame)
                assert "END_HEADERS" in frames[-1].flags
                if path == "/test/Big":
                    assert kinds.count(DataFrame) == 1
                    assert headers[0][b"x-h"] == b"h" * BIG
                    assert headers[1][b"x-t"] == b"t" * BIG
                    assert headers[1][b"grpc-status"] == b"0"
                else:  # trailers-only: one header block, END_STREAM on its HEADERS frame
                    assert DataFrame not in kinds
                    assert "END_STREAM" in frames[0].flags
                    assert headers[0][b"grpc-status"] == b"5"
                    assert headers[0][b"x-t"] == b"t" * BIG
        finally:
            await client.close()


async def test_grpcio_reads_large_metadata_over_many_calls() -> None:
    """grpcio's HPACK decoder must stay in step with our encoder across calls and blocks."""
    options = [("grpc.max_metadata_size", 256 * 1024)]
    async with (
        serve(big_headers_app) as server,
        grpc.aio.insecure_channel(server.target, options=options) as channel,
    ):
        for index in range(6):
            name = "/test/Big" if index % 2 else "/test/Small"
            call = channel.unary_unary(name)(b"", timeout=5)
            assert await call == b"z"
            initial = dict(await call.initial_metadata())
            trailing = dict(await call.trailing_metadata())
            size = BIG if index % 2 else 3
            assert initial["x-h"] == "h" * size
            assert trailing["x-t"] == "t" * size
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary("/test/BigOnly")(b"", timeout=5)
        error = caught.value
        assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "gone")
        assert dict(error.trailing_metadata())["x-t"] == "t" * BIG
