"""App arrangements for the start-up guard tests (also loaded by the ``hypercorn`` CLI).

Only the arrangements where gRPC requests pass through a ``BaseHTTPMiddleware`` are broken.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from asgi_grpc.server import GrpcApp
from tests.integration.echo_app import SERVICE, register


class Timing(BaseHTTPMiddleware):
    """A typical BaseHTTPMiddleware: adds a response header."""

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["x-timed"] = "1"
        return response


class PureTiming:
    """The same middleware written as pure ASGI: trailers pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def timed(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                message = {**message, "headers": [*headers, (b"x-timed", b"1")]}
            await send(message)

        await self.app(scope, receive, timed)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def grpc_app() -> GrpcApp:
    app = GrpcApp()
    register(app)
    return app


def mounted(middleware: type) -> Starlette:
    """Starlette in front, the GrpcApp mounted at its service path, ``middleware`` around all."""
    return Starlette(
        routes=[Route("/health", health), Mount(f"/{SERVICE}", app=grpc_app())],
        middleware=[Middleware(middleware)],
    )


def fallback_with_base_http() -> GrpcApp:
    """The GrpcApp in front: the BaseHTTPMiddleware only ever sees REST requests. Works."""
    rest = Starlette(routes=[Route("/health", health)], middleware=[Middleware(Timing)])
    app = GrpcApp(fallback=rest)
    register(app)
    return app


broken = mounted(Timing)
