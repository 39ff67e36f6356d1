"""Issue 9 item 12: a response header block over the client's limit fails that call with
RESOURCE_EXHAUSTED and leaves the connection, and the other calls on it, alone (grpcio's
behaviour; we used to take the whole connection down).

The limit is grpcio's: ``grpc.max_metadata_size`` is a soft 8 KiB, the hard one 16 KiB
(``grpc.absolute_max_metadata_size``); grpcio refuses blocks between the two at random, we
accept them. Sizes are HPACK sizes (name + value + 32 per field).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import grpc.aio
import h2.events
import pytest

import asgi_grpc
import asgi_grpc.aio

from .clients import KINDS, OURS
from .lying_server import OK_HEADERS, LyingConnection, LyingServer, Script, grpc_frame, lying_server

BIG = b"x" * 20_000  # over the 16 KiB hard limit


def _answer_in_pairs(conn: LyingConnection, event: h2.events.Event) -> None:
    """Once two requests are in, answer both in one write: the oversized one first."""
    if not isinstance(event, h2.events.StreamEnded) or len(conn.ended) % 2:
        return
    pending = sorted(conn.ended)[-2:]
    paths = {sid: dict(conn.requests[sid])[b":path"] for sid in pending}
    for sid in sorted(pending, key=lambda s: not paths[s].endswith(b"Big")):
        big = paths[sid].endswith(b"Big")
        where = paths[sid].split(b"/")[1]
        headers = OK_HEADERS + ([(b"x-big", BIG)] if big and where == b"h" else [])
        trailers = [(b"grpc-status", b"0")] + ([(b"x-big", BIG)] if big and where == b"t" else [])
        conn.respond(sid, headers, grpc_frame(b"ok"), trailers)


@pytest.fixture(scope="module")
def server() -> Iterator[LyingServer]:
    with lying_server(Script(on_event=_answer_in_pairs)) as server:
        yield server


def _pair(kind: str, target: str, where: str) -> tuple[str, str, str]:
    """The oversized call and an unrelated one, at once on one channel: their codes and the
    oversized call's details."""
    big, small = f"/{where}/Big", f"/{where}/Small"
    if kind.endswith(".aio"):
        module: Any = grpc.aio if kind == "grpc.aio" else asgi_grpc.aio

        async def calls() -> tuple[str, str, str]:
            async with module.insecure_channel(target) as channel:
                first = channel.unary_unary(big)(b"", timeout=5)
                second = channel.unary_unary(small)(b"", timeout=5)
                await asyncio.gather(first, second, return_exceptions=True)
                return (
                    (await first.code()).name,
                    (await second.code()).name,
                    await first.details() or "",
                )

        return asyncio.run(calls())
    module = grpc if kind == "grpc" else asgi_grpc
    with module.insecure_channel(target) as channel:
        first = channel.unary_unary(big).future(b"", timeout=5)
        second = channel.unary_unary(small).future(b"", timeout=5)
        for future in (first, second):
            future.exception()
        return first.code().name, second.code().name, first.details() or ""


@pytest.mark.parametrize("where", ["h", "t"], ids=["headers", "trailers"])
@pytest.mark.parametrize("kind", KINDS)
def test_oversized_header_block_fails_only_its_call(
    server: LyingServer, kind: str, where: str
) -> None:
    before = server.accepted
    big, small, details = _pair(kind, server.target, where)
    assert (big, small) == ("RESOURCE_EXHAUSTED", "OK"), details
    # One connection for both calls (grpcio may even reuse the previous test's: its
    # subchannels are shared process-wide).
    assert server.accepted - before <= 1
    if kind in OURS:
        assert server.accepted - before == 1
    if kind in OURS:
        assert "metadata size exceeds limit (20" in details
