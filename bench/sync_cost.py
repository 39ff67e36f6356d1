"""Cost of one call at one call in flight, either side: ``python -m bench.sync_cost``.

Starts ``python -m bench.server --impl SERVER`` (a fresh process) and makes blocking unary calls,
or ping-pong round trips on one bidi call, from this process's main thread with CLIENT
(``grpcio_sync``, ``asgi_grpc_sync``, or ``asgi_grpc`` for the aio client in one coroutine): a
warm-up, then ``--rounds`` rounds of ``--calls``, printing the CPU per operation of both
processes and the server's context switches per operation, all its threads counted (a voluntary
one is a thread going to sleep until something wakes it: the hand-offs between its threads)
(``--workload unary_1mib``: unary calls of 1 MiB each way). With ``--callgrind
client`` (run this command under ``valgrind --tool=callgrind --instr-atstart=no``) or
``--callgrind server`` (the server is started under it), one round is counted in instructions
instead (``--out``: the ``--callgrind-out-file`` given to valgrind for the client): the same on
an idle or a loaded machine, so the few-percent differences between two checkouts show (run from
outside both trees with ``PYTHONPATH=<tree>:<this repo>``, as bench/server_cost.py says).

``--threads N`` issues each operation from a pool of N threads, one at a time (with two or more,
the calling thread changes from call to call); with ``--asyncio-driver`` each is handed to the
pool from a coroutine (``run_in_executor``), exactly as the bench's driver does, so the pool's
idle threads are woken as there; ``--pin`` keeps this process on CPU 0 and the server on CPU 1,
to tell what a change of core costs.

The blocking API's changes in bench/README.md were measured this way, with the standard asyncio
loop (``ASGI_GRPC_UVLOOP=0``, as the bench's ``*_sync`` implementations run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from bench.proto import compile_proto, load, stubs_for

_END = object()
# Payload bytes per request (and response) of each workload.
_SIZES = {"unary": 10, "bidi": 10, "unary_1mib": 1024 * 1024}


def _blocking(
    grpc: Any,
    gen_dir: Path,
    target: str,
    workload: str,
    pool: ThreadPoolExecutor | None = None,
    driver: asyncio.AbstractEventLoop | None = None,
) -> Callable[[int], None]:
    """``pool``: each operation is handed to it and waited for, one at a time: from this
    thread, or with ``driver`` from a coroutine on that asyncio loop (``run_in_executor``),
    which is exactly how the bench's driver issues blocking calls (bench/clients/grpc_sync.py).
    With two threads or more, the thread that makes a call changes from one call to the next,
    and the pool's idle threads are woken at every hand-off (bench/README.md, "Blocking API")."""
    pb2, pb2_grpc = load(gen_dir, "echo_pb2", stubs_for(grpc))
    stub = pb2_grpc.EchoStub(grpc.insecure_channel(target))
    request = pb2.EchoRequest(payload=b"x" * _SIZES[workload])

    async def drive(count: int, op: Callable[[], object]) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            await loop.run_in_executor(pool, op)

    def each(count: int, op: Callable[[], object]) -> None:
        if pool is None:
            for _ in range(count):
                op()
        elif driver is not None:
            driver.run_until_complete(drive(count, op))
        else:
            for _ in range(count):
                pool.submit(op).result()

    def unary(count: int) -> None:
        each(count, lambda: stub.Unary(request))

    def bidi(count: int) -> None:
        outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

        def requests() -> Iterator[Any]:
            while (item := outbox.get()) is not _END:
                yield item

        call = stub.Bidi(requests())

        def round_trip() -> None:
            outbox.put(request)
            next(call)

        each(count, round_trip)
        outbox.put(_END)
        for _ in call:
            pass

    return bidi if workload == "bidi" else unary


def _aio(gen_dir: Path, target: str, workload: str) -> Callable[[int], None]:
    import asgi_grpc
    import asgi_grpc.aio

    pb2, pb2_grpc = load(gen_dir, "echo_pb2", stubs_for(asgi_grpc))
    loop = asyncio.new_event_loop()

    async def connect() -> Any:
        return asgi_grpc.aio.insecure_channel(target)

    stub = pb2_grpc.EchoStub(loop.run_until_complete(connect()))
    request = pb2.EchoRequest(payload=b"x" * _SIZES[workload])

    async def unary(count: int) -> None:
        for _ in range(count):
            await stub.Unary(request)

    async def bidi(count: int) -> None:
        outbox: asyncio.Queue[Any] = asyncio.Queue()

        async def requests() -> AsyncIterator[Any]:
            while (item := await outbox.get()) is not _END:
                yield item

        call = stub.Bidi(requests())
        for _ in range(count):
            outbox.put_nowait(request)
            await call.read()
        outbox.put_nowait(_END)
        await call.code()

    run = bidi if workload == "bidi" else unary
    return lambda count: loop.run_until_complete(run(count))


