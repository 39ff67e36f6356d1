"""The sync servicer for these tests: tests/server/servicer.py's ``SyncEcho`` with more commands
steered by the request's ``message`` (context methods, cancellation, streaming delays)."""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc

from tests.server.servicer import Events, SyncEcho, pb2, pb2_grpc

__all__ = ["Observed", "SteeredEcho", "pb2", "pb2_grpc"]


class _Status:
    def __init__(self, code: Any, details: str, trailing_metadata: Any) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


class Observed(Events):
    """What the handlers saw, across threads."""

    def __init__(self) -> None:
        super().__init__()
        self.rpc_ended = threading.Event()
        self.saw_inactive = threading.Event()
        self.stream_sent = 0


class SteeredEcho(SyncEcho):
    def __init__(self, events: Observed | None = None) -> None:
        super().__init__(events or Observed())
        self.events: Observed

    def Unary(self, request: Any, context: Any) -> Any:
        command = request.message
        if command.startswith("set_code:"):
            _, code, details = command.split(":", 2)
            context.set_code(grpc.StatusCode[code])
            context.set_details(details)
            return pb2.EchoResponse(message="ignored")
        if command == "time_remaining":
            return pb2.EchoResponse(message=repr(context.time_remaining()))
        if command == "peer":
            return pb2.EchoResponse(message=context.peer())
        if command == "auth":
            auth = context.auth_context()
            return pb2.EchoResponse(
                message=repr((context.peer_identity_key(), auth.get("transport_security_type")))
            )
        if command == "invocation":
            md = context.invocation_metadata()
            return pb2.EchoResponse(
                message=repr(sorted((k, v) for k, v in md if k in ("k", "k-bin", "added")))
            )
        if command == "abort_with_status":
            context.abort_with_status(
                _Status(grpc.StatusCode.FAILED_PRECONDITION, "rich", (("detail-bin", b"\x01"),))
            )
        if command == "trailing_abort":
            context.set_trailing_metadata((("why", "because"),))
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "denied")
        if command == "wait_cancel":
            # Hold the call until the client goes away (bounded), and record what was seen.
            context.add_callback(self.events.rpc_ended.set)
            deadline = time.monotonic() + 10
            while context.is_active() and time.monotonic() < deadline:
                time.sleep(0.01)
            if not context.is_active():
                self.events.saw_inactive.set()
            return pb2.EchoResponse(message="late")
        if command == "server_cancel":
            context.cancel()
            time.sleep(0.1)
            if not context.is_active():
                self.events.saw_inactive.set()
            return pb2.EchoResponse(message="after cancel")
        if command == "compress":
            context.set_compression(grpc.Compression.Gzip)
            return pb2.EchoResponse(message="compressed", payload=request.payload)
        if command == "none":
            return None
        return super().Unary(request, context)

    def ServerStream(self, request: Any, context: Any) -> Any:
        context.send_initial_metadata((("stream-initial", "yes"),))
        context.set_trailing_metadata((("stream-trailing", "yes"),))
        # The call may end between two responses: grpcio's server then never asks the generator
        # for the next one (so the is_active() check below never runs); its end callback does.
        finished = threading.Event()

        def on_end() -> None:
            if not finished.is_set():
                self.events.saw_inactive.set()

        context.add_callback(on_end)
        for i in range(request.count):
            if request.message == "raise" and i == 2:
                raise RuntimeError("stream broke")
            if request.delay_ms:
                time.sleep(request.delay_ms / 1000)
                if not context.is_active():
                    self.events.saw_inactive.set()
                    return
            self.events.stream_sent += 1
            yield pb2.EchoResponse(index=i, payload=request.payload)
        finished.set()

    def ClientStream(self, request_iterator: Any, context: Any) -> Any:
        count = 0
        size = 0
        for message in request_iterator:
            count += 1
            size += len(message.payload)
        return pb2.EchoResponse(index=count, message=str(size))

    def BidiStream(self, request_iterator: Any, context: Any) -> Any:
        for message in request_iterator:
            if message.message == "stop":
                return
            if message.message == "abort":
                context.abort(grpc.StatusCode.ABORTED, "bidi aborted")
            yield pb2.EchoResponse(message=message.message, payload=message.payload)
