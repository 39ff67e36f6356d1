"""The wrapped app's lifespan runs through GrpcApp; a bare GrpcApp answers non-gRPC requests with
a clear HTTP error and keeps serving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import httpx
import pytest
from hypercorn.utils import LifespanFailureError
from starlette.applications import Starlette

from asgi_grpc.server import GrpcApp
from tests.integration.echo_app import REST_ROUTES, Lifespan, build, pb2, pb2_grpc, register
from tests.integration.servers import in_process


async def test_lifespan_of_the_fallback_runs_through_grpc_app() -> None:
    lifespan = Lifespan()
    app = build("fallback", lifespan=lifespan)
    assert lifespan.events == []
    async with in_process(app) as server:
        assert lifespan.events == ["startup"]
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            # The state the lifespan yielded reaches requests (ASGI lifespan "state").
            assert (await http.get("/health")).json()["started_by_lifespan"] is True
        assert lifespan.events == ["startup"]
    assert lifespan.events == ["startup", "shutdown"]


async def test_failing_startup_of_the_fallback_stops_the_server() -> None:
    @asynccontextmanager
    async def broken(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("database unreachable")
        yield

    app = GrpcApp(fallback=Starlette(routes=REST_ROUTES, lifespan=broken))
    entered = False
    with pytest.raises(LifespanFailureError, match="database unreachable"):
        async with in_process(app):
            entered = True
    assert not entered, "the server must not serve when the lifespan startup fails"


async def test_bare_grpc_app_completes_lifespan_and_serves() -> None:
    app = GrpcApp()
    register(app)
    async with in_process(app) as server, grpc.aio.insecure_channel(server.target) as channel:
        reply = await pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="hi"), timeout=10)
        assert reply.message == "hi"


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2c"])
async def test_bare_grpc_app_rejects_non_grpc_requests_clearly(http2: bool) -> None:
    app = GrpcApp()
    register(app)
    path = "/asgi_grpc.test.Echo/Unary"
    grpc_headers = {"content-type": "application/grpc", "te": "trailers"}
    async with (
        in_process(app) as server,
        httpx.AsyncClient(base_url=server.url, http1=not http2, http2=http2, timeout=10) as http,
    ):
        json_post = await http.post(path, json={"message": "hi"})
        assert json_post.status_code == 415
        assert "application/grpc" in json_post.text

        plain_get = await http.get("/")
        assert plain_get.status_code == 415

        grpc_get = await http.get(path, headers=grpc_headers)
        assert grpc_get.status_code == 405
        assert grpc_get.headers["allow"] == "POST"

        grpc_post = await http.post(path, headers=grpc_headers, content=b"\x00\x00\x00\x00\x00")
        if http2:
            assert grpc_post.status_code == 200  # a real gRPC exchange: 200 + grpc-status trailer
            assert grpc_post.headers["content-type"].startswith("application/grpc")
        else:
            assert grpc_post.status_code == 505
            assert "HTTP/2" in grpc_post.text

        # Still serving, on the same connection and to real gRPC clients.
        assert (await http.post(path, content=b"x")).status_code == 415
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb2_grpc.EchoStub(channel)
            assert (await stub.Unary(pb2.EchoRequest(message="ok"), timeout=10)).message == "ok"
