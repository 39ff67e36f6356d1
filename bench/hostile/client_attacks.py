"""Attacks on the clients: scripted lying servers on 127.0.0.1, raw HTTP/2 frames.

Each attack starts one lying server per client under test (so connection counts are each
client's own), then has the client process (bench/hostile/client_worker.py) make one unary call
with a deadline, and a witness call to a real server on another connection. The client's RSS is
measured around the call; the lying server counts the TCP connections it accepted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Awaitable, Callable
from typing import Any

from hyperframe.frame import DataFrame, GoAwayFrame, PingFrame, RstStreamFrame, SettingsFrame

from bench.hostile.attacks import Attack, Expect, answered, figure, rss_growth
from bench.hostile.wire import PREFACE, FrameConn, message

CLIENTS = ["asgi_grpc_aio", "asgi_grpc_sync", "grpcio"]
DEADLINE = 2.0
MIB = 1 << 20
OK_HEADERS = [(b":status", b"200"), (b"content-type", b"application/grpc")]

Script = Callable[[FrameConn, bool], Awaitable[None]]


class LyingServer:
    """Accepts connections on 127.0.0.1:0 and plays ``script`` on each, counting them."""

    def __init__(self, script: Script, quick: bool) -> None:
        self.script = script
        self.quick = quick
        self.connections = 0
        self.conns: list[FrameConn] = []
        self.bytes_sent = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn: FrameConn | None = None
        try:
            if await asyncio.wait_for(reader.readexactly(len(PREFACE)), 5.0) != PREFACE:
                return
            conn = FrameConn(reader, writer)
            self.conns.append(conn)
            await self.script(conn, self.quick)
            # A script that returns leaves the connection open until the client is done.
            await conn.closed.wait()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            # Stopped by stop(): end quietly (asyncio logs a handler task that ends cancelled).
            pass
        finally:
            self._tasks.discard(task)
            if conn is not None:
                self.bytes_sent += conn.bytes_sent
                await conn.close()
            else:
                writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Cancel until done: asyncio.wait_for (3.10, 3.11) can swallow a cancellation that
        # lands as its inner future completes, and a script would then carry on.
        for task in list(self._tasks):
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)


async def request(conn: FrameConn, seconds: float = 10.0) -> int | None:
    """The id of the client's first request stream, once its HEADERS came."""
    await conn.wait(lambda: any(s.headers for s in conn.streams.values()), seconds)
    ids = [sid for sid, s in conn.streams.items() if s.headers]
    return ids[0] if ids else None


def settings(conn: FrameConn, values: dict[int, int] | None = None) -> None:
    conn.send(SettingsFrame(0, settings=values or {}))


async def hold(conn: FrameConn, quick: bool) -> None:
    """Never answer, but speak HTTP/2 (SETTINGS, acks)."""
    settings(conn)


