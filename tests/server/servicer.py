"""A test servicer on echo.proto whose behaviour is steered by the request."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import grpc

import asgi_grpc
from tests import protoc

pb2, pb2_grpc = protoc.load("echo.proto")


class _Status:
    """What grpc_status.rpc_status.to_status() returns: a grpc.Status."""

    def __init__(self, code: Any, details: str, trailing_metadata: Any) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


class Events:
    """What handlers observed, for assertions (cancellation, done callbacks)."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.done_callbacks: list[Any] = []
        self.contexts: list[Any] = []
        self.thread_ids: list[int] = []


class AsyncEcho(pb2_grpc.EchoServicer):
    def __init__(self, events: Events | None = None) -> None:
        self.events = events or Events()

    async def Unary(self, request: Any, context: Any) -> Any:
        self.events.contexts.append(context)
        context.add_done_callback(self.events.done_callbacks.append)
        command = request.message
        if command == "raise":
            raise ValueError("handler failed on purpose")
        if command.startswith("abort:"):
            _, code, details = command.split(":", 2)
            await context.abort(grpc.StatusCode[code], details, (("abort-md", "yes"),))
        if command.startswith("set_code:"):
            _, code, details = command.split(":", 2)
            context.set_code(grpc.StatusCode[code])
            context.set_details(details)
            return pb2.EchoResponse(message="ignored")
        if command == "metadata":
            md = context.invocation_metadata()
            await context.send_initial_metadata(
                (("initial-key", "iv"), ("initial-bin", b"\x00\x01"))
            )
            context.set_trailing_metadata((("trailing-key", "tv"), ("trailing-bin", b"\xff")))
            return pb2.EchoResponse(
                message=repr(sorted((k, v) for k, v in md if k != "user-agent"))
            )
        if command == "auth":
            auth = context.auth_context()
            return pb2.EchoResponse(
                message=repr(
                    (
                        context.peer_identity_key(),
                        context.peer_identities(),
                        auth.get("transport_security_type"),
                    )
                )
            )
        if command == "abort_with_status":
            status = _Status(
                grpc.StatusCode.FAILED_PRECONDITION,
                "rich",
                (("grpc-status-details-bin", b"\x08\x09"),),
            )
            await context.abort_with_status(status)
        if command == "peer":
            return pb2.EchoResponse(message=context.peer())
        if command == "time_remaining":
            return pb2.EchoResponse(message=repr(context.time_remaining()))
        if command == "bad_trailing_metadata":
            context.set_trailing_metadata((("Bad Key", "x"),))
            return pb2.EchoResponse(message="x")
        if command == "none":
            return None
        if command == "compress":
            context.set_compression(grpc.Compression.Gzip)
        if request.delay_ms:
            try:
                await asyncio.sleep(request.delay_ms / 1000)
            except asyncio.CancelledError:
                self.events.cancelled.set()
                raise
        return pb2.EchoResponse(message=request.message, payload=request.payload)

    async def ServerStream(self, request: Any, context: Any) -> Any:
        if request.message == "disable_next":
            context.set_compression(grpc.Compression.Gzip)
            for i in range(request.count):
                if i % 2 == 0:
                    context.disable_next_message_compression()
                await context.write(pb2.EchoResponse(index=i, payload=request.payload))
            return
        if request.message == "write":
            for i in range(request.count):
                await context.write(pb2.EchoResponse(index=i, payload=request.payload))
            return
        for i in range(request.count):
            if request.message == "raise" and i == 2:
                raise RuntimeError("stream broke")
            if request.delay_ms:
                try:
                    await asyncio.sleep(request.delay_ms / 1000)
                except asyncio.CancelledError:
                    self.events.cancelled.set()
                    raise
            yield pb2.EchoResponse(index=i, payload=request.payload)

    async def ClientStream(self, request_iterator: Any, context: Any) -> Any:
        if context.invocation_metadata() and dict(context.invocation_metadata()).get("use-read"):
            count = 0
            while True:
                message = await context.read()
                if message is asgi_grpc.aio.EOF:
                    break
                count += 1
            return pb2.EchoResponse(index=count, message="read")
        count = 0
        size = 0
        async for message in request_iterator:
            count += 1
            size += len(message.payload)
        return pb2.EchoResponse(index=count, message=str(size))

    async def BidiStream(self, request_iterator: Any, context: Any) -> Any:
        async for message in request_iterator:
            if message.message == "stop":
                return
            yield pb2.EchoResponse(message=message.message, payload=message.payload)


class SyncEcho(pb2_grpc.EchoServicer):
    """The same behaviours as plain functions and generators (run on the thread pool)."""

    def __init__(self, events: Events | None = None) -> None:
        self.events = events or Events()

    def Unary(self, request: Any, context: Any) -> Any:
        self.events.thread_ids.append(threading.get_ident())
        if request.message.startswith("abort:"):
            _, code, details = request.message.split(":", 2)
            context.abort(grpc.StatusCode[code], details)
        if request.message == "raise":
            raise ValueError("sync handler failed")
        if request.message == "metadata":
            context.send_initial_metadata((("initial-key", "sync"),))
            context.set_trailing_metadata((("trailing-key", "sync"),))
        if request.delay_ms:
            time.sleep(request.delay_ms / 1000)
        return pb2.EchoResponse(message=request.message, payload=request.payload)

    def ServerStream(self, request: Any, context: Any) -> Any:
        for i in range(request.count):
            yield pb2.EchoResponse(index=i, payload=request.payload)

    def ClientStream(self, request_iterator: Any, context: Any) -> Any:
        count = 0
        for _ in request_iterator:
            count += 1
        return pb2.EchoResponse(index=count)

    def BidiStream(self, request_iterator: Any, context: Any) -> Any:
        for message in request_iterator:
            yield pb2.EchoResponse(message=message.message)
