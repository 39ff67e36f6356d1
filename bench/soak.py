"""``python -m bench soak --minutes N``: is the server's memory flat under hours of load?

Starts a server process (asgi_grpc's ``aio.server()``; with ``--control``, grpcio's too, side by
side) serving four raw-bytes methods, one per gRPC pattern, and one client process per server:
``--clients`` grpcio channels (one HTTP/2 connection each), each looping over the four patterns
(unary; server stream of 5; client stream of 5; bidi ping-pong of 5) as fast as it can. Every
``--interval`` seconds it prints each server's RSS, open file descriptors and calls so far, and at
the end a verdict: RSS growth after the warm-up (the first ``--warmup`` fraction of the run), in
percent and in bytes per call, against ``--max-growth`` (5% by default).

The client is always grpcio's, so the servers get the same load. Both processes run on
127.0.0.1; the run ends after ``--minutes`` (fractions allowed) and cleans up after itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil  # type: ignore[import-untyped]  # no stubs installed

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "soak.Soak"
STREAM = 5  # messages per streaming call
PAYLOAD = b"p" * 100


# ---------------------------------------------------------------------- server process


async def serve(impl: str) -> None:
    if impl == "grpcio":
        import grpc
    else:
        import asgi_grpc as grpc  # type: ignore[no-redef]

    async def unary(request: bytes, context: Any) -> bytes:
        return request

    async def server_stream(request: bytes, context: Any) -> Any:
        for _ in range(STREAM):
            yield request

    async def client_stream(requests: Any, context: Any) -> bytes:
        count = 0
        async for _ in requests:
            count += 1
        return b"%d" % count

    async def bidi(requests: Any, context: Any) -> Any:
        async for request in requests:
            yield request

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"port": port}), flush=True)
    await stop.wait()
    await server.stop(1)


# ---------------------------------------------------------------------- client process


async def drive(port: int, clients: int, seconds: float) -> None:
    import grpc

    calls = 0
    failures = 0
    deadline = time.monotonic() + seconds

    async def one_client() -> None:
        nonlocal calls, failures
        # A subchannel pool of its own: one TCP connection per client (grpcio would otherwise
        # share one connection between all channels to the same target).
        options = [("grpc.use_local_subchannel_pool", 1)]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
            unary = channel.unary_unary(f"/{SERVICE}/Unary")
            server_stream = channel.unary_stream(f"/{SERVICE}/ServerStream")
            client_stream = channel.stream_unary(f"/{SERVICE}/ClientStream")
            bidi = channel.stream_stream(f"/{SERVICE}/Bidi")
            while time.monotonic() < deadline:
                try:
                    assert await unary(PAYLOAD, timeout=30) == PAYLOAD
                    got = [m async for m in server_stream(PAYLOAD, timeout=30)]
                    assert len(got) == STREAM
                    total = await client_stream(iter([PAYLOAD] * STREAM), timeout=30)
                    assert total == b"%d" % STREAM
                    call = bidi(timeout=30)
                    for _ in range(STREAM):
                        await call.write(PAYLOAD)
                        assert await call.read() == PAYLOAD
                    await call.done_writing()
                    assert await call.read() is grpc.aio.EOF
                    calls += 4
                except (grpc.RpcError, AssertionError) as exc:  # noqa: PERF203 - counted, go on
                    failures += 1
                    print(json.dumps({"error": repr(exc)[:300]}), flush=True)
                    await asyncio.sleep(0.1)

    async def report() -> None:
        while True:
            print(json.dumps({"calls": calls, "failures": failures}), flush=True)
            await asyncio.sleep(1)

    reporter = asyncio.ensure_future(report())
    await asyncio.gather(*(one_client() for _ in range(clients)))
    reporter.cancel()
    print(json.dumps({"calls": calls, "failures": failures, "done": True}), flush=True)


# ---------------------------------------------------------------------- orchestrator


@dataclass
class Run:
    impl: str
    server: subprocess.Popen[str]
    client: subprocess.Popen[str] | None = None
    calls: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    samples: list[tuple[float, int, float, int]] = field(default_factory=list)  # t, calls, MiB, fds

    def follow(self, stream: IO[str]) -> None:
        for line in stream:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if "calls" in event:
                    self.calls, self.failures = event["calls"], event["failures"]
                elif "error" in event and len(self.errors) < 5:
                    self.errors.append(event["error"])


def _child(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "bench.soak", *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def _verdict(run: Run, warmup: float, max_growth: float) -> tuple[bool, str]:
    samples = run.samples
    after = [s for s in samples if s[0] >= warmup]
    if len(after) < 4:
        return False, f"{run.impl}: too few samples after the warm-up for a verdict"
    # Medians of the first and last three samples after the warm-up: one noisy sample (a GC
    # pause, the allocator's timing) does not decide.
    start = statistics.median(s[2] for s in after[:3])
    end = statistics.median(s[2] for s in after[-3:])
    calls = statistics.median(s[1] for s in after[-3:]) - statistics.median(s[1] for s in after[:3])
    growth = (end - start) / start * 100
    per_call = (end - start) * 2**20 / calls if calls > 0 else 0.0
    fds = f"fds {after[0][3]} -> {after[-1][3]}"
    ok = growth <= max_growth and run.failures == 0
    verdict = "FLAT" if ok else "GROWING" if growth > max_growth else "FAILED"
    return ok, (
        f"{run.impl}: RSS {start:.1f} -> {end:.1f} MiB after warm-up ({growth:+.2f}%, "
        f"{per_call:+.1f} bytes/call over {calls:,.0f} calls), {fds}, {run.calls:,} calls, "
        f"{run.failures} failures: {verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--interval", type=float, default=None, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of the run")
    parser.add_argument("--max-growth", type=float, default=5.0, help="percent after warm-up")
    parser.add_argument("--control", action="store_true", help="run grpcio's server alongside")
    parser.add_argument("--impl", default="asgi_grpc", help=argparse.SUPPRESS)
    parser.add_argument("--serve", metavar="IMPL", help=argparse.SUPPRESS)
    parser.add_argument("--drive", metavar="PORT", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    if args.drive:
        asyncio.run(drive(args.drive, args.clients, args.seconds))
        return 0

    seconds = args.minutes * 60
    interval = args.interval or max(2.0, seconds / 40)
    impls = [args.impl] + (["grpcio"] if args.control else [])
    runs: list[Run] = []
    try:
        for impl in impls:
            server = _child("--serve", impl)
            assert server.stdout is not None
            port = json.loads(server.stdout.readline())["port"]
            runs.append(Run(impl, server))
            run = runs[-1]
            run.client = _child(
                "--drive", str(port), "--clients", str(args.clients), "--seconds", str(seconds)
            )
            assert run.client.stdout is not None
            threading.Thread(target=run.follow, args=(run.client.stdout,), daemon=True).start()
        procs = {run.impl: psutil.Process(run.server.pid) for run in runs}
        print(
            f"soak: {args.clients} clients x 4 patterns for {args.minutes:g} min against "
            f"{', '.join(impls)}; a sample every {interval:g} s, warm-up {args.warmup:.0%}",
            flush=True,
        )
        header = "   time  " + "".join(f"| {impl:>9} calls  RSS MiB   fds " for impl in impls)
        print(header, flush=True)
        started = time.monotonic()
        while True:
            elapsed = time.monotonic() - started
            row = f"{elapsed:7.0f}s "
            for run in runs:
                proc = procs[run.impl]
                mib = proc.memory_info().rss / 2**20
                fds = proc.num_fds()
                run.samples.append((elapsed, run.calls, mib, fds))
                row += f"| {run.calls:15,} {mib:8.1f} {fds:5} "
            print(row, flush=True)
            if all(run.client is not None and run.client.poll() is not None for run in runs):
                break
            time.sleep(max(0.0, interval - (time.monotonic() - started - elapsed)))
    finally:
        for run in runs:
            for proc in (run.client, run.server):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in (run.client, run.server):
                if proc is not None:
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
    ok = True
    print("verdict:")
    for run in runs:
        passed, line = _verdict(run, seconds * args.warmup, args.max_growth)
        print(f"  {line}")
        for error in run.errors:
            print(f"    error: {error}")
        ok = ok and passed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