async def respond(
    conn: FrameConn,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    trailers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """SETTINGS, then this answer to the first request."""
    settings(conn)
    stream_id = await request(conn)
    if stream_id is None:
        return
    conn.send_headers(stream_id, headers, end_stream=not body and trailers is None)
    if body:
        await conn.send_within_window(stream_id, body, 5.0, until_peer_ends=False)
    if trailers is not None:
        conn.send_headers(stream_id, trailers, end_stream=True)


# --------------------------------------------------------------------------- scripts


async def max_streams_zero(conn: FrameConn, quick: bool) -> None:
    settings(conn, {SettingsFrame.MAX_CONCURRENT_STREAMS: 0})


async def goaway_at_once(conn: FrameConn, quick: bool) -> None:
    conn.send(SettingsFrame(0), GoAwayFrame(0, last_stream_id=0, error_code=0))


async def close_after_settings(conn: FrameConn, quick: bool) -> None:
    settings(conn)
    await conn.drain(1.0)
    await conn.close()


async def never_answer(conn: FrameConn, quick: bool) -> None:
    conn.ack_settings = False
    conn.ack_pings = False


async def garbage(conn: FrameConn, quick: bool) -> None:
    conn.write(os.urandom(4096))
    await conn.drain(1.0)


async def http_404(conn: FrameConn, quick: bool) -> None:
    await respond(conn, [(b":status", b"404"), (b"content-type", b"text/plain")])


async def http_503(conn: FrameConn, quick: bool) -> None:
    await respond(conn, [(b":status", b"503"), (b"content-type", b"text/plain")])


async def bad_http_status(conn: FrameConn, quick: bool) -> None:
    await respond(conn, [(b":status", b"abc"), (b"content-type", b"application/grpc")])


async def bad_http_status_with_body(conn: FrameConn, quick: bool) -> None:
    headers = [(b":status", b"2xx"), (b"content-type", b"application/grpc")]
    await respond(conn, headers, message(b"hostile"), [(b"grpc-status", b"0")])


async def trailers_only_no_status(conn: FrameConn, quick: bool) -> None:
    await respond(conn, OK_HEADERS)


async def bad_grpc_status(conn: FrameConn, quick: bool) -> None:
    await respond(conn, OK_HEADERS, message(b"hostile"), [(b"grpc-status", b"abc")])


async def grpc_status_99(conn: FrameConn, quick: bool) -> None:
    await respond(conn, OK_HEADERS, message(b"hostile"), [(b"grpc-status", b"99")])


async def bad_grpc_message(conn: FrameConn, quick: bool) -> None:
    trailers = [(b"grpc-status", b"3"), (b"grpc-message", b"%zz%ff%\xff end")]
    await respond(conn, OK_HEADERS, b"", trailers)


async def oversize_response_headers(conn: FrameConn, quick: bool) -> None:
    await respond(
        conn,
        [*OK_HEADERS, (b"x-big", b"v" * (64 * 1024))],
        message(b"hostile"),
        [(b"grpc-status", b"0")],
    )


async def oversize_headers_one_of_two(conn: FrameConn, quick: bool) -> None:
    """Two calls on the connection: the first answered with headers over any client's limit,
    the second normally. Only the first should fail; the connection should live on."""
    settings(conn)
    await conn.wait(lambda: sum(1 for s in conn.streams.values() if s.headers) >= 2, 2.0)
    ids = sorted(sid for sid, s in conn.streams.items() if s.headers)
    if not ids:
        return
    big = [*OK_HEADERS, (b"x-big", b"v" * (64 * 1024))]
    conn.send_headers(ids[0], big)
    for stream_id in ids[1:]:
        conn.send_headers(stream_id, OK_HEADERS)
        conn.send_data(stream_id, message(b"hostile"))
        conn.send_headers(stream_id, [(b"grpc-status", b"0")], end_stream=True)


async def ends_while_client_streams(conn: FrameConn, quick: bool) -> None:
    """End a bidi call (trailers, status OK) after its first message while the client is still
    writing: the client should reset its open half (RST_STREAM), as grpcio does."""
    settings(conn)
    stream_id = await request(conn)
    if stream_id is None:
        return
    await conn.wait(lambda: conn.stream(stream_id).data_bytes > 0, 2.0)
    conn.send_headers(stream_id, OK_HEADERS)
    conn.send_data(stream_id, message(b"hostile"))
    conn.send_headers(stream_id, [(b"grpc-status", b"0")], end_stream=True)


async def lying_prefix(conn: FrameConn, quick: bool) -> None:
    await respond(conn, OK_HEADERS, message(b"hostile", length=100), [(b"grpc-status", b"0")])


async def huge_prefix(conn: FrameConn, quick: bool) -> None:
    await respond(
        conn, OK_HEADERS, message(b"hostile", length=0xFFFFFFFF), [(b"grpc-status", b"0")]
    )


async def huge_message(conn: FrameConn, quick: bool) -> None:
    await respond(conn, OK_HEADERS, message(b"h" * (8 * MIB)), [(b"grpc-status", b"0")])


async def rst_mid_response(conn: FrameConn, quick: bool) -> None:
    settings(conn)
    stream_id = await request(conn)
    if stream_id is not None:
        conn.send_headers(stream_id, OK_HEADERS)
        conn.send(
            DataFrame(stream_id, message(b"hostile")[:6]), RstStreamFrame(stream_id, error_code=2)
        )


async def dribble(conn: FrameConn, quick: bool) -> None:
    """Answer one byte every 100 ms, so slowly that the deadline comes first."""
    settings(conn)
    stream_id = await request(conn)
    if stream_id is None:
        return
    conn.send_headers(stream_id, OK_HEADERS)
    for byte in message(b"hostile" * 10):
        if conn.is_closed or conn.stream(stream_id).reset is not None:
            return
        conn.send(DataFrame(stream_id, bytes([byte])))
        await asyncio.sleep(0.1)


async def ping_flood(conn: FrameConn, quick: bool) -> None:
    """PINGs toward the client, then a normal answer."""
    settings(conn)
    ping = PingFrame(0, b"hostile!").serialize()
    await conn.flood(ping, 170_000, 1.0)  # 10,000 PINGs
    stream_id = await request(conn)
    if stream_id is not None and not conn.is_closed:
        conn.send_headers(stream_id, OK_HEADERS)
        conn.send_data(stream_id, message(b"hostile"))
        conn.send_headers(stream_id, [(b"grpc-status", b"0")], end_stream=True)


# --------------------------------------------------------------------------- expectations


def conns(most: int) -> Expect:
    return figure("connections", f"<= {most} connections", lambda n: n <= most)


def on_time(slack: float = 1.0) -> Expect:
    return Expect(f"ends by the deadline (+{slack:g} s)", lambda r: r.seconds <= DEADLINE + slack)


def code(*names: str) -> Expect:
    return answered(*(f"status {n}" for n in names), label="status " + "/".join(names))


NO_FOREIGN = Expect(
    "no foreign exception, nothing logged",
    lambda r: "foreign" not in r.answer and not r.figures.get("logged_count"),
)


def _attack(name: str, script: Script, expect: Expect, **kw: Any) -> Attack:
    return Attack(name, "client", script, expect & NO_FOREIGN, **kw)


ATTACKS = [
    _attack(
        "max_streams_zero",
        max_streams_zero,
        code("DEADLINE_EXCEEDED", "UNAVAILABLE") & conns(2) & on_time(),
        quick=True,
    ),
    _attack(
        "goaway_at_once",
        goaway_at_once,
        code("UNAVAILABLE", "DEADLINE_EXCEEDED") & conns(10) & on_time(),
        quick=True,
    ),
    _attack(
        "close_after_settings",
        close_after_settings,
        code("UNAVAILABLE", "DEADLINE_EXCEEDED") & conns(10) & on_time(),
        quick=True,
    ),
    _attack(
        "never_answer", never_answer, code("DEADLINE_EXCEEDED") & conns(2) & on_time(), quick=True
    ),
    _attack("never_answer_after_settings", hold, code("DEADLINE_EXCEEDED") & conns(1) & on_time()),
    _attack(
        "garbage_server",
        garbage,
        code("UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL") & conns(10) & on_time(),
    ),
    _attack("http_404", http_404, code("UNIMPLEMENTED"), quick=True),
    _attack("http_503", http_503, code("UNAVAILABLE"), quick=True),
    _attack("bad_http_status", bad_http_status, code("INTERNAL", "UNKNOWN"), quick=True),
    _attack(
        "bad_http_status_with_body",
        bad_http_status_with_body,
        code("INTERNAL", "UNKNOWN"),
        quick=True,
    ),
    _attack("trailers_only_no_status", trailers_only_no_status, code("INTERNAL", "UNKNOWN")),
    _attack("bad_grpc_status", bad_grpc_status, code("UNKNOWN", "INTERNAL")),
    _attack("grpc_status_99", grpc_status_99, code("UNKNOWN")),
    _attack("bad_grpc_message", bad_grpc_message, code("INVALID_ARGUMENT")),
    _attack(
        "oversize_response_headers",
        oversize_response_headers,
        code("RESOURCE_EXHAUSTED"),
        quick=True,
    ),
    _attack(
        "oversize_headers_one_of_two",
        oversize_headers_one_of_two,
        code("OK+RESOURCE_EXHAUSTED") & conns(1),
        quick=True,
        parallel=2,
    ),
    _attack(
        "ends_while_client_streams",
        ends_while_client_streams,
        code("OK") & figure("client_resets", "client resets its open half", bool),
        quick=True,
        method="bidi",
    ),
    _attack("lying_prefix", lying_prefix, code("INTERNAL"), quick=True),
    _attack("huge_prefix", huge_prefix, code("RESOURCE_EXHAUSTED") & rss_growth(20)),
    _attack("huge_message", huge_message, code("RESOURCE_EXHAUSTED") & rss_growth(30)),
    _attack("rst_mid_response", rst_mid_response, code("INTERNAL"), quick=True),
    _attack("dribbling_server", dribble, code("DEADLINE_EXCEEDED") & on_time(0.5), quick=True),
    _attack("ping_flood_to_client", ping_flood, code("OK") & rss_growth(20)),
]


#: The item of issue 9 each attack reproduces (shown in the table).
ITEMS = {
    "max_streams_zero": 10,
    "goaway_at_once": 10,
    "close_after_settings": 10,
    "http_404": 11,
    "http_503": 11,
    "bad_http_status": 11,
    "bad_http_status_with_body": 11,
    "trailers_only_no_status": 11,
    "oversize_headers_one_of_two": 12,
    "ends_while_client_streams": 13,
    "oversize_response_headers": 12,
    "ping_flood_to_client": 8,
}
ATTACKS = [dataclasses.replace(a, item=ITEMS.get(a.name)) for a in ATTACKS]
