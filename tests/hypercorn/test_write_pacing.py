"""Our protocol writes a long loop turn's output before the turn ends (see ``stream_send``).

The writer task writes once per loop turn. An app that sends many messages without ever giving
the loop a turn (a handler that produces synchronously) must still get its output onto the socket
as it goes, not only when it finally yields. The test blocks the event loop in the app and lets a
grpcio client, in another thread, tell whether output arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import threading

import grpc

from .helpers import Receive, Scope, Send, echo_app, grpc_frame, read_body, serve, trailers

_MESSAGES = 64  # sent before the app blocks the loop: two write batches (_WRITE_EVERY is 32)


class _Busy:
    """``/test/Busy``: a stream of messages; after the first ``_MESSAGES`` the app blocks the event
    loop until the client has the first one (or a generous bound passes)."""

    def __init__(self) -> None:
        self.first_received = threading.Event()
        self.seen_while_blocked: bool | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] != "/test/Busy":
            await echo_app(scope, receive, send)
            return
        await read_body(receive)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/grpc")],
                "trailers": True,
            }
        )
        frame = grpc_frame(b"m")
        for _ in range(_MESSAGES):
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        # No await: the loop (and with it the writer task) gets no turn while this waits.
        self.seen_while_blocked = self.first_received.wait(10)
        for _ in range(_MESSAGES):
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await send({"type": "http.response.trailers", "headers": trailers(0)})


def _read_stream(target: str, first_received: threading.Event) -> int:
    with grpc.insecure_channel(target) as channel:
        count = 0
        for _ in channel.unary_stream("/test/Busy")(b"", timeout=30):
            count += 1
            first_received.set()
        return count


async def test_messages_leave_while_the_app_keeps_the_loop() -> None:
    app = _Busy()
    async with serve(app) as server:
        count = await asyncio.to_thread(_read_stream, server.target, app.first_received)
    assert count == 2 * _MESSAGES
    assert app.seen_while_blocked is True
