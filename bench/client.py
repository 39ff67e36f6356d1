"""Client worker: ``python -m bench.client --impl NAME --target HOST:PORT --workload W ...``.

Runs one workload over one channel and reports on stdout, one JSON object a line:
``{"event": "measuring"}`` when the warm-up is over (the orchestrator then starts its CPU and
memory window), then ``{"event": "result", ...figures}`` or ``{"event": "error", "error": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import traceback
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench import workloads
from bench.clients import CLIENTS, create
from bench.clients.base import ClientDriver, PingPong
from bench.uvloop_pairs import run_loop


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class Tracked:
    """Counts operations started and finished, so that a hang can be reported precisely."""

    def __init__(self, driver: ClientDriver) -> None:
        self._driver = driver
        self.phase = "warm-up"
        self.started: Counter[str] = Counter()
        self.finished: Counter[str] = Counter()

    def progress(self) -> str:
        kinds = sorted(self.started)
        return f"{self.phase}: " + ", ".join(
            f"{kind} {self.finished[kind]} done/{self.started[kind] - self.finished[kind]} open"
            for kind in kinds
        )

    def measuring(self) -> None:
        self.phase = "measuring"
        emit("measuring")

    async def unary(self, payload: bytes) -> None:
        self.started["unary calls"] += 1
        await self._driver.unary(payload)
        self.finished["unary calls"] += 1

    async def server_stream(self, count: int, size: int) -> int:
        self.started["stream calls"] += 1
        received = await self._driver.server_stream(count, size)
        self.finished["stream calls"] += 1
        return received

    async def client_stream(self, count: int, payload: bytes) -> int:
        self.started["client-stream calls"] += 1
        sent = await self._driver.client_stream(count, payload)
        self.finished["client-stream calls"] += 1
        return sent

    @asynccontextmanager
    async def bidi(self) -> AsyncIterator[PingPong]:
        self.started["bidi calls"] += 1
        async with self._driver.bidi() as call:
            yield _TrackedPingPong(call, self)
        self.finished["bidi calls"] += 1

    async def close(self) -> None:
        await self._driver.close()


class _TrackedPingPong:
    def __init__(self, call: PingPong, tracked: Tracked) -> None:
        self._call = call
        self._tracked = tracked

    async def round_trip(self, payload: bytes) -> None:
        self._tracked.started["round trips"] += 1
        await self._call.round_trip(payload)
        self._tracked.finished["round trips"] += 1


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    driver = Tracked(create(args.impl, args.target, args.gen_dir, args.tls_dir))
    task = asyncio.current_task()
    assert task is not None
    # The orchestrator sends SIGTERM when it finds this client stuck: report how far it got.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    # A hung peer must not hang the run. The orchestrator normally finds a stuck client first
    # (and stops it with SIGTERM); this bound holds when the client runs alone.
    timeout = args.timeout or args.seconds + args.warmup + 60
    try:
        return await asyncio.wait_for(
            workloads.run(
                driver,
                args.workload,
                seconds=args.seconds,
                warmup=args.warmup,
                mark=driver.measuring,
            ),
            timeout=timeout,
        )
    except asyncio.TimeoutError:
        raise TimeoutError(
            f"workload unfinished after {timeout:g} s; {driver.progress()}"
        ) from None
    except asyncio.CancelledError:
        raise RuntimeError(f"stopped while stuck; {driver.progress()}") from None
    finally:
        await driver.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.client")
    parser.add_argument("--impl", choices=sorted(CLIENTS), required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--workload", choices=sorted(workloads.WORKLOADS), required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--gen-dir", type=Path, required=True)
    parser.add_argument("--timeout", type=float, help="give up after this many seconds")
    parser.add_argument("--tls-dir", type=Path, help="TLS, trusting bench/tls.py's CA there")
    args = parser.parse_args(argv)
    try:
        result = run_loop(args.impl, drive(args))
    except BaseException as exc:
        traceback.print_exc()
        emit("error", error=f"{type(exc).__name__}: {exc}".strip())
        return 1
    emit("result", **result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
