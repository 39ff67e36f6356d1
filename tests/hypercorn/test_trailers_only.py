"""Fix e: http.response.trailers without http.response.start is a trailers-only response."""

from __future__ import annotations

import grpc
import pytest
from hyperframe.frame import DataFrame, HeadersFrame

from asgi_grpc.server._hypercorn import TRAILERS_ONLY_EXTENSION

from .helpers import VARIANTS, RawH2, Receive, Scope, Send, serve, stock_config, trailers

seen_extensions: list[bool] = []


async def not_found_app(scope: Scope, receive: Receive, send: Send) -> None:
    seen_extensions.append(TRAILERS_ONLY_EXTENSION in scope["extensions"])
    await send({"type": "http.response.trailers", "headers": trailers(5, "no such thing")})


@pytest.mark.parametrize("fixed", VARIANTS)
async def test_grpcio_sees_trailers_only_status(fixed: bool) -> None:
    seen_extensions.clear()
    async with (
        serve(not_found_app, None if fixed else stock_config(), fixed=fixed) as server,
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary("/test/Missing")(b"", timeout=5)
        assert (caught.value.code(), caught.value.details()) == (
            grpc.StatusCode.NOT_FOUND,
            "no such thing",
        )
        assert seen_extensions == [True]


async def test_one_headers_frame_with_end_stream() -> None:
    async with serve(not_found_app) as server:
        client = await RawH2.connect(server.port)
        try:
            stream_id = client.request("/test/Missing", b"")
            frames = []
            while True:
                frame = await client.frame()
                if frame.stream_id == stream_id:
                    frames.append(frame)
                    if "END_STREAM" in frame.flags:
                        break
        finally:
            await client.close()
    assert [type(f) for f in frames] == [HeadersFrame]
    assert not any(isinstance(f, DataFrame) for f in frames)
    assert client.headers(frames[0]) == {
        b":status": b"200",
        b"grpc-status": b"5",
        b"grpc-message": b"no such thing",
    }
