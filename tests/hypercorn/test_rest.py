"""Nothing here is gRPC-only: plain REST works over the patched HTTP/2 and over stock HTTP/1.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from .helpers import serve


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello " + request.query_params.get("name", "world"))


async def echo(request: Request) -> Response:
    body = await request.body()
    return Response(body, media_type="application/octet-stream")


async def numbers(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(100):
            yield b"%d\n" % i

    return StreamingResponse(chunks(), media_type="text/plain")


app = Starlette(
    routes=[
        Route("/hello", hello),
        Route("/echo", echo, methods=["POST"]),
        Route("/numbers", numbers),
    ]
)


@pytest.mark.parametrize(
    ("http1", "http2", "version"), [(False, True, "HTTP/2"), (True, False, "HTTP/1.1")]
)
async def test_starlette_routes(http1: bool, http2: bool, version: str) -> None:
    body = bytes(range(256)) * 12_000  # 3 MiB: more than one receive window
    async with (
        serve(app) as server,  # type: ignore[arg-type]
        httpx.AsyncClient(
            base_url=f"http://{server.target}", http1=http1, http2=http2, timeout=10
        ) as client,
    ):
        response = await client.get("/hello", params={"name": "h2"})
        assert (response.http_version, response.status_code, response.text) == (
            version,
            200,
            "hello h2",
        )
        response = await client.post("/echo", content=body)
        assert response.status_code == 200
        assert response.content == body
        response = await client.get("/numbers")
        assert response.text == "".join(f"{i}\n" for i in range(100))
        response = await client.get("/missing")
        assert response.status_code == 404
