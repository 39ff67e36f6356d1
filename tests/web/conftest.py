"""A gRPC-Web-serving asgi_grpc server (Hypercorn, 127.0.0.1 port 0) for the tests here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

import asgi_grpc
from tests.web.servicer import WebEcho, pb2_grpc

ORIGIN = "http://page.test"


@pytest.fixture
def web_server() -> Callable[..., Any]:
    """``async with web_server(options=...) as base_url``; CORS allows :data:`ORIGIN`."""

    @asynccontextmanager
    async def start(options: list[tuple[str, Any]] | None = None) -> AsyncIterator[str]:
        opts = [("asgi_grpc.cors_origins", ORIGIN), *(options or [])]
        server = asgi_grpc.aio.server(options=opts)
        pb2_grpc.add_EchoServicer_to_server(WebEcho(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await server.stop(None)

    return start
