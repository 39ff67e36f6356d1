"""A GrpcApp serving the annotated Library service over gRPC and HTTP/JSON, on a real Hypercorn
on 127.0.0.1 (port 0), and an httpx client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from asgi_grpc.server import GrpcApp
from asgi_grpc.transcoding import HttpJson
from tests.integration.servers import in_process
from tests.transcoding.library import DESCRIPTOR_SET, Library, pb2_grpc


@dataclass
class Served:
    url: str
    target: str
    app: GrpcApp
    servicer: Library
    client: httpx.AsyncClient


def library_app(**kwargs: Any) -> tuple[GrpcApp, Library]:
    options = kwargs.pop("http_json", None) or HttpJson(descriptor_set=DESCRIPTOR_SET.read_bytes())
    app = GrpcApp(http_json=options, **kwargs)
    servicer = Library()
    pb2_grpc.add_LibraryServicer_to_server(servicer, app)
    return app, servicer


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serve() as running:
        yield running


def serve(**kwargs: Any) -> Any:
    import contextlib

    @contextlib.asynccontextmanager
    async def run() -> AsyncIterator[Served]:
        app, servicer = library_app(**kwargs)
        async with in_process(app) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
                yield Served(server.url, server.target, app, servicer, client)

    return run()
