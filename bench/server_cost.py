"""Server cost of a fixed amount of work: ``python -m bench.server_cost``.

Starts ``python -m bench.server --impl IMPL`` (a fresh process) and drives it with a grpcio aio
client in this process: a warm-up, then ``--rounds`` rounds of ``--calls`` operations (unary calls
with 64 in flight, streamed messages, or client-streamed messages), printing the server's CPU
per operation for each round and their median. CPU time per operation is far steadier than calls/s
on a shared machine, but other processes still disturb it (caches, frequency).

With ``--callgrind`` the server runs under ``valgrind --tool=callgrind`` with instrumentation off
until the measured round (one round: ``callgrind_control`` switches it on and dumps it), and the
figure is instructions per operation: the same on an idle or a loaded machine, so before/after
differences of a few percent show. Instructions understate memory-bound work (the garbage
collector), so read both figures.

To compare two checkouts, run from outside both trees with ``PYTHONPATH=<tree>:<this repo>``
(the current directory comes first on ``sys.path``, so running from a checkout measures it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.proto import compile_proto, load

WORKLOADS = ("unary_64", "stream", "client_stream", "unary_1mib")
_PER_CALL = 500  # messages per streaming call


async def _unary_64(stub: Any, pb2: Any, count: int) -> int:
    request = pb2.EchoRequest(payload=b"x" * 10)

    async def one_slot(calls: int) -> None:
        for _ in range(calls):
            await stub.Unary(request)

    await asyncio.gather(*(one_slot(count // 64) for _ in range(64)))
    return count // 64 * 64


async def _stream(stub: Any, pb2: Any, count: int) -> int:
    calls = max(1, count // _PER_CALL)
    for _ in range(calls):
        async for _ in stub.ServerStream(pb2.EchoRequest(count=_PER_CALL, response_size=10)):
            pass
    return calls * _PER_CALL


async def _client_stream(stub: Any, pb2: Any, count: int) -> int:
    calls = max(1, count // _PER_CALL)
    request = pb2.EchoRequest(payload=b"x" * 10)
    for _ in range(calls):
        await stub.ClientStream(iter([request] * _PER_CALL))
    return calls * _PER_CALL


async def _unary_1mib(stub: Any, pb2: Any, count: int) -> int:
    # One call at a time, as the bench's unary_1mib; count / 64 calls (1 MiB each way).
    request = pb2.EchoRequest(payload=b"x" * (1024 * 1024))
    calls = max(1, count // 64)
    for _ in range(calls):
        await stub.Unary(request)
    return calls


_RUN = {
    "unary_64": _unary_64,
    "stream": _stream,
    "client_stream": _client_stream,
    "unary_1mib": _unary_1mib,
}


def _callgrind(pid: int, *command: str) -> None:
    subprocess.run(["callgrind_control", *command, str(pid)], check=True, capture_output=True)


def _start(args: argparse.Namespace, gen_dir: Path, out: Path) -> subprocess.Popen[bytes]:
    prefix = []
    if args.callgrind:
        prefix = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        prefix.append(f"--callgrind-out-file={out}")
    command = [*prefix, sys.executable, "-m", "bench.server", "--impl", args.impl]
    command += ["--gen-dir", str(gen_dir)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


async def measure(args: argparse.Namespace, gen_dir: Path, out: Path) -> list[float]:
    import grpc

    pb2, pb2_grpc = load(gen_dir, "echo_pb2", "echo_pb2_grpc")
    server = _start(args, gen_dir, out)
    try:
        assert server.stdout is not None
        port = json.loads(server.stdout.readline())["port"]
        process = psutil.Process(server.pid)
        run = _RUN[args.workload]
        figures = []
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb2_grpc.EchoStub(channel)
            await run(stub, pb2, max(640, args.calls // 5))  # warm-up
            for _ in range(1 if args.callgrind else args.rounds):
                if args.callgrind:
                    _callgrind(server.pid, "-i", "on")
                before = process.cpu_times()
                started = time.monotonic()
                done = await run(stub, pb2, args.calls)
                elapsed = time.monotonic() - started
                after = process.cpu_times()
                cpu = after.user + after.system - before.user - before.system
                line = f"{args.impl} {args.workload}: {cpu / done * 1e6:.1f} us/op server CPU"
                line += f", {done / elapsed:,.0f} ops/s"
                if args.callgrind:
                    _callgrind(server.pid, "-d")
                    await asyncio.sleep(1.5)  # the dump is written asynchronously
                    dump = max(out.parent.glob(out.name + ".*"), key=os.path.getmtime)
                    totals = [
                        line for line in dump.read_text().splitlines() if line.startswith("totals:")
                    ]
                    instructions = int(totals[0].split()[1])
                    figures.append(instructions / done / 1e3)
                    line += f"; {figures[-1]:.1f} k instructions/op"
                else:
                    figures.append(cpu / done * 1e6)
                print(line, flush=True)
    finally:
        server.terminate()
        server.wait(30)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server_cost", description=__doc__)
    parser.add_argument("--impl", default="asgi_grpc")
    parser.add_argument("--workload", choices=WORKLOADS, default="unary_64")
    parser.add_argument("--calls", type=int, default=6400, help="operations per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true", help="instructions, one round")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="asgi_grpc_cost_") as tmp:
        gen_dir = compile_proto(Path(tmp) / "gen")
        figures = asyncio.run(measure(args, gen_dir, Path(tmp) / "callgrind.out"))
    unit = "k instructions/op" if args.callgrind else "us/op server CPU"
    print(f"median: {statistics.median(figures):.1f} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
