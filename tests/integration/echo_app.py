"""The one-port app under test: a Starlette REST app and the Echo gRPC service in one ASGI app.

Two ways to combine them (both supported, both tested):

- ``fallback``: ``GrpcApp(fallback=starlette_app)``; content-type dispatch in plain ASGI, the
  lifespan goes to Starlette through GrpcApp;
- ``mount``: ``Starlette(routes=[..., Mount("/asgi_grpc.test.Echo", app=grpc_app)])``; Starlette
  routes by path and runs the lifespan itself.

Importing this module has no side effects beyond compiling the test protos; ``cli_app`` is the
module the ``hypercorn`` CLI loads.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route

import asgi_grpc
from asgi_grpc.server import GrpcApp
from tests import protoc

pb2, pb2_grpc = protoc.load("echo.proto")

SERVICE = "asgi_grpc.test.Echo"
STYLES = ("fallback", "mount")


class Echo(pb2_grpc.EchoServicer):  # type: ignore[misc]
    async def Unary(self, request: Any, context: Any) -> Any:
        if request.delay_ms:
            await asyncio.sleep(request.delay_ms / 1000)
        if request.message == "pid":  # which worker process answered
            return pb2.EchoResponse(message=str(os.getpid()))
        return pb2.EchoResponse(message=request.message, payload=request.payload)

    async def ServerStream(self, request: Any, context: Any) -> AsyncIterator[Any]:
        for index in range(request.count):
            yield pb2.EchoResponse(message=request.message, index=index)

    async def ClientStream(self, request_iterator: Any, context: Any) -> Any:
        messages = [request.message async for request in request_iterator]
        return pb2.EchoResponse(message=",".join(messages), index=len(messages))

    async def BidiStream(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        index = 0
        async for request in request_iterator:
            yield pb2.EchoResponse(message=request.message, index=index)
            index += 1


def register(app: Any) -> None:
    """Register the Echo servicer on a GrpcApp / server (deploy/app.py's servicer hook)."""
    pb2_grpc.add_EchoServicer_to_server(Echo(), app)


class MethodRecorder(asgi_grpc.aio.ServerInterceptor):
    """Records the method path the gRPC app resolved, to see what a Starlette Mount passes on."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        self.methods.append(handler_call_details.method)
        return await continuation(handler_call_details)


class Lifespan:
    """A Starlette lifespan that records its events (in memory, and in a file if given)."""

    def __init__(self, log: Path | None = None) -> None:
        self.events: list[str] = []
        self.log = log

    def _record(self, event: str) -> None:
        self.events.append(event)
        if self.log is not None:
            with self.log.open("a") as file:
                file.write(event + "\n")

    @asynccontextmanager
    async def __call__(self, app: Starlette) -> AsyncIterator[dict[str, Any]]:
        self._record("startup")
        yield {"started_by_lifespan": True}  # becomes request.state
        self._record("shutdown")


async def health(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "status": "ok",
            "http_version": request.scope["http_version"],
            "started_by_lifespan": getattr(request.state, "started_by_lifespan", False),
        }
    )


async def echo_json(request: Request) -> JSONResponse:
    return JSONResponse({"echo": await request.json()})


REST_ROUTES: list[BaseRoute] = [
    Route("/health", health),
    Route("/echo", echo_json, methods=["POST"]),
]


def build(
    style: str, *, lifespan: Lifespan | None = None, recorder: MethodRecorder | None = None
) -> Any:
    """The one-port ASGI app in the given style (see the module docstring)."""
    lifespan = lifespan or Lifespan()
    interceptors = [recorder] if recorder is not None else None
    if style == "fallback":
        rest = Starlette(routes=REST_ROUTES, lifespan=lifespan)
        app = GrpcApp(fallback=rest, interceptors=interceptors)
        register(app)
        return app
    if style == "mount":
        grpc_app = GrpcApp(interceptors=interceptors)
        register(grpc_app)
        return Starlette(
            routes=[*REST_ROUTES, Mount(f"/{SERVICE}", app=grpc_app)], lifespan=lifespan
        )
    raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")


# deploy/app.py's ASGI_GRPC_FALLBACK hook needs a module attribute.
rest_app = Starlette(routes=REST_ROUTES)
