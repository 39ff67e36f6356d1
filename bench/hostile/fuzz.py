"""The frame fuzzer: ``python -m bench hostile --fuzz --seconds N [--seed S] [--against X]``.

Sends random-but-plausible HTTP/2 frame sequences (hyperframe frames with mutated fields, and
now and then a raw header that lies about length, type or flags) to a live asgi_grpc server
(or grpcio's, the control) on 127.0.0.1 for a fixed time, a few connections at a time. Every
two seconds a witness call on a fresh connection must answer, and the server's RSS and open
file descriptors are sampled. At the end the server must be alive, have answered every witness
call, and be back near its RSS and fd counts of after warm-up (the leak check).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hyperframe.exceptions import HyperframeError
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    ExtensionFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from bench.hostile.procs import Target, active_handlers, witness
from bench.hostile.wire import PREFACE, FrameConn, message, request_headers

PATHS = [
    "/hostile.Target/Unary",
    "/hostile.Target/Stream",
    "/hostile.Target/Bidi",
    "/hostile.Target/Sink",
    "/hostile.Target/Drain",
    "/hostile.Target/Nope",
    "/",
    "",
]
#: Leak bounds after the run, against the figures right after warm-up (generous: no flakes).
RSS_BOUND_MIB = 40.0
FD_BOUND = 8
CONCURRENCY = 4
#: Bytes one fuzz connection may send at most.
CONN_BUDGET = 1 << 20


@dataclass
class Report:
    seed: int
    seconds: float
    impl: str = "asgi_grpc"
    connections: int = 0
    frames: int = 0
    bytes_sent: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    witness_failures: list[float] = field(default_factory=list)
    witness_slowest: float = 0.0
    #: Handlers still running at the end (Sink handlers sleep up to 30 s; others should be 0).
    handlers_left: int | None = None
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (t, rss MiB, fds)
    baseline: tuple[float, int] = (0.0, 0)
    final: tuple[float, int] = (0.0, 0)
    alive: bool = True
    problems: list[str] = field(default_factory=list)


def retarget(frame: Frame, stream_id: int) -> bytes:
    """The frame serialized with another stream id, whether or not it is valid for its type."""
    raw = frame.serialize()
    return raw[:5] + struct.pack(">I", stream_id) + raw[9:]


def on(stream_id: int, make: Callable[[int], Frame]) -> bytes:
    """``make(stream_id)``, or if hyperframe refuses that id for the type, the same frame lying."""
    try:
        return make(stream_id).serialize()
    except HyperframeError:
        return retarget(make(1 if stream_id == 0 else 0), stream_id)


class Fuzzer:
    """Builds one connection's frames. A tame fuzzer keeps to valid stream ids and frame types,
    so its connections live long enough to reach the gRPC layer (calls, flow control, resets)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.tame = rng.random() < 0.5

    def stream_id(self, opened: list[int]) -> int:
        r = self.rng.random()
        if self.tame:
            return self.rng.choice(opened) if opened else 1
        if r < 0.7 and opened:
            return self.rng.choice(opened)
        if r < 0.92:
            return (max(opened) + 2) if opened else 1
        return self.rng.choice([0, 2, 4, 7, 2**31 - 1, self.rng.randrange(1, 2**31)])

    def headers(self, conn: FrameConn, stream_id: int) -> list[Frame]:
        rng = self.rng
        count = rng.choice([0, 0, 1, 3]) if not self.tame else 0
        extra: list[tuple[bytes, bytes]] = [
            rng.choice(
                [
                    (b"grpc-timeout", rng.choice([b"1S", b"10m", b"abc", b"99999999H", b"0n"])),
                    (b"x-bin", rng.choice([b"AAEC", b"!!", b"", b"AA=="])),
                    (b"grpc-encoding", rng.choice([b"gzip", b"identity", b"br", b"\x00"])),
                    (b"X-Up", b"v"),
                    (b"x-crlf", b"a\r\nb"),
                    (b"connection", b"close"),
                    (
                        b"x-" + os.urandom(3).hex().encode(),
                        os.urandom(rng.choice([1, 50, 5000])),
                    ),
                ]
            )
            for _ in range(count)
        ]
        headers = request_headers(rng.choice(PATHS), extra)
        if rng.random() < 0.15 and not self.tame:
            headers = headers[:: rng.choice([1, -1])][: rng.randrange(len(headers) + 1)]
        if rng.random() < 0.1 and not self.tame:
            headers = [(b":method", rng.choice([b"GET", b"POST", b"CONNECT", b""])), *headers[1:]]
        frames = conn.header_frames(
            stream_id, headers, end_stream=rng.random() < 0.3, max_frame=rng.choice([16384, 30, 7])
        )
        if rng.random() < 0.1 and not self.tame:
            frames[-1].flags.discard("END_HEADERS")  # a header block left open
        if rng.random() < 0.1 and isinstance(frames[0], HeadersFrame):
            frames[0].flags.add("PRIORITY")
            frames[0].depends_on = 0 if self.tame else rng.choice([0, stream_id, 3])
            frames[0].stream_weight = rng.randrange(256)
        return frames

    def data(self, stream_id: int) -> bytes:
        rng = self.rng
        kind = rng.random()
        if kind < 0.5:
            body = b"".join(
                message(os.urandom(rng.choice([0, 1, 10, 300]))) for _ in range(rng.randrange(1, 4))
            )
        elif kind < 0.7:
            body = message(b"x" * rng.randrange(50), length=rng.choice([0, 100, 2**31, 2**32 - 1]))
        elif kind < 0.8:
            body = bytes([rng.choice([0, 1, 2, 255])]) + os.urandom(rng.randrange(12))
        elif kind < 0.9:
            body = b"65536,1024" if rng.random() < 0.5 else message(b"1000,100")
        else:
            body = os.urandom(rng.randrange(2000))
        flags = ["END_STREAM"] if rng.random() < 0.35 else []
        pad = rng.randrange(256) if rng.random() < 0.1 else 0
        if pad:
            flags.append("PADDED")
        return on(stream_id, lambda s: DataFrame(s, body, flags=flags, pad_length=pad))

    def frame(self, conn: FrameConn, opened: list[int]) -> list[bytes]:
        rng = self.rng
        stream_id = self.stream_id(opened)
        if self.tame and (not opened or rng.random() < 0.15):
            stream_id = (max(opened) + 2) if opened else 1
            kind = "headers"
        else:
            kind = rng.choices(
                [
                    "headers",
                    "data",
                    "settings",
                    "ping",
                    "window",
                    "rst",
                    "priority",
                    "cont",
                    "goaway",
                    "push",
                    "ext",
                    "raw",
                ],
                weights=[0, 50, 3, 5, 10, 6, 3, 0, 0, 0, 0, 0]
                if self.tame
                else [25, 30, 6, 5, 8, 6, 3, 3, 1, 1, 2, 3],
            )[0]
        if kind == "headers":
            if stream_id not in opened and stream_id % 2:
                opened.append(stream_id)
            if stream_id == 0:
                return [retarget(f, 0) for f in self.headers(conn, 1)]
            return [f.serialize() for f in self.headers(conn, stream_id)]
        if kind == "data":
            return [self.data(stream_id)]
        if kind == "settings":
            settings = (
                {
                    rng.choice([1, 2, 3, 4, 5, 6, 8, 0x99]): rng.choice(
                        [0, 1, 2, 16383, 16384, 65535, 2**24, 2**31, 2**32 - 1]
                    )
                    for _ in range(rng.randrange(4))
                }
                if not self.tame
                else {
                    rng.choice([1, 3, 4, 6]): rng.choice([0, 1, 1024, 65535, 2**20])
                    for _ in range(rng.randrange(3))
                }
            )
            flags = ["ACK"] if rng.random() < 0.1 else []
            frame = SettingsFrame(0, settings=settings, flags=flags)
            return [frame.serialize() if rng.random() < 0.9 else retarget(frame, stream_id)]
        if kind == "ping":
            ping = PingFrame(0, os.urandom(8), flags=["ACK"] if rng.random() < 0.2 else [])
            return [ping.serialize() if self.tame or rng.random() < 0.9 else retarget(ping, 1)]
        if kind == "window":
            increment = rng.choice(
                [1, 1024, 65535, 2**20] if self.tame else [0, 1, 1024, 65535, 2**20, 2**31 - 1]
            )
            target = rng.choice([0, stream_id])
            return [on(target, lambda s: WindowUpdateFrame(s, window_increment=increment))]
        if kind == "rst":
            code = rng.choice([0, 1, 2, 7, 8, 0xFFFF])
            return [on(stream_id, lambda s: RstStreamFrame(s, error_code=code))]
        if kind == "priority":
            # Tame: never on itself (a self-dependency is a PROTOCOL_ERROR).
            depends = 0 if self.tame else rng.choice([0, stream_id, 1])
            weight = rng.randrange(256)
            return [
                on(stream_id, lambda s: PriorityFrame(s, depends_on=depends, stream_weight=weight))
            ]
        if kind == "cont":
            block, flags = (
                os.urandom(rng.randrange(40)),
                ["END_HEADERS"] if rng.random() < 0.5 else [],
            )
            return [on(stream_id, lambda s: ContinuationFrame(s, block, flags=flags))]
        if kind == "goaway":
            goaway = GoAwayFrame(
                0, last_stream_id=rng.choice([0, 1, 2**31 - 1]), error_code=rng.randrange(14)
            )
            return [goaway.serialize()]
        if kind == "push":
            block = conn.encoder.encode(request_headers("/"))
            return [
                on(
                    stream_id,
                    lambda s: PushPromiseFrame(
                        s, promised_stream_id=2, data=block, flags=["END_HEADERS"]
                    ),
                )
            ]
        if kind == "ext":
            ext = ExtensionFrame(
                rng.randrange(10, 256), 0, rng.randrange(256), os.urandom(rng.randrange(30))
            )
            return [retarget(ext, stream_id)]
        # A raw frame header that lies: any type, any flags, a length off the body's.
        body = os.urandom(rng.randrange(64))
        length = rng.choice(
            [len(body), len(body) + 1, max(0, len(body) - 1), 0, 2**14 + 1, 2**24 - 1]
        )
        header = struct.pack(">I", length)[1:] + bytes([rng.randrange(11), rng.randrange(256)])
        return [header + struct.pack(">I", stream_id | (rng.random() < 0.1) << 31) + body]


