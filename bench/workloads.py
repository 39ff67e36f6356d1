"""The workloads: what each one measures, and the client-side loops that drive them.

The loops are written once, against the small ``ClientDriver`` interface (bench/clients/base.py),
so every client implementation is measured by exactly the same code. Each loop runs a warm-up
phase, calls ``mark()`` (the client worker then tells the orchestrator to start its CPU and memory
window), and runs the measured phase on the same channel.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.clients.base import ClientDriver

MIB = 1 << 20


@dataclass(frozen=True, kw_only=True)
class Workload:
    name: str
    title: str
    #: Unit of the headline figure (higher is better).
    unit: str
    #: What one operation is, for the per-operation CPU columns.
    op: str
    #: Whether per-call latency percentiles are reported.
    latency: bool = False
    #: Over TLS (trustme certificates made at run time): the runner is ``base``'s.
    tls: bool = False
    #: The workload whose loop this one runs (TLS variants); defaults to ``name``.
    base: str = ""

    @property
    def runner(self) -> str:
        return self.base or self.name


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            name="unary_1",
            title="Unary, 1 call in flight",
            unit="calls/s",
            op="call",
            latency=True,
        ),
        Workload(name="unary_64", title="Unary, 64 calls in flight", unit="calls/s", op="call"),
        Workload(
            name="stream",
            title="Server streaming, 10-byte messages",
            unit="msgs/s",
            op="msg",
        ),
        Workload(
            name="client_stream",
            title="Client streaming, 10-byte messages",
            unit="msgs/s",
            op="msg",
        ),
        Workload(name="bidi", title="Bidi ping-pong", unit="round trips/s", op="round trip"),
        Workload(
            name="unary_1mib",
            title="Unary, 1 MiB request and 1 MiB response",
            unit="MiB/s",
            op="call",
        ),
        Workload(
            name="unary_64_tls",
            title="Unary, 64 calls in flight, TLS",
            unit="calls/s",
            op="call",
            tls=True,
            base="unary_64",
        ),
        Workload(
            name="unary_1mib_tls",
            title="Unary, 1 MiB request and 1 MiB response, TLS",
            unit="MiB/s",
            op="call",
            tls=True,
            base="unary_1mib",
        ),
    )
}

UNARY_PAYLOAD = b"0123456789"
STREAM_MESSAGE_SIZE = 10
#: Messages per ServerStream call: large enough that call setup is a small share of the cost,
#: small enough that a call ends soon after the deadline.
STREAM_BATCH = 500
CONCURRENCY = 64
LARGE_PAYLOAD = b"\xa5" * MIB

Mark = Callable[[], None]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


async def run(
    driver: ClientDriver, workload: str, *, seconds: float, warmup: float, mark: Mark
) -> dict[str, Any]:
    """Drive ``workload`` through ``driver``; return the measured figures."""
    runner = _RUNNERS[WORKLOADS[workload].runner]
    return await runner(driver, seconds, warmup, mark)


async def _unary_1(
    driver: ClientDriver, seconds: float, warmup: float, mark: Mark
) -> dict[str, Any]:
    clock = time.perf_counter
    end = clock() + warmup
    while clock() < end:
        await driver.unary(UNARY_PAYLOAD)
    mark()
    latencies: list[float] = []
    start = clock()
    end = start + seconds
    now = start
    while now < end:
        await driver.unary(UNARY_PAYLOAD)
        after = clock()
        latencies.append(after - now)
        now = after
    elapsed = now - start
    latencies.sort()
    return {
        "ops": len(latencies),
        "elapsed": elapsed,
        "value": len(latencies) / elapsed,
        "p50_us": percentile(latencies, 50) * 1e6,
        "p99_us": percentile(latencies, 99) * 1e6,
    }


async def _unary_64(
    driver: ClientDriver, seconds: float, warmup: float, mark: Mark
) -> dict[str, Any]:
    clock = time.perf_counter

    async def worker(end: float) -> int:
        done = 0
        while clock() < end:
            await driver.unary(UNARY_PAYLOAD)
            done += 1
        return done

    async def phase(duration: float) -> tuple[int, float]:
        start = clock()
        counts = await asyncio.gather(*(worker(start + duration) for _ in range(CONCURRENCY)))
        return sum(counts), clock() - start

    await phase(warmup)
    mark()
    ops, elapsed = await phase(seconds)
    return {"ops": ops, "elapsed": elapsed, "value": ops / elapsed}


async def _stream(
    driver: ClientDriver, seconds: float, warmup: float, mark: Mark
) -> dict[str, Any]:
    clock = time.perf_counter

    async def phase(duration: float) -> tuple[int, float]:
        start = clock()
        end = start + duration
        received = 0
        while clock() < end:
            received += await driver.server_stream(STREAM_BATCH, STREAM_MESSAGE_SIZE)
        return received, clock() - start

    await phase(warmup)
    mark()
    ops, elapsed = await phase(seconds)
    return {"ops": ops, "elapsed": elapsed, "value": ops / elapsed}


async def _client_stream(
    driver: ClientDriver, seconds: float, warmup: float, mark: Mark
) -> dict[str, Any]:
    clock = time.perf_counter
    payload = b"x" * STREAM_MESSAGE_SIZE

    async def phase(duration: float) -> tuple[int, float]:
        start = clock()
        end = start + duration
        sent = 0
        while clock() < end:
            sent += await driver.client_stream(STREAM_BATCH, payload)
        return sent, clock() - start

    await phase(warmup)
    mark()
    ops, elapsed = await phase(seconds)
    return {"ops": ops, "elapsed": elapsed, "value": ops / elapsed}


async def _bidi(driver: ClientDriver, seconds: float, warmup: float, mark: Mark) -> dict[str, Any]:
    clock = time.perf_counter
    # One bidi call for warm-up and measurement: the measured window holds only round trips.
    async with driver.bidi() as call:
        end = clock() + warmup
        while clock() < end:
            await call.round_trip(UNARY_PAYLOAD)
        mark()
        ops = 0
        start = clock()
        end = start + seconds
        while clock() < end:
            await call.round_trip(UNARY_PAYLOAD)
            ops += 1
        elapsed = clock() - start
    return {"ops": ops, "elapsed": elapsed, "value": ops / elapsed}


async def _unary_1mib(
    driver: ClientDriver, seconds: float, warmup: float, mark: Mark
) -> dict[str, Any]:
    clock = time.perf_counter

    async def phase(duration: float) -> tuple[int, float]:
        start = clock()
        end = start + duration
        ops = 0
        while clock() < end:
            await driver.unary(LARGE_PAYLOAD)
            ops += 1
        return ops, clock() - start

    await phase(warmup)
    mark()
    ops, elapsed = await phase(seconds)
    # MiB/s of payload in each direction (each call carries 1 MiB up and 1 MiB down).
    return {"ops": ops, "elapsed": elapsed, "value": ops * len(LARGE_PAYLOAD) / MIB / elapsed}


_RUNNERS = {
    "unary_1": _unary_1,
    "unary_64": _unary_64,
    "stream": _stream,
    "client_stream": _client_stream,
    "bidi": _bidi,
    "unary_1mib": _unary_1mib,
}
assert {w.runner for w in WORKLOADS.values()} == _RUNNERS.keys()