def _callgrind(pid: int, *command: str) -> None:
    subprocess.run(["callgrind_control", *command, str(pid)], check=True, capture_output=True)


def _instructions(out: str) -> int:
    dump = max(Path(out).parent.glob(Path(out).name + ".*"), key=os.path.getmtime)
    totals = [line for line in dump.read_text().splitlines() if line.startswith("totals:")]
    return int(totals[0].split()[1])


def _context_switches(pid: int) -> tuple[int, int]:
    """Voluntary and involuntary context switches of every thread of ``pid`` so far (Linux;
    psutil's count is the main thread's alone). A thread that sleeps until another wakes it
    counts one voluntary switch: the server's thread hand-offs per operation."""
    voluntary = involuntary = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:  # (a thread that ended meanwhile)
            continue
        for line in lines:
            name, _, value = line.partition(":")
            if name == "voluntary_ctxt_switches":
                voluntary += int(value)
            elif name == "nonvoluntary_ctxt_switches":
                involuntary += int(value)
    return voluntary, involuntary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_cost", description=__doc__)
    parser.add_argument("--server", default="grpcio_sync")
    parser.add_argument("--client", default="asgi_grpc_sync")
    parser.add_argument("--workload", choices=tuple(_SIZES), default="unary")
    parser.add_argument("--calls", type=int, default=2000, help="operations per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callgrind", choices=("client", "server"), help="instructions, 1 round")
    parser.add_argument(
        "--out", default="callgrind.out", help="with --callgrind client: valgrind's out file"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="blocking clients: issue each operation from a pool of this many threads",
    )
    parser.add_argument(
        "--asyncio-driver",
        action="store_true",
        help="with --threads: hand each operation to the pool from an asyncio loop "
        "(run_in_executor), as the bench's driver does",
    )
    parser.add_argument(
        "--pin", action="store_true", help="this process on CPU 0, the server on CPU 1 (Linux)"
    )
    args = parser.parse_args(argv)
    pool = ThreadPoolExecutor(args.threads) if args.threads else None
    driver = asyncio.new_event_loop() if args.asyncio_driver and pool is not None else None
    with tempfile.TemporaryDirectory(prefix="asgi_grpc_sync_cost_") as tmp:
        gen_dir = compile_proto(Path(tmp) / "gen")
        out = str(Path(tmp) / "callgrind.out")
        command = [sys.executable, "-m", "bench.server", "--impl", args.server]
        command += ["--gen-dir", str(gen_dir)]
        if args.callgrind == "server":
            valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
            command = [*valgrind, f"--callgrind-out-file={out}", *command]
        server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            assert server.stdout is not None
            target = f"127.0.0.1:{json.loads(server.stdout.readline())['port']}"
            if args.pin:
                os.sched_setaffinity(server.pid, {1})
                os.sched_setaffinity(0, {0})  # (threads started from now on inherit it)
            if args.client == "asgi_grpc":
                run = _aio(gen_dir, target, args.workload)
            elif args.client == "grpcio_sync":
                import grpc

                run = _blocking(grpc, gen_dir, target, args.workload, pool, driver)
            else:
                import asgi_grpc

                run = _blocking(asgi_grpc, gen_dir, target, args.workload, pool, driver)
            run(max(200, args.calls // 5))  # warm-up
            if args.callgrind:
                pid = server.pid if args.callgrind == "server" else os.getpid()
                if args.callgrind == "client":
                    out = args.out
                _callgrind(pid, "-i", "on")
                run(args.calls)
                _callgrind(pid, "-d")
                time.sleep(1.5)  # the dump is written asynchronously
                per_op = _instructions(out) / args.calls / 1e3
                print(f"{args.callgrind} {per_op:.1f} k instructions/op")
                return 0
            process = psutil.Process(server.pid)
            client_us, server_us = [], []
            for _ in range(args.rounds):
                before, mine = process.cpu_times(), time.process_time()
                switches = _context_switches(server.pid)
                started = time.monotonic()
                run(args.calls)
                elapsed = time.monotonic() - started
                after = process.cpu_times()
                voluntary, involuntary = (
                    (now - then) / args.calls
                    for now, then in zip(_context_switches(server.pid), switches, strict=True)
                )
                client_us.append((time.process_time() - mine) / args.calls * 1e6)
                spent = after.user + after.system - before.user - before.system
                server_us.append(spent / args.calls * 1e6)
                print(
                    f"{args.server}:{args.client} {args.workload}: client {client_us[-1]:.0f}, "
                    f"server {server_us[-1]:.0f} us CPU/op, {args.calls / elapsed:,.0f} ops/s; "
                    f"server context switches/op {voluntary:.2f} voluntary, "
                    f"{involuntary:.2f} involuntary",
                    flush=True,
                )
            print(
                f"median: client {statistics.median(client_us):.0f}, "
                f"server {statistics.median(server_us):.0f} us CPU/op"
            )
        finally:
            server.terminate()
            server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
