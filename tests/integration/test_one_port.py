"""REST and gRPC on one Hypercorn port: a Starlette app and the Echo service in one ASGI app,
reached by httpx (HTTP/1.1 and h2c) and grpcio (sync and aio) at the same time."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import httpx
import pytest

from tests.integration.checks import (
    check_grpc_aio,
    check_grpc_sync,
    check_rest,
    check_unimplemented,
)
from tests.integration.echo_app import (
    SERVICE,
    STYLES,
    Lifespan,
    MethodRecorder,
    build,
    pb2,
    pb2_grpc,
)
from tests.integration.servers import Running, in_process


async def check_all(server: Running) -> None:
    """Every client at once on the same port (gRPC sync calls block: they get a thread)."""
    await asyncio.gather(
        check_rest(server.url, http2=False),
        check_rest(server.url, http2=True),
        check_grpc_aio(server.target),
        asyncio.to_thread(check_grpc_sync, server.target),
    )


@pytest.mark.parametrize("style", STYLES)
async def test_rest_and_grpc_share_one_port(style: str) -> None:
    lifespan = Lifespan()
    recorder = MethodRecorder()
    async with in_process(build(style, lifespan=lifespan, recorder=recorder)) as server:
        await check_all(server)
        await check_all(server)  # and again, on a server that has served both kinds
        await check_unimplemented(server.target)
    assert lifespan.events == ["startup", "shutdown"]
    # A Starlette Mount sets root_path and keeps the full path: the gRPC app sees (and must
    # route on) the whole method name, not the part below the mount point.
    assert f"/{SERVICE}/Unary" in recorder.methods
    assert f"/{SERVICE}/BidiStream" in recorder.methods
    assert all(method.startswith("/") and method.count("/") == 2 for method in recorder.methods)


@pytest.mark.parametrize("style", STYLES)
async def test_many_concurrent_calls_of_both_kinds(style: str) -> None:
    """REST and gRPC requests interleaved on shared HTTP/2 connections, 50 of each in flight."""
    async with in_process(build(style)) as server:
        async with (
            httpx.AsyncClient(base_url=server.url, http1=False, http2=True, timeout=20) as http,
            grpc.aio.insecure_channel(server.target) as channel,
        ):
            stub = pb2_grpc.EchoStub(channel)

            async def rest(i: int) -> Any:
                return (await http.post("/echo", json=i)).json()["echo"]

            async def rpc(i: int) -> Any:
                return int((await stub.Unary(pb2.EchoRequest(message=str(i)), timeout=20)).message)

            results = await asyncio.gather(*(f(i) for i in range(50) for f in (rest, rpc)))
        assert results == [i for i in range(50) for _ in range(2)]
