"""gRPC-Web needs no HTTP trailers: a GrpcApp serves it on stock uvicorn (HTTP/1.1, h11),
where plain gRPC cannot run. (uvicorn is the optional server of issue 12's part 3.)"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

import asgi_grpc
from asgi_grpc.server import GrpcApp
from tests.web.servicer import FAIL_DETAILS, WebEcho, pb2, pb2_grpc

uvicorn = pytest.importorskip("uvicorn")


@pytest.mark.parametrize("mode", [True, "text"])
async def test_grpc_web_on_uvicorn_http1(mode: Any) -> None:
    app = GrpcApp()
    pb2_grpc.add_EchoServicer_to_server(WebEcho(), app)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        options = [("asgi_grpc.grpc_web", mode)]
        async with asgi_grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as ch:
            stub = pb2_grpc.EchoStub(ch)
            assert (await stub.Unary(pb2.EchoRequest(message="http_version"))).message == "1.1"
            call = stub.ServerStream(pb2.EchoRequest(message="s", count=3))
            assert [r.index async for r in call] == [0, 1, 2]
            with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
                await stub.Unary(pb2.EchoRequest(message="fail"))
            assert info.value.code() == asgi_grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.details() == FAIL_DETAILS
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()
