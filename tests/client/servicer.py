"""The steerable echo servicer of tests/server, plus what client tests need from a server:
a call counter (which server of several got a call), a large response on demand, initial
metadata sent before an abort, and a handler that blocks until released or cancelled."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from tests.server.servicer import AsyncEcho, Events, pb2, pb2_grpc

__all__ = ["ClientEcho", "Events", "pb2", "pb2_grpc"]


class ClientEcho(AsyncEcho):
    def __init__(self, events: Events | None = None) -> None:
        super().__init__(events)
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def Unary(self, request: Any, context: Any) -> Any:
        self.calls += 1
        command = request.message
        if command.startswith("size:"):
            return pb2.EchoResponse(payload=b"r" * int(command.split(":", 1)[1]))
        if command == "md_abort":
            await context.send_initial_metadata((("early-key", "early"),))
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "after headers")
        if command == "block":
            self.started.set()
            try:
                await asyncio.wait_for(self.release.wait(), 30)
            except asyncio.CancelledError:
                self.events.cancelled.set()
                raise
            return pb2.EchoResponse(message="released")
        return await super().Unary(request, context)