async def fuzz_connection(port: int, fuzzer: Fuzzer, report: Report) -> None:
    rng = fuzzer.rng
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    conn = FrameConn(
        reader, writer, window_updates=rng.random() < 0.7, ack_pings=rng.random() < 0.8
    )
    report.connections += 1
    try:
        start = rng.random()
        if start < 0.03:
            conn.write(os.urandom(rng.randrange(1, 100)))
        elif start < 0.06:
            conn.write(PREFACE[: rng.randrange(len(PREFACE))])
        else:
            conn.write(PREFACE)
            if rng.random() < 0.9:
                conn.send(
                    SettingsFrame(
                        0,
                        settings={4: rng.choice([0, 1024, 65535, 2**20])}
                        if rng.random() < 0.3
                        else {},
                    )
                )
        opened: list[int] = []
        for _ in range(rng.randrange(1, 40)):
            if conn.is_closed or conn.bytes_sent > CONN_BUDGET:
                break
            try:
                built = fuzzer.frame(conn, opened)
            except (HyperframeError, struct.error, ValueError, OverflowError) as exc:
                report.answers[f"fuzzer could not build: {type(exc).__name__}"] += 1
                continue
            conn.write(b"".join(built))
            report.frames += len(built)
            if rng.random() < 0.2:
                await conn.drain(0.5)
                await asyncio.sleep(rng.choice([0, 0.001, 0.02]))
        await conn.drain(0.5)
        await asyncio.sleep(rng.choice([0.01, 0.05, 0.2]))
        report.answers[("tame: " if fuzzer.tame else "") + conn.answer().split(";")[0][:40]] += 1
    finally:
        report.bytes_sent += conn.bytes_sent
        await conn.close(rst=rng.random() < 0.3)


