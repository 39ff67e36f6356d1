"""Attacks on a live server: raw HTTP/2 frames over real sockets to 127.0.0.1.

Each attack is bounded in time (``seconds``) and in bytes sent (``budget``); ``--quick`` uses
the smaller figures. The expectation column says what a hardened server does (grpcio's answer
where it has one), whatever the server under test does today.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from bench.hostile.attacks import (
    Attack,
    Expect,
    Observed,
    answered,
    figure,
    prompt_witness,
    rss_growth,
    rss_kept,
    status,
)
from bench.hostile.wire import FrameConn, message, raw_frame, request_headers

MIB = 1 << 20
UNARY = "/hostile.Target/Unary"
STREAM = "/hostile.Target/Stream"
SINK = "/hostile.Target/Sink"
DRAIN = "/hostile.Target/Drain"


@dataclass
class Ctx:
    port: int
    quick: bool
    #: Handlers running in the server now (None if it did not answer).
    active: Callable[[], Awaitable[int | None]]

    def pick(self, full: float, quick: float) -> float:
        return quick if self.quick else full

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    async def connect(self, **kw: object) -> FrameConn:
        conn = await FrameConn.connect(self.port, **kw)  # type: ignore[arg-type]
        # Generous: a fresh server on a loaded machine can take seconds to say SETTINGS.
        await asyncio.wait_for(conn.settings_seen.wait(), 10.0)
        return conn


async def _finish(conn: FrameConn, obs: Observed, *, rst: bool = False) -> Observed:
    obs.answer = conn.answer()
    obs.bytes_sent += conn.bytes_sent
    if conn.send_blocked:
        obs.notes.append("server stopped reading")
    await conn.close(rst=rst)
    return obs


async def _handlers_left(ctx: Ctx, obs: Observed, after: float) -> None:
    """Record how many handlers still run ``after`` seconds (polled) past the attack."""
    deadline = time.monotonic() + after
    left = await ctx.active()
    while left and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        left = await ctx.active()
    obs.figures["handlers_left"] = left
    obs.notes.append(f"handlers running {after:g} s later: {left}")


# --------------------------------------------------------------------------- preface and floods


async def garbage_preface(ctx: Ctx) -> Observed:
    conn = await FrameConn.connect(ctx.port, preface=False)
    # Random bytes without CR or LF: a server that first tries HTTP/1.1 on them sees no end of
    # a request line, the worst case (bytes with a CRLF get a quick 400 from such a server).
    conn.write(os.urandom(8192).replace(b"\r", b"").replace(b"\n", b"")[:4096])
    started = time.monotonic()
    return await _finish(conn, await _closed_after(conn, started, ctx.pick(5.0, 2.0)))


async def _closed_after(conn: FrameConn, started: float, seconds: float) -> Observed:
    """When the server ended the connection: ``ended_after`` is the first of its GOAWAY and
    the close. A server may send the GOAWAY at once and close a moment later: asgi_grpc's
    reads and drops input for 1 s first (a lingering close, so the client gets the GOAWAY and
    its reason before the TCP reset that closing on unread input causes)."""
    await conn.wait(lambda: False, seconds)
    obs = Observed()
    ends = []
    if conn.goaway_at is not None:
        ends.append(conn.goaway_at - started)
        obs.notes.append(f"GOAWAY after {ends[-1]:.2f} s")
    if conn.closed.is_set():
        obs.figures["closed_after"] = time.monotonic() - started
        ends.append(obs.figures["closed_after"])
        obs.notes.append(f"closed after {obs.figures['closed_after']:.2f} s")
    if ends:
        obs.figures["ended_after"] = min(ends)
    return obs


async def ping_first(ctx: Ctx) -> Observed:
    conn = await FrameConn.connect(ctx.port, preface=False)
    conn.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + PingFrame(0, b"12345678").serialize())
    return await _finish(conn, await _closed_after(conn, time.monotonic(), ctx.pick(3.0, 1.5)))


async def ping_flood(ctx: Ctx) -> Observed:
    conn = await ctx.connect()
    ping = PingFrame(0, b"hostile!").serialize()
    await conn.flood(ping, ctx.size(8 * MIB, 2 * MIB), ctx.pick(4.0, 2.0))
    await conn.wait(lambda: conn.goaway is not None, 0.5)
    obs = Observed(notes=[f"{conn.frames_in['PingFrame']} PING acks"])
    return await _finish(conn, obs)


async def settings_flood(ctx: Ctx) -> Observed:
    conn = await ctx.connect(ack_settings=True)
    frame = SettingsFrame(0, settings={SettingsFrame.HEADER_TABLE_SIZE: 4096}).serialize()
    await conn.flood(frame, ctx.size(8 * MIB, 2 * MIB), ctx.pick(4.0, 2.0))
    await conn.wait(lambda: conn.goaway is not None, 0.5)
    obs = Observed(notes=[f"{conn.frames_in['SettingsFrame']} SETTINGS back"])
    return await _finish(conn, obs)


async def rapid_reset(ctx: Ctx) -> Observed:
    conn = await ctx.connect()
    count = ctx.size(50_000, 10_000)
    deadline = time.monotonic() + ctx.pick(5.0, 2.5)
    stream_id = 1
    for _ in range(count // 100):
        batch = []
        for _ in range(100):
            batch += conn.header_frames(stream_id, request_headers(UNARY))
            batch.append(RstStreamFrame(stream_id, error_code=8))
            stream_id += 2
        if not conn.send(*batch) or not await conn.drain(deadline - time.monotonic()):
            break
    await conn.wait(lambda: conn.goaway is not None, 0.5)
    obs = Observed(notes=[f"{stream_id // 2} streams opened and reset"])
    await _finish(conn, obs)
    await _handlers_left(ctx, obs, 2.0)
    return obs


async def window_update_flood(ctx: Ctx) -> Observed:
    conn = await ctx.connect()
    frame = WindowUpdateFrame(0, window_increment=1).serialize()
    await conn.flood(frame, ctx.size(4 * MIB, 1 * MIB), ctx.pick(4.0, 2.0))
    await conn.wait(lambda: conn.goaway is not None, 0.5)
    return await _finish(conn, Observed())


async def window_overflow(ctx: Ctx) -> Observed:
    conn = await ctx.connect()
    conn.send(WindowUpdateFrame(0, window_increment=2**31 - 1))
    await conn.wait(lambda: conn.goaway is not None, 2.0)
    return await _finish(conn, Observed())


async def empty_data_flood(ctx: Ctx) -> Observed:
    conn = await ctx.connect()
    conn.send_headers(1, request_headers(SINK))
    frame = DataFrame(1, b"").serialize()
    await conn.flood(frame, ctx.size(4 * MIB, 1 * MIB), ctx.pick(4.0, 2.0))
    await conn.wait(lambda: conn.goaway is not None, 0.5)
    return await _finish(conn, Observed())


async def zero_length_messages(ctx: Ctx) -> Observed:
    """A handler that never reads; the peer sends zero-length messages within the window."""
    conn = await ctx.connect()
    conn.send_headers(1, request_headers(SINK))
    budget = ctx.size(32 * MIB, 12 * MIB)
    accepted = await conn.send_within_window(1, message(b"") * (budget // 5), ctx.pick(5.0, 2.5))
    obs = Observed(figures={"accepted": accepted})
    obs.notes.append(f"server took {accepted / MIB:.1f} MiB of 0-byte messages")
    return await _finish(conn, obs)


async def ignore_flow_control(ctx: Ctx) -> Observed:
    """Overrun every window on a stream whose handler does not read."""
    conn = await ctx.connect()
    conn.send_headers(1, request_headers(SINK))
    chunk = DataFrame(1, message(b"x" * 16379)).serialize()
    sent = await conn.flood(chunk, ctx.size(64 * MIB, 16 * MIB), ctx.pick(5.0, 2.5))
    await conn.wait(lambda: conn.goaway is not None, 0.5)
    obs = Observed(notes=[f"sent {sent / MIB:.1f} MiB past the window"])
    return await _finish(conn, obs)


async def continuation_flood(ctx: Ctx) -> Observed:
    """HEADERS without END_HEADERS, then CONTINUATION frames at the advertised frame size."""
    conns = []
    for _ in range(ctx.size(8, 2)):
        conn = await ctx.connect()
        size = conn.peer_settings.get(SettingsFrame.MAX_FRAME_SIZE, 16384)
        # Literal headers without indexing, each a fresh name: nothing is shared in HPACK state.
        block = conn.encoder.encode(request_headers(SINK))
        conn.send(HeadersFrame(1, block))
        filler = b"\x00\x05abcde\x7f\x00" + b"v" * 127
        body = filler * (size // len(filler))
        frame = ContinuationFrame(1, body).serialize()
        await conn.flood(frame, ctx.size(64 * MIB, 16 * MIB), ctx.pick(3.0, 1.5))
        conns.append(conn)
    obs = Observed()
    await asyncio.gather(*(_goaway_within(c, 0.5) for c in conns))
    answers = {c.answer() for c in conns}
    obs.notes.append(f"{len(conns)} connections")
    for conn in conns:
        obs.bytes_sent += conn.bytes_sent
        await conn.close()
    obs.answer = " | ".join(sorted(answers))
    return obs


async def _goaway_within(conn: FrameConn, seconds: float) -> bool:
    return await conn.wait(lambda: conn.goaway is not None, seconds)


async def streams_over_limit(ctx: Ctx) -> Observed:
    """One stream past SETTINGS_MAX_CONCURRENT_STREAMS: only that one should be refused."""
    conn = await ctx.connect()
    limit = conn.peer_settings.get(SettingsFrame.MAX_CONCURRENT_STREAMS)
    count = (limit or 100) + 1
    ids = [1 + 2 * i for i in range(count)]
    for stream_id in ids:
        conn.send_headers(stream_id, request_headers(SINK))
    await conn.drain(2.0)
    await conn.wait(lambda: conn.goaway is not None or conn.stream(ids[-1]).ended, 2.0)
    first = ids[:-1]
    # The legitimate streams must still work: end them and wait for their answers.
    for stream_id in first[:5]:
        conn.send_data(stream_id, message(b"ok"), end_stream=True)
    alive = sum(1 for s in first if conn.stream(s).reset is None)
    obs = Observed(
        notes=[f"limit {limit}; {count} streams; {alive} of the first {len(first)} kept"]
    )
    kept = alive == len(first) and conn.goaway is None
    last = conn.stream(ids[-1]).reset
    # With no limit advertised nothing may be refused; with one, exactly the stream past it.
    obs.figures["as_limit_says"] = kept and (last is None if limit is None else last == 7)
    obs.answer = conn.answer(ids[-1:]) if conn.goaway is None else conn.answer()
    obs.bytes_sent = conn.bytes_sent
    await conn.close()
    return obs


async def headers_flood(ctx: Ctx) -> Observed:
    """Thousands of HEADERS (new streams, never ended) in one burst, far over the limit."""
    conn = await ctx.connect()
    count = ctx.size(5000, 1000)
    frames = []
    for i in range(count):
        frames += conn.header_frames(1 + 2 * i, request_headers(SINK))
    conn.send(*frames)
    await conn.drain(2.0)
    await conn.wait(lambda: conn.goaway is not None, 1.0)
    obs = Observed(notes=[f"{count} streams opened"])
    await _finish(conn, obs)
    await _handlers_left(ctx, obs, 2.0)
    return obs


# --------------------------------------------------------------------------- lying messages


async def _one_call(
    ctx: Ctx, headers: list[tuple[bytes, bytes]], body: bytes, seconds: float = 3.0
) -> Observed:
    seconds = ctx.pick(seconds, 2.0)
    conn = await ctx.connect()
    if conn.send_headers(1, headers):
        sent = await conn.send_within_window(1, body, seconds)
        if sent == len(body) and not conn.stream(1).ended:
            conn.send(DataFrame(1, b"", flags=["END_STREAM"]))
    await conn.wait_ended([1], seconds)
    return await _finish(conn, Observed())


async def lying_prefix_4gib(ctx: Ctx) -> Observed:
    return await _one_call(ctx, request_headers(UNARY), message(b"x" * 10, length=0xFFFFFFFF))


async def lying_prefix_short(ctx: Ctx) -> Observed:
    return await _one_call(ctx, request_headers(UNARY), message(b"x" * 10, length=100))


async def oversize_message(ctx: Ctx) -> Observed:
    return await _one_call(ctx, request_headers(UNARY), message(b"x" * (5 * MIB)), 5.0)


async def oversize_header(ctx: Ctx) -> Observed:
    extra = [(b"x-big", b"v" * (64 * 1024))]
    return await _one_call(ctx, request_headers(UNARY, extra), message(b"hi"))


async def huge_metadata(ctx: Ctx) -> Observed:
    extra = [(f"x-h{i}".encode(), b"v" * 8192) for i in range(128)]
    return await _one_call(ctx, request_headers(UNARY, extra), message(b"hi"))


async def _bad_headers(ctx: Ctx, variants: list[list[tuple[bytes, bytes]]]) -> Observed:
    conn = await ctx.connect()
    ids = []
    for index, extra in enumerate(variants):
        stream_id = 1 + 2 * index
        ids.append(stream_id)
        conn.send_headers(stream_id, request_headers(UNARY, extra))
        conn.send_data(stream_id, message(b"hi"), end_stream=True)
    await conn.wait_ended(ids, ctx.pick(3.0, 2.0))
    return await _finish(conn, Observed(notes=[f"{len(ids)} calls"]))


async def uppercase_header(ctx: Ctx) -> Observed:
    return await _bad_headers(ctx, [[(b"X-Upper", b"a")], [(b"bad name", b"a")], [(b":foo", b"a")]])


async def crlf_nul_value(ctx: Ctx) -> Observed:
    return await _bad_headers(ctx, [[(b"x-crlf", b"a\r\nb")], [(b"x-nul", b"a\x00b")]])


async def connection_header(ctx: Ctx) -> Observed:
    return await _bad_headers(ctx, [[(b"connection", b"close")]])


async def bad_bin_base64(ctx: Ctx) -> Observed:
    return await _bad_headers(ctx, [[(b"x-bin", b"!!not base64!!")]])


async def bad_timeouts(ctx: Ctx) -> Observed:
    values = [b"abc", b"1", b"999999999S", b"-1S", b"1.5S", b"\xff\xffS"]
    return await _bad_headers(ctx, [[(b"grpc-timeout", value)] for value in values])


# ------------------------------------------------------------------- vanishing and slow peers


async def vanish_server_stream(ctx: Ctx) -> Observed:
    """Start a big server stream, never read it, then reset the TCP connection."""
    obs = Observed()
    conns = []
    for _ in range(ctx.size(20, 5)):
        conn = await ctx.connect()
        conn.send_headers(1, request_headers(STREAM))
        conn.send_data(1, message(b"100000,1024"), end_stream=True)
        conns.append(conn)
    await asyncio.sleep(0.5)
    for conn in conns:
        obs.bytes_sent += conn.bytes_sent
        await conn.close(rst=True)
    obs.answer = f"{len(conns)} connections reset by us"
    await _handlers_left(ctx, obs, 2.0)
    return obs


async def vanish_unread_request(ctx: Ctx) -> Observed:
    """Send request data a handler never reads, then reset the TCP connection."""
    obs = Observed()
    conns = []
    for _ in range(ctx.size(20, 5)):
        conn = await ctx.connect()
        conn.send_headers(1, request_headers(SINK))
        # As much as the windows take, so the stream is blocked on flow control when we leave.
        obs.bytes_sent += await conn.send_within_window(1, message(b"x" * (4 * MIB)), 0.3)
        conns.append(conn)
    await asyncio.sleep(0.5)
    for conn in conns:
        obs.bytes_sent += conn.bytes_sent
        await conn.close(rst=True)
    obs.answer = f"{len(conns)} connections reset by us"
    await _handlers_left(ctx, obs, 2.0)
    return obs


async def slow_reader(ctx: Ctx) -> Observed:
    """Ask for a 64 MiB server stream with a 1 KiB window, never read, hold the connection."""
    conn = await ctx.connect(
        window_updates=False, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 1024}
    )
    conn.send_headers(1, request_headers(STREAM))
    conn.send_data(1, message(b"65536,1024"), end_stream=True)
    await asyncio.sleep(ctx.pick(4.0, 1.5))
    obs = Observed(notes=[f"{conn.stream(1).data_bytes} bytes of response came"])
    obs = await _finish(conn, obs)
    await _handlers_left(ctx, obs, 2.0)
    return obs


async def slow_writer(ctx: Ctx) -> Observed:
    """A unary request dribbled one byte every 40 ms; the call must still be served."""
    conn = await ctx.connect()
    conn.send_headers(1, request_headers(UNARY))
    body = message(b"slow" * ctx.size(10, 5))
    for index in range(len(body)):
        last = index == len(body) - 1
        conn.send(DataFrame(1, body[index : index + 1], flags=["END_STREAM"] if last else []))
        await asyncio.sleep(0.04)
    await conn.wait_ended([1], 3.0)
    return await _finish(conn, Observed())


async def never_end_stream(ctx: Ctx) -> Observed:
    """100 streams whose handler never reads, each filled to its window, held open."""
    conn = await ctx.connect()
    ids = [1 + 2 * i for i in range(ctx.size(100, 20))]
    for stream_id in ids:
        conn.send_headers(stream_id, request_headers(SINK))
    chunk = message(b"x" * 65531)
    budget = ctx.size(1024 * MIB, 64 * MIB)
    deadline = time.monotonic() + ctx.pick(8.0, 3.0)
    sent = 0
    for stream_id in ids:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or sent >= budget:
            break
        body = chunk * max(1, min(budget - sent, 16 * MIB) // len(chunk))
        sent += await conn.send_within_window(stream_id, body, min(remaining, 0.3))
    await asyncio.sleep(0.5)
    obs = Observed(notes=[f"{len(ids)} streams held, {sent / MIB:.1f} MiB taken"])
    obs.figures["accepted"] = sent
    obs = await _finish(conn, obs)
    await _handlers_left(ctx, obs, 2.0)
    return obs


async def open_after_trailers(ctx: Ctx) -> Observed:
    """A call the server ends at once (an unknown method) while its client never ends its side:
    once the server has sent trailers it should reset the stream (RST_STREAM NO_ERROR, as grpcio
    and grpc-go do), freeing the slot."""
    conn = await ctx.connect()
    conn.send_headers(1, request_headers("/hostile.Target/Nope"))
    conn.send_data(1, message(b"open"))
    await conn.wait_ended([1], ctx.pick(3.0, 2.0))
    # The reset may follow the trailers by a moment.
    await conn.wait(lambda: conn.stream(1).reset is not None, 0.5)
    return await _finish(conn, Observed())


async def lying_frame_length(ctx: Ctx) -> Observed:
    """A DATA frame header announcing 16 MiB (over SETTINGS_MAX_FRAME_SIZE) and a few bytes."""
    conn = await ctx.connect()
    conn.send_headers(1, request_headers(UNARY))
    conn.write(raw_frame(0, 0, 1, b"x" * 100, length=16 * MIB - 1))
    return await _finish(conn, await _closed_after(conn, time.monotonic(), ctx.pick(2.0, 1.5)))


def _attack(
    name: str, run: Callable[[Ctx], Awaitable[Observed]], expect: Expect, **kw: object
) -> Attack:
    return Attack(name, "server", run, expect, **kw)  # type: ignore[arg-type]


# GOAWAY or close, whichever first: a GOAWAY sent at once is the answer, even if the close
# follows after a lingering close (see _closed_after).
_CLOSED_FAST = figure("ended_after", "GOAWAY or closed within 1 s", lambda s: s < 1.0)
_NO_HANDLERS = figure("handlers_left", "0 handlers left", lambda n: n == 0)
_REFUSED = answered("GOAWAY", "RST", "HTTP 431", "status RESOURCE_EXHAUSTED", label="refused")
_STREAM_REFUSED = answered(
    "RST", "HTTP 431", "status RESOURCE_EXHAUSTED", label="that call refused (RST/431/status)"
) & Expect("no GOAWAY", lambda r: "GOAWAY" not in r.answer)


def _all_refused(count: int) -> Expect:
    suffix = f" x{count}" if count > 1 else ""
    texts = [f"RST PROTOCOL_ERROR{suffix}", f"status INTERNAL{suffix}", f"HTTP 400{suffix}"]
    return answered(*texts, label=f"all {count} refused (RST PROTOCOL_ERROR or INTERNAL)")


_GONE = answered("GOAWAY PROTOCOL_ERROR", "closed", label="GOAWAY PROTOCOL_ERROR or closed")

_ENDS = answered("status", "RST", label="every call ends with a status")
_NO_GOAWAY_REFUSED = Expect(
    "RST REFUSED_STREAM for the one past the limit, the others kept",
    lambda r: bool(r.figures.get("as_limit_says")),
)
_WINDOW = figure("accepted", "stops at its window (< 8 MiB taken)", lambda n: n < 8 * MIB)
_OVERRUN = answered("FLOW_CONTROL_ERROR", "RST", label="FLOW_CONTROL_ERROR (or RST)")
_FRAME_SIZE = answered(
    "GOAWAY FRAME_SIZE_ERROR", "closed", label="GOAWAY FRAME_SIZE_ERROR or closed"
)
_CALM = answered("GOAWAY ENHANCE_YOUR_CALM")
# huge_metadata sends a 1 MiB header block, over twice the advertised header-list size:
# asgi_grpc then ends the connection with GOAWAY ENHANCE_YOUR_CALM by design (the block would
# have to be buffered whole to decode it and keep HPACK in step; see server/_hypercorn_h2.py),
# where grpc-core decodes incrementally and can fail that call alone. Either bounds the server.
_HUGE_BLOCK_REFUSED = answered(
    "RST",
    "HTTP 431",
    "status RESOURCE_EXHAUSTED",
    "GOAWAY ENHANCE_YOUR_CALM",
    label="that call refused (RST/431/status), or GOAWAY ENHANCE_YOUR_CALM for a block over"
    " twice the header-list size",
)
_PROMPT = prompt_witness(1.0)
_EXCESS_REFUSED = answered(
    "RST REFUSED_STREAM",
    "GOAWAY ENHANCE_YOUR_CALM",
    label="streams past the limit refused (RST REFUSED_STREAM, or GOAWAY ENHANCE_YOUR_CALM)",
)

ATTACKS = [
    _attack("garbage_preface", garbage_preface, _GONE & _CLOSED_FAST, quick=True),
    _attack("ping_first", ping_first, _GONE & _CLOSED_FAST, quick=True),
    _attack("ping_flood", ping_flood, _CALM & rss_growth(20) & _PROMPT, quick=True),
    _attack("settings_flood", settings_flood, rss_growth(20) & _PROMPT, quick=True),
    _attack("rapid_reset", rapid_reset, rss_growth(128) & _NO_HANDLERS, quick=True),
    _attack("window_update_flood", window_update_flood, rss_growth(20) & _PROMPT, quick=True),
    _attack("window_overflow", window_overflow, answered("GOAWAY FLOW_CONTROL_ERROR"), quick=True),
    _attack("empty_data_flood", empty_data_flood, rss_growth(20) & _PROMPT, quick=True),
    _attack("zero_length_messages", zero_length_messages, _WINDOW & rss_growth(20), quick=True),
    _attack("ignore_flow_control", ignore_flow_control, _OVERRUN & rss_growth(20), quick=True),
    _attack(
        "continuation_flood",
        continuation_flood,
        _REFUSED & rss_growth(20) & rss_kept(10),
        quick=True,
    ),
    _attack("streams_over_limit", streams_over_limit, _NO_GOAWAY_REFUSED, quick=True),
    _attack("headers_flood", headers_flood, _EXCESS_REFUSED & rss_growth(64) & _NO_HANDLERS),
    _attack("open_after_trailers", open_after_trailers, answered("RST NO_ERROR"), quick=True),
    _attack("lying_frame_length", lying_frame_length, _FRAME_SIZE & _CLOSED_FAST, quick=True),
    _attack("lying_prefix_4gib", lying_prefix_4gib, status("RESOURCE_EXHAUSTED"), quick=True),
    _attack("lying_prefix_short", lying_prefix_short, status("INTERNAL"), quick=True),
    _attack("oversize_message", oversize_message, status("RESOURCE_EXHAUSTED")),
    _attack("oversize_header", oversize_header, _STREAM_REFUSED, quick=True),
    _attack("huge_metadata", huge_metadata, _HUGE_BLOCK_REFUSED & rss_growth(20)),
    _attack("uppercase_header", uppercase_header, _all_refused(3), quick=True),
    _attack("crlf_nul_value", crlf_nul_value, _all_refused(2), quick=True),
    _attack("connection_header", connection_header, _all_refused(1)),
    _attack("bad_bin_base64", bad_bin_base64, _ENDS, quick=True),
    _attack("bad_timeouts", bad_timeouts, _ENDS, quick=True),
    _attack("vanish_server_stream", vanish_server_stream, _NO_HANDLERS, quick=True),
    _attack("vanish_unread_request", vanish_unread_request, _NO_HANDLERS, quick=True),
    _attack("slow_reader", slow_reader, rss_growth(20) & _NO_HANDLERS, quick=True),
    _attack("slow_writer", slow_writer, status("OK"), quick=True),
    _attack("never_end_stream", never_end_stream, rss_growth(250) & _NO_HANDLERS),
]

#: Attacks judged by the answer alone: in --quick they may meet a server used before.
SHARED = frozenset(
    {
        "garbage_preface",
        "ping_first",
        "window_overflow",
        "streams_over_limit",
        "open_after_trailers",
        "lying_frame_length",
        "lying_prefix_4gib",
        "lying_prefix_short",
        "oversize_message",
        "oversize_header",
        "uppercase_header",
        "crlf_nul_value",
        "connection_header",
        "bad_bin_base64",
        "bad_timeouts",
        "slow_writer",
    }
)

#: The item of issue 9 each attack reproduces (shown in the table).
ITEMS = {
    "garbage_preface": 7,
    "ping_first": 7,
    "ping_flood": 8,
    "zero_length_messages": 1,
    "ignore_flow_control": 1,
    "continuation_flood": 2,
    "never_end_stream": 3,
    "vanish_server_stream": 4,
    "vanish_unread_request": 4,
    "streams_over_limit": 5,
    "headers_flood": 5,
    "uppercase_header": 6,
    "crlf_nul_value": 6,
    "connection_header": 6,
    "open_after_trailers": 13,
}
ATTACKS = [dataclasses.replace(a, item=ITEMS.get(a.name)) for a in ATTACKS]
