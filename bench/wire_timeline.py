"""Wire timeline of one workload: when each side reads and writes, which HTTP/2 frames, and when
its event loop sleeps. How the unary 64-in-flight stall was found (bench/README.md).

    python -m bench.wire_timeline --server asgi_grpc --client asgi_grpc --workload unary_64
    python -m bench.wire_timeline ... --show 0.5:0.05   # also list 50 ms from 0.5 s in

Runs the server and the client as ``python -m bench.server`` / ``bench.client`` subprocesses
(any implementation on asyncio's selector loop), each with asyncio's socket transport and the
selector wrapped to log, after the warm-up: every ``write`` and every read (bytes and frame
types: H headers, D data, ``*`` END_STREAM, WU window update, S settings, RST...), and every
sleep in ``select`` over 20 us. Timestamps are CLOCK_MONOTONIC, shared by both processes. It
prints per side: idle share (time asleep in select), writes and reads and their mean size, and
the share of time both sides slept at once.

Note: idle is time asleep waiting for input; time spent runnable but waiting for a core counts as
busy, so on a loaded machine read the structure (who waits for whom), not the absolute shares.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

Entry = tuple[float, str, float, Any]  # (time, "r" | "w" | "idle", bytes or seconds, detail)

_FRAME_NAMES = {0: "D", 1: "H", 2: "PRI", 3: "RST", 4: "S", 5: "PP", 6: "PING", 7: "GO", 8: "WU"}
_PREFACE = 24  # the client's connection preface, before the first frame


class _Frames:
    """Frame types in a byte stream fed piecewise."""

    def __init__(self, skip: int) -> None:
        self._buf = b""
        self._skip = skip

    def feed(self, data: bytes) -> list[str]:
        buf = self._buf + data
        if self._skip:
            n = min(self._skip, len(buf))
            buf, self._skip = buf[n:], self._skip - n
        names = []
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            kind, flags = buf[3], buf[4]
            name = _FRAME_NAMES.get(kind, str(kind))
            names.append(name + ("*" if kind in (0, 1) and flags & 1 else ""))
            buf = buf[9 + length :]
        self._buf = buf
        return names


def install(side: str, path: str, after: float) -> None:
    """Log this process's socket I/O and loop sleeps from ``after`` seconds on; dump at exit."""
    import asyncio.selector_events
    import atexit
    import selectors

    log: list[Entry] = []
    on = threading.Event()
    threading.Timer(after, on.set).start()
    inbound = _Frames(_PREFACE if side == "server" else 0)
    outbound = _Frames(_PREFACE if side == "client" else 0)
    clock = time.monotonic
    transport: Any = asyncio.selector_events._SelectorSocketTransport  # type: ignore[attr-defined]
    write, read_ready = transport.write, transport._read_ready__data_received

    def logged_write(self: Any, data: bytes) -> None:
        frames = outbound.feed(bytes(data))
        if on.is_set():
            log.append((clock(), "w", len(data), frames))
        write(self, data)

    def logged_read_ready(self: Any) -> None:
        protocol = self._protocol
        received = protocol.data_received

        def logged_received(data: bytes) -> None:
            frames = inbound.feed(bytes(data))
            if on.is_set():
                log.append((clock(), "r", len(data), frames))
            received(data)

        protocol.data_received = logged_received
        try:
            read_ready(self)
        finally:
            del protocol.data_received

    select = selectors.EpollSelector.select

    def logged_select(self: Any, timeout: float | None = None) -> Any:
        start = clock()
        ready = select(self, timeout)
        slept = clock() - start
        if slept > 20e-6 and on.is_set():
            log.append((start, "idle", slept, len(ready)))
        return ready

    transport.write, transport._read_ready__data_received = logged_write, logged_read_ready
    selectors.EpollSelector.select = logged_select  # type: ignore[method-assign]

    def dump() -> None:
        with open(path, "wb") as out:
            pickle.dump(log, out)

    atexit.register(dump)


