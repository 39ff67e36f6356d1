"""A connection flooding tiny frames does not starve the others (the hostile suite's
``empty_data_flood``, ``window_update_flood`` and ``settings_flood``).

Each socket read (up to 64 KiB) used to go to h2 in one piece: for 13-byte WINDOW_UPDATE frames
that is ~5,000 frames, a few hundred ms of Python during which no other connection gets a
turn, read after read (the witness call took 2-20 s). Asserted without timing: between two
turns of the event loop (a ticker task counts them), the server hands h2 no more than a few KiB
of such a flood once it has seen it is one.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest
from hyperframe.frame import SettingsFrame, WindowUpdateFrame

import asgi_grpc
from asgi_grpc.server import _hypercorn_h2
from tests.server.held import serve, wait_until

FLOOD = 2 << 20  # bytes of WINDOW_UPDATE frames (13 bytes each)
PIECE = 4096  # what the server hands h2 at a time in a flood (_hypercorn._DENSE_SLICE)


def _flood(port: int, sent: threading.Event) -> None:
    frame = WindowUpdateFrame(0, window_increment=1).serialize()
    burst = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize()
    burst += frame * (FLOOD // len(frame))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(burst)
        sent.set()
        sock.settimeout(30)
        try:
            while sock.recv(65536):
                pass  # until the server closes (the test's end)
        except OSError:
            pass


async def test_a_flood_of_tiny_frames_is_taken_in_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = 0
    handed: list[tuple[int, int]] = []  # (bytes handed to h2, the tick count at that moment)
    stock = _hypercorn_h2.GrpcH2Connection.receive_data

    def recording(self: Any, data: Any) -> Any:
        handed.append((len(data), ticks))
        return stock(self, data)

    monkeypatch.setattr(_hypercorn_h2.GrpcH2Connection, "receive_data", recording)

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def unary(request: bytes, context: Any) -> bytes:
        return request

    handlers = {"Unary": asgi_grpc.unary_unary_rpc_method_handler(unary)}
    async with serve(handlers) as (_server, port):
        sent = threading.Event()
        flooder = threading.Thread(target=_flood, args=(port, sent), daemon=True)
        flooder.start()
        ticking = asyncio.ensure_future(ticker())
        try:
            total = FLOOD + 24 + 9
            assert await wait_until(lambda: sum(size for size, _ in handed) >= total * 0.9, 60)
        finally:
            ticking.cancel()
    # Bytes handed to h2 between two turns of the loop.
    runs: list[int] = []
    last_tick = None
    for size, tick in handed:
        if tick == last_tick:
            runs[-1] += size
        else:
            runs.append(size)
            last_tick = tick
    assert len(runs) > 8, runs
    # The first reads may go whole (the server has not seen a flood yet); then, pieces (the last
    # piece of one read and the first of the next may meet between two turns), where a whole
    # read used to go at once (64 KiB).
    most = max(runs[3:])
    assert most <= 2 * PIECE, f"{most} bytes of tiny frames without a loop turn"
