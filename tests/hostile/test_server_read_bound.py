"""The server's socket reader (server/_hypercorn_tcp.py ``SocketInput``) against a client that
sends far more than the server takes, over a real socket, against a live asgi_grpc server in its
own process (its memory measured with psutil).

The client floods SETTINGS frames (each needs an ACK) and reads none of the ACKs, on a connection
whose one call never reads its request: the read loop stops once the ACKs waiting for the writer
pass ``_MAX_PENDING``, and the reader must then stop taking bytes from the socket, so that TCP
holds the client back. A reader that kept reading would buffer all 64 MiB the client tries.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hyperframe.frame import DataFrame, SettingsFrame

from ._server_h2 import MiB, Peer, ServerProcess, grpc_message, request_headers, server_process


@pytest.fixture(scope="module")
def asgi() -> Iterator[ServerProcess]:
    with server_process("asgi_grpc") as server:
        yield server


async def test_a_flood_the_server_does_not_take_stays_in_the_socket(asgi: ServerProcess) -> None:
    before = asgi.rss
    attempted = 64 * MiB
    written = 0
    async with Peer.connect(asgi.port) as peer:
        held = peer.headers(request_headers("/h.H/Hold"))  # its handler never reads
        peer.write(DataFrame(held, data=grpc_message(b"x" * 60_000)))
        peer.reader._transport.pause_reading()  # type: ignore[attr-defined]
        batch = SettingsFrame(0, settings={4: 65_535}).serialize() * 10_000
        while written < attempted:
            peer.write(batch)
            written += len(batch)
            if not await peer.drain(3):
                break  # the server stopped taking our bytes
        grown = asgi.rss - before
        # Not a close: that would wait for our unsent bytes, which the server does not take.
        peer.writer.transport.abort()
    # Loopback's socket buffers hold a few MiB; the rest was never sent.
    assert written < attempted * 3 // 4
    assert grown < 32 * MiB
    assert asgi.witness() == b"witness"