def _run(args: argparse.Namespace, out: Path) -> tuple[list[Entry], list[Entry], str]:
    from bench.proto import compile_proto

    gen = compile_proto(out / "gen")
    after = args.warmup + 0.3

    def traced(side: str, module: str, argv: list[str]) -> list[str]:
        code = (
            f"import sys; from bench.wire_timeline import install; "
            f"install({side!r}, {str(out / side)!r}, {after}); "
            f"import {module}; {module}.main({argv!r})"
        )
        return [sys.executable, "-c", code]

    server = subprocess.Popen(
        traced("server", "bench.server", ["--impl", args.server, "--gen-dir", str(gen)]),
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        argv = ["--impl", args.client, "--target", f"127.0.0.1:{port}"]
        argv += ["--workload", args.workload, "--gen-dir", str(gen)]
        argv += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
        client = subprocess.run(
            traced("client", "bench.client", argv), capture_output=True, text=True, timeout=120
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    result = client.stdout.strip().splitlines()[-1] if client.stdout.strip() else client.stderr
    with open(out / "server", "rb") as f:
        server_log: list[Entry] = pickle.load(f)
    with open(out / "client", "rb") as f:
        client_log: list[Entry] = pickle.load(f)
    return server_log, client_log, result


def _idle(log: list[Entry], t0: float, t1: float) -> list[tuple[float, float]]:
    return [(t, t + d) for t, kind, d, _ in log if kind == "idle" and t >= t0 and t + d <= t1]


def report(server: list[Entry], client: list[Entry], show: tuple[float, float] | None) -> str:
    # A side not on asyncio's socket transport (grpcio's C core) logs nothing: use the other's.
    logs = [log for log in (server, client) if log] or [[(0.0, "idle", 0.0, 0)]]
    t0, t1 = max(log[0][0] for log in logs), min(log[-1][0] for log in logs)
    lines = [f"window {t1 - t0:.2f} s"]
    for name, log in (("server", server), ("client", client)):
        if not log:
            lines.append(f"{name}: not traced (not on asyncio's socket transport)")
            continue
        idle = sum(b - a for a, b in _idle(log, t0, t1))
        parts = [f"{name}: idle {idle / (t1 - t0):.0%}"]
        for kind, label in (("w", "writes"), ("r", "reads")):
            sizes = [e[2] for e in log if e[1] == kind and t0 <= e[0] <= t1]
            mean = sum(sizes) / len(sizes) if sizes else 0
            parts.append(f"{len(sizes)} {label} of {mean:.0f} B")
        lines.append(", ".join(parts))
    both, si, ci = 0.0, _idle(server, t0, t1), _idle(client, t0, t1)
    i = j = 0
    while i < len(si) and j < len(ci):
        both += max(0.0, min(si[i][1], ci[j][1]) - max(si[i][0], ci[j][0]))
        if si[i][1] < ci[j][1]:
            i += 1
        else:
            j += 1
    lines.append(f"both idle at once: {both / (t1 - t0):.0%}")
    if show is not None:
        start, end = t0 + show[0], t0 + show[0] + show[1]
        rows = [(t, "S", k, n, d) for t, k, n, d in server if start <= t <= end]
        rows += [(t, "C", k, n, d) for t, k, n, d in client if start <= t <= end]
        for t, side, kind, n, detail in sorted(rows):
            at = f"{(t - start) * 1e3:9.3f} ms {side}"
            if kind == "idle":
                lines.append(f"{at} idle {n * 1e3:.3f} ms")
            else:
                counts = dict(collections.Counter(detail))
                lines.append(f"{at} {'write' if kind == 'w' else 'read '} {n} B {counts}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wire_timeline")
    parser.add_argument("--server", default="asgi_grpc")
    parser.add_argument("--client", default="asgi_grpc")
    parser.add_argument("--workload", default="unary_64")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--show", help="START:LENGTH in seconds into the window: list the events")
    args = parser.parse_args(argv)
    show = tuple(float(x) for x in args.show.split(":")) if args.show else None
    with tempfile.TemporaryDirectory(prefix="wire_timeline_") as tmp:
        server, client, result = _run(args, Path(tmp))
    print(result)
    print(report(server, client, (show[0], show[1]) if show else None))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
