"""The servicer every gRPC-Web test calls (echo.proto), steered by the request's ``message``.

- ``"meta"``: answers with the request's ``x-req`` metadata in initial metadata (``x-echo``,
  plus a binary ``x-echo-bin``) and ``x-trail`` / ``x-trail-bin`` trailing metadata;
- ``"fail"``: INVALID_ARGUMENT with ``grpc-status-details-bin`` (a google.rpc.Status holding an
  EchoResponse as its detail) and a non-ASCII message;
- ``"deadline"``: answers with the time the call has left (``index``, in ms);
- ``"http_version"``: answers with the HTTP version the call came over;
- ClientStream whose first request is ``"stall"``: never reads the rest (until cancelled);
- ``delay_ms``: sleeps that long first (before each message, for streams).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2

import asgi_grpc
from tests import protoc

pb2, pb2_grpc = protoc.load("echo.proto")

FAIL_DETAILS = "bad input: ünïcode ✓"


def status_details(message: str) -> bytes:
    detail = any_pb2.Any()
    detail.Pack(pb2.EchoResponse(message="the detail", index=7))
    return status_pb2.Status(
        code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message=message, details=[detail]
    ).SerializeToString()


async def _fail(context: Any) -> None:
    await context.abort(
        grpc.StatusCode.INVALID_ARGUMENT,
        FAIL_DETAILS,
        (("grpc-status-details-bin", status_details(FAIL_DETAILS)), ("x-fail", "yes")),
    )


class WebEcho(pb2_grpc.EchoServicer):
    def __init__(self) -> None:
        self.stalled = asyncio.Event()

    async def Unary(self, request: Any, context: Any) -> Any:
        if request.delay_ms:
            await asyncio.sleep(request.delay_ms / 1000)
        if request.message == "fail":
            await _fail(context)
        if request.message == "meta":
            value = dict(context.invocation_metadata()).get("x-req", "")
            await context.send_initial_metadata((("x-echo", value), ("x-echo-bin", b"\x00\xff")))
            context.set_trailing_metadata((("x-trail", "t-" + value), ("x-trail-bin", b"\x01\xfe")))
            return pb2.EchoResponse(message=f"meta:{value}")
        if request.message == "http_version":  # (the test servicer may peek at its scope)
            return pb2.EchoResponse(message=context._scope.get("http_version"))
        if request.message == "deadline":
            remaining = context.time_remaining()
            return pb2.EchoResponse(index=-1 if remaining is None else int(remaining * 1000))
        return pb2.EchoResponse(message=request.message, payload=request.payload)

    async def ServerStream(self, request: Any, context: Any) -> Any:
        for index in range(request.count):
            if request.delay_ms:
                await asyncio.sleep(request.delay_ms / 1000)
            if request.message == "fail" and index == 2:
                await _fail(context)
            yield pb2.EchoResponse(message=f"{request.message}-{index}", index=index)

    async def ClientStream(self, request_iterator: Any, context: Any) -> Any:
        parts = []
        while (request := await context.read()) is not asgi_grpc.aio.EOF:
            if request.message == "stall":
                # Never reads again: what the client sends meanwhile must stay bounded.
                self.stalled.set()
                await asyncio.sleep(3600)
            parts.append(request.message)
        return pb2.EchoResponse(message="+".join(parts), index=len(parts))

    async def BidiStream(self, request_iterator: Any, context: Any) -> Any:
        index = 0
        async for request in request_iterator:
            yield pb2.EchoResponse(message=request.message, index=index)
            index += 1
