"""The echo service the CLI tests call, and one ``asgi-grpc serve`` target of each kind.

Requests steer the servicer: ``delay_ms`` sleeps first (deadline tests), a message
``fail:<CODE>`` aborts with that status, ``stop`` ends a client stream or bidi call (OK)
before the client is done sending, and request metadata ``x-echo`` (or ``x-echo-bin``)
comes back as initial metadata and, as ``x-trailer`` (``x-trailer-bin``), trailing metadata.
The module is importable in a ``serve`` subprocess (``--app-dir`` the repository root).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from asgi_grpc.server import GrpcApp
from tests import protoc

pb2, pb2_grpc = protoc.load("echo.proto")
SERVICE = "asgi_grpc.test.Echo"

# Kitchen/Sink echoes an Everything (tests/cli/protos/cli_test/sink.proto): imports, well-known
# types, maps, oneofs, enums, for JSON and describe.
_PROTOS = Path(__file__).parent / "protos"
protoc.load("cli_test/part.proto", root=_PROTOS)
sink_pb2, sink_pb2_grpc = protoc.load("cli_test/sink.proto", root=_PROTOS)
KITCHEN = "asgi_grpc.cli_test.Kitchen"


async def _steer(request: Any, context: Any, *, first: bool = True) -> None:
    if first:
        metadata = dict(context.invocation_metadata() or ())
        echoed = [(key, metadata[key]) for key in ("x-echo", "x-echo-bin") if key in metadata]
        if echoed:
            await context.send_initial_metadata(echoed)
            context.set_trailing_metadata(
                [(key.replace("x-echo", "x-trailer"), value) for key, value in echoed]
            )
    if request.delay_ms:
        await asyncio.sleep(request.delay_ms / 1000)
    if request.message.startswith("fail:"):
        code = request.message.partition(":")[2]
        await context.abort(getattr(grpc.StatusCode, code), f"failed as asked: {code}")


class Echo(pb2_grpc.EchoServicer):  # type: ignore[misc]
    async def Unary(self, request: Any, context: Any) -> Any:
        await _steer(request, context)
        return pb2.EchoResponse(message=request.message, payload=request.payload)

    async def ServerStream(self, request: Any, context: Any) -> AsyncIterator[Any]:
        await _steer(request, context)
        for index in range(request.count):
            yield pb2.EchoResponse(message=f"{request.message}:{index}", index=index)

    async def ClientStream(self, request_iterator: Any, context: Any) -> Any:
        messages = []
        async for request in request_iterator:
            await _steer(request, context, first=not messages)
            if request.message == "stop":
                break  # answer before the client has sent everything
            messages.append(request.message)
        return pb2.EchoResponse(message=",".join(messages), index=len(messages))

    async def BidiStream(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        index = 0
        async for request in request_iterator:
            await _steer(request, context, first=index == 0)
            if request.message == "stop":
                return  # end the call before the client has sent everything
            yield pb2.EchoResponse(message=request.message.upper(), index=index)
            index += 1


class Kitchen(sink_pb2_grpc.KitchenServicer):  # type: ignore[misc]
    async def Sink(self, request: Any, context: Any) -> Any:
        if request.name == "pack-echo":
            # An Any of a type sink.proto does not import (a client must look it up).
            request.anything.Pack(pb2.EchoResponse(message="packed", index=7))
        return request


# ------------------------------------------------------------------ serve targets, by kind


def register(app: Any) -> None:
    """A registration function."""
    pb2_grpc.add_EchoServicer_to_server(Echo(), app)


def make_app() -> GrpcApp:
    """A factory."""
    grpc_app = GrpcApp()
    register(grpc_app)
    return grpc_app


app = make_app()
servicer = Echo()
servicers = [Echo(), register]  # registered twice: the later registration wins, no error


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello from REST")


starlette_app = Starlette(routes=[Route("/hello", hello), Mount(f"/{SERVICE}", make_app())])
not_a_target = 42