async def run(seconds: float, seed: int, impl: str = "asgi_grpc") -> Report:
    report = Report(seed=seed, seconds=seconds, impl=impl)
    rng = random.Random(seed)
    target = await Target.start(impl)
    started = time.monotonic()

    def sample() -> tuple[float, int]:
        point = (target.rss(), target.fds())
        report.samples.append((round(time.monotonic() - started, 1), round(point[0], 1), point[1]))
        return point

    async def worker(end: float) -> None:
        while time.monotonic() < end and target.alive:
            fuzzer = Fuzzer(random.Random(rng.getrandbits(64)))
            try:
                await asyncio.wait_for(fuzz_connection(target.port, fuzzer, report), 5.0)
            except asyncio.TimeoutError:
                report.answers["fuzz connection timed out"] += 1
            except OSError as exc:
                report.answers[f"connect failed: {type(exc).__name__}"] += 1

    try:
        warmup = min(5.0, seconds * 0.2)
        end = started + seconds
        workers = [asyncio.ensure_future(worker(end)) for _ in range(CONCURRENCY)]
        await asyncio.sleep(warmup)
        report.baseline = sample()
        while time.monotonic() < end and target.alive:
            await asyncio.sleep(min(2.0, max(0.0, end - time.monotonic())))
            ok, took = await witness(target.port)
            if not ok:
                report.witness_failures.append(round(time.monotonic() - started, 1))
            report.witness_slowest = max(report.witness_slowest, round(took, 2))
            sample()
        await asyncio.gather(*workers)
        # Let the server let go of what the last connections held, then measure.
        settle = time.monotonic() + 10.0
        while True:
            await asyncio.sleep(0.5)
            report.final = sample()
            settled = report.final[1] - report.baseline[1] <= FD_BOUND
            if settled or time.monotonic() > settle or not target.alive:
                break
        report.alive = target.alive
        if report.alive:
            report.handlers_left = await active_handlers(target.port)
        if report.alive and not (await witness(target.port))[0]:
            report.witness_failures.append(round(time.monotonic() - started, 1))
    finally:
        report.alive = report.alive and target.alive
        if not report.alive:
            report.problems.append(f"server died: {target.tail(400)}")
        await target.stop()
    if report.witness_failures:
        report.problems.append(f"witness failed at {report.witness_failures} s (hang)")
    growth = report.final[0] - report.baseline[0]
    if growth > RSS_BOUND_MIB:
        report.problems.append(f"RSS grew {growth:.1f} MiB after warm-up (bound {RSS_BOUND_MIB:g})")
    fds = report.final[1] - report.baseline[1]
    if fds > FD_BOUND:
        report.problems.append(f"{fds} more open fds than after warm-up (bound {FD_BOUND})")
    return report


