"""Our protocol writes a long loop turn's output before the turn ends (see ``stream_send``).

The writer task writes once per loop turn. An app that sends many messages without ever giving
the loop a turn (a handler that produces synchronously) must still get its output onto the socket
as it goes, not only when it finally yields. The test blocks the event loop in the app and lets a
grpcio client, in another thread, tell whether output arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import threading
from typing import Any

import grpc
import pytest
from hyperframe.frame import DataFrame, SettingsFrame

from .helpers import (
    RawH2,
    Receive,
    Scope,
    Send,
    echo_app,
    grpc_frame,
    read_body,
    serve,
    trailers,
)

_MESSAGES = 64  # sent before the app blocks the loop: two write batches (_WRITE_EVERY is 32)
_DATA, _HEADERS = 0x0, 0x1
_END_STREAM, _END_HEADERS = 0x1, 0x4


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


def _frames(data: bytes) -> list[tuple[int, int]]:
    """(type, flags) of the whole frames in ``data``, as one of our writes holds them."""
    frames, offset = [], 0
    while offset + 9 <= len(data):
        length = int.from_bytes(data[offset : offset + 3], "big")
        frames.append((data[offset + 3], data[offset + 4]))
        offset += 9 + length
    assert offset == len(data), "a write ended inside a frame"
    return frames


@pytest.mark.parametrize("max_frame", [None, 2**21], ids=["default-frames", "2mib-frames"])
async def test_a_large_response_leaves_in_one_write(
    monkeypatch: pytest.MonkeyPatch, max_frame: int | None
) -> None:
    # A 1 MiB response is framed in rounds of the writer's round-robin; with the client's window
    # open they go out together, with the headers and the trailers (the app's send(), released
    # at low water, queues the trailers before the write): each write is a wake-up of the
    # client, and grpcio's read each one apart. A stream alone in the round is not held to the
    # round's quantum: with frames of up to 2 MiB allowed, its message leaves in one DATA frame.
    transport_class: Any = asyncio.selector_events._SelectorSocketTransport  # type: ignore[attr-defined]
    write = transport_class.write
    writes: list[bytes] = []
    server_port = 0

    def logged(self: Any, data: Any) -> None:
        if self.get_extra_info("sockname")[1] == server_port:
            writes.append(bytes(data))
        write(self, data)

    monkeypatch.setattr(transport_class, "write", logged)
    payload = b"x" * (1024 * 1024)
    async with serve(echo_app) as server:
        server_port = server.port
        client = await RawH2.connect(server.port)
        if max_frame is not None:
            settings = SettingsFrame(0, settings={SettingsFrame.MAX_FRAME_SIZE: max_frame})
            client.writer.write(settings.serialize())
        try:
            while not isinstance(await client.frame(), SettingsFrame):
                pass  # (acknowledged by frame(): the server's 1 MiB stream window applies)
            stream_id = client.request("/test/Unary", end=False)
            body = grpc_frame(payload)
            for offset in range(0, len(body), 16384):  # (h2 would keep to the default window)
                end = ["END_STREAM"] if offset + 16384 >= len(body) else []
                chunk = body[offset : offset + 16384]
                client.writer.write(DataFrame(stream_id, data=chunk, flags=end).serialize())
            received, ended = 0, False
            while not ended:
                frame = await client.frame()
                if isinstance(frame, DataFrame) and frame.stream_id == stream_id:
                    received += len(frame.data)
                ended = frame.stream_id == stream_id and "END_STREAM" in frame.flags
        finally:
            await client.close()
    assert received == len(payload) + 5
    with_data = [_frames(data) for data in writes if any(t == _DATA for t, _ in _frames(data))]
    assert len(with_data) == 1, [len(frames) for frames in with_data]
    frames = with_data[0]
    assert frames[0] == (_HEADERS, _END_HEADERS)  # the response's headers
    assert frames[-1] == (_HEADERS, _END_HEADERS | _END_STREAM)  # its trailers
    if max_frame is not None:
        assert frames == [(_HEADERS, _END_HEADERS), (_DATA, 0), frames[-1]]
