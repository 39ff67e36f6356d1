"""``asgi-grpc serve --cors-origin``: gRPC-Web with CORS from the command line, for a GrpcApp
target and for a Starlette app with a GrpcApp mounted in it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import asgi_grpc
from tests.cli.echo_app import SERVICE, pb2, pb2_grpc
from tests.cli.serving import ECHO_APP, serve

ORIGIN = "http://page.test"


def preflight(url: str, origin: str) -> httpx.Response:
    return httpx.options(
        f"{url}/{SERVICE}/Unary",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-grpc-web,x-echo",
        },
        timeout=10,
    )


async def web_unary(target: str) -> tuple[str, dict[str, object]]:
    async with asgi_grpc.aio.insecure_channel(
        target, options=[("asgi_grpc.grpc_web", True)]
    ) as channel:
        call = pb2_grpc.EchoStub(channel).Unary(
            pb2.EchoRequest(message="web"), metadata=(("x-echo", "e"),), timeout=10
        )
        return (await call).message, dict(await call.trailing_metadata())


@pytest.mark.parametrize("attribute", ["app", "starlette_app"])
def test_serve_cors_origin(attribute: str) -> None:
    with serve(f"{ECHO_APP}:{attribute}", "--bind", "127.0.0.1:0", "--cors-origin", ORIGIN) as s:
        url = s.urls[0]
        answer = preflight(url, ORIGIN)
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        assert "x-echo" in answer.headers["access-control-allow-headers"]
        assert preflight(url, "http://other.test").status_code == 403
        message, trailing = asyncio.run(web_unary(url.removeprefix("http://")))
        assert message == "web"
        assert trailing["x-trailer"] == "e"


def test_serve_without_cors_origin_serves_grpc_web_but_no_cors() -> None:
    with serve(f"{ECHO_APP}:app", "--bind", "127.0.0.1:0") as s:
        url = s.urls[0]
        # No CORS configured: the preflight is not answered as one (gRPC requires POST).
        answer = preflight(url, ORIGIN)
        assert "access-control-allow-origin" not in answer.headers
        message, _ = asyncio.run(web_unary(url.removeprefix("http://")))
        assert message == "web"
