"""An app that dies mid-response must not leave its HTTP/2 stream open: it is reset
(RST_STREAM INTERNAL_ERROR), so the client fails at once instead of waiting for its deadline."""

from __future__ import annotations

import time

import grpc
import pytest

from .helpers import VARIANTS, Receive, Scope, Send, grpc_frame, read_body, serve, stock_config


async def crashing_app(scope: Scope, receive: Receive, send: Send) -> None:
    await read_body(receive)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/grpc")],
            "trailers": True,
        }
    )
    await send({"type": "http.response.body", "body": grpc_frame(b"partial"), "more_body": True})
    raise RuntimeError("the handler dies mid-stream")


@pytest.mark.parametrize("fixed", VARIANTS)
async def test_stream_is_reset_when_the_app_dies(fixed: bool) -> None:
    async with (
        serve(crashing_app, None if fixed else stock_config(), fixed=fixed) as server,
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        start = time.monotonic()
        code = None
        try:
            async for _ in channel.unary_stream("/test/Crash")(b"", timeout=3):
                pass
        except grpc.aio.AioRpcError as error:
            code = error.code()
        assert code == grpc.StatusCode.INTERNAL
        assert time.monotonic() - start < 2.0