def summary(report: Report) -> str:
    lines = [
        f"fuzzed {report.impl} for {report.seconds:g} s, seed {report.seed}: {report.connections} "
        f"connections, {report.frames} frames, {report.bytes_sent / 2**20:.1f} MiB sent",
        f"RSS MiB / fds after warm-up {report.baseline[0]:.1f} / {report.baseline[1]}, "
        f"at the end {report.final[0]:.1f} / {report.final[1]}; peak RSS "
        f"{max((s[1] for s in report.samples), default=0):.1f}",
        f"witness calls failed: {len(report.witness_failures)} (slowest answer "
        f"{report.witness_slowest:.2f} s); server alive: {report.alive}; handlers running at "
        f"the end: {report.handlers_left}",
        "answers: " + ", ".join(f"{k} x{v}" for k, v in report.answers.most_common(8)),
        "PASS" if not report.problems else "FAIL: " + "; ".join(report.problems),
    ]
    return "\n".join(lines)


def main(seconds: float, seed: int | None, json_path: Path | None, impl: str = "asgi_grpc") -> int:
    seed = random.randrange(2**32) if seed is None else seed
    report = asyncio.run(run(seconds, seed, impl))
    print(summary(report))
    if json_path is not None:
        data: dict[str, Any] = asdict(report)
        data["answers"] = dict(report.answers)
        json_path.write_text(json.dumps(data, indent=1))
    return 1 if report.problems else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 30.0, None, None))
