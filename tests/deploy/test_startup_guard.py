"""The start-up guard: a GrpcApp behind Starlette's BaseHTTPMiddleware (which drops trailers)
is refused when Hypercorn starts the lifespan, with a message that says what to do; working
arrangements serve. Real Hypercorn on 127.0.0.1:0, real grpcio clients."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.utils import LifespanFailureError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Host, Mount, Route, Router

from asgi_grpc.server import grpc_config
from asgi_grpc.server._guard import check_app
from tests.deploy import guard_apps
from tests.deploy.guard_apps import PureTiming, Timing, grpc_app, health, mounted
from tests.integration.echo_app import SERVICE, pb2, pb2_grpc
from tests.integration.servers import ROOT, listening_socket, subprocess_env

MESSAGE = "drops HTTP trailers"


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve exactly ``app`` (no wrapper, so the guard sees the real graph) with Hypercorn."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    stop = asyncio.Event()
    config = grpc_config(bind=[f"fd://{sock.detach()}"], graceful_timeout=2.0)
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    try:
        # Hypercorn accepts only after the lifespan startup; a failed startup ends the task.
        done, _ = await asyncio.wait([task], timeout=0.3)
        if done:
            task.result()
        yield f"127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def echo(target: str) -> str:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb2_grpc.EchoStub(channel)
        reply = await stub.Unary(pb2.EchoRequest(message="hi"), timeout=10)
        streamed = [r.index async for r in stub.ServerStream(pb2.EchoRequest(count=3), timeout=10)]
        assert streamed == [0, 1, 2]
        return str(reply.message)


def base_http_dispatch() -> Starlette:
    """A plain ``dispatch`` function given to BaseHTTPMiddleware itself."""

    async def passthrough(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        return await call_next(request)

    return Starlette(
        routes=[Mount(f"/{SERVICE}", app=grpc_app())],
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=passthrough)],
    )


def base_http_added() -> Starlette:
    app = Starlette(routes=[Mount(f"/{SERVICE}", app=grpc_app())])
    app.add_middleware(Timing)
    return app


BROKEN = {
    "user_middleware": lambda: mounted(Timing),
    "dispatch_function": base_http_dispatch,
    "add_middleware": base_http_added,
    "router_middleware": lambda: Starlette(
        routes=[
            Mount(
                "/",
                app=Router(
                    routes=[Mount(f"/{SERVICE}", app=grpc_app())],
                    middleware=[Middleware(Timing)],
                ),
            )
        ]
    ),
    "mount_middleware": lambda: Starlette(
        routes=[Mount(f"/{SERVICE}", app=grpc_app(), middleware=[Middleware(Timing)])]
    ),
    "host": lambda: Starlette(
        routes=[Host("{any}", app=Router(routes=[Mount(f"/{SERVICE}", app=grpc_app())]))],
        middleware=[Middleware(Timing)],
    ),
    "wrapped_directly": lambda: Timing(grpc_app()),
    "pure_then_base": lambda: PureTiming(Timing(grpc_app())),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
async def test_broken_arrangement_refused_at_startup(name: str) -> None:
    app = BROKEN[name]()
    with pytest.raises(RuntimeError, match=MESSAGE) as info:
        check_app(app)
    text = str(info.value)
    assert "GrpcApp" in text
    assert "BaseHTTPMiddleware" in text
    assert "pure ASGI" in text
    # Served by real Hypercorn: start-up fails with that message; nothing is served.
    with pytest.raises(LifespanFailureError, match=MESSAGE):
        async with serving(app):
            raise AssertionError("a broken arrangement was served")


async def test_built_middleware_stack_checked_too() -> None:
    """After a first request Starlette has built its middleware stack: still found."""
    app = mounted(Timing)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        assert (await client.get("/health")).status_code == 200
    assert app.middleware_stack is not None
    with pytest.raises(RuntimeError, match="Timing"):
        check_app(app)


WORKING = {
    "pure_asgi_middleware": lambda: mounted(PureTiming),
    "fallback_behind_grpc": guard_apps.fallback_with_base_http,
    # BaseHTTPMiddleware only on a REST sub-app: gRPC requests never pass through it.
    "base_http_on_rest_mount_only": lambda: Starlette(
        routes=[
            Mount(
                "/rest",
                app=Starlette(routes=[Route("/health", health)], middleware=[Middleware(Timing)]),
            ),
            Mount(f"/{SERVICE}", app=grpc_app()),
        ]
    ),
    "grpc_app_alone": grpc_app,
}


@pytest.mark.parametrize("name", sorted(WORKING))
async def test_working_arrangement_serves(name: str) -> None:
    app = WORKING[name]()
    check_app(app)
    async with serving(app) as target:
        assert await echo(target) == "hi"


async def test_rest_through_base_http_fallback_still_works() -> None:
    async with serving(guard_apps.fallback_with_base_http()) as target:
        async with httpx.AsyncClient(base_url=f"http://{target}", timeout=10) as client:
            response = await client.get("/health")
        assert response.status_code == 200
        assert response.headers["x-timed"] == "1"
        assert await echo(target) == "hi"


async def test_the_guard_is_needed() -> None:
    """Hidden from the guard (inside a closure), the same app serves, and gRPC calls fail: the
    failure the guard turns into a start-up error."""
    broken = mounted(Timing)

    async def hidden(scope: Any, receive: Any, send: Any) -> None:
        await broken(scope, receive, send)

    async with serving(hidden) as target:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await echo(target)
        assert info.value.code() != grpc.StatusCode.OK


def test_hypercorn_cli_exits_with_the_message() -> None:
    """`hypercorn module:app`, as deployed: stops at start-up, with the message in its output."""
    sock = listening_socket()
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "hypercorn",
                "--bind",
                f"fd://{sock.fileno()}",
                "tests.deploy.guard_apps:broken",
            ],
            cwd=ROOT,
            env=subprocess_env(),
            capture_output=True,
            text=True,
            pass_fds=[sock.fileno()],
            timeout=30,
        )
    finally:
        sock.close()
    # It stops instead of serving. (The exit status is Hypercorn's supervisor's business: 0.18
    # exits 0 even when its worker failed; `asgi-grpc serve` checks in the parent for that.)
    assert MESSAGE in result.stderr + result.stdout
    assert "Mount('/asgi_grpc.test.Echo')" in result.stderr + result.stdout
