"""Client worker: ``python -m bench.client --impl NAME --target HOST:PORT --workload W ...``.

Runs one workload over one channel and reports on stdout, one JSON object a line:
``{"event": "measuring"}`` when the warm-up is over (the orchestrator then starts its CPU and
memory window), then ``{"event": "result", ...figures}`` or ``{"event": "error", "error": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from bench import workloads
from bench.clients import CLIENTS, create


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    driver = create(args.impl, args.target, args.gen_dir)
    try:
        return await asyncio.wait_for(
            workloads.run(
                driver,
                args.workload,
                seconds=args.seconds,
                warmup=args.warmup,
                mark=lambda: emit("measuring"),
            ),
            # A hung peer must not hang the run: generous, but bounded.
            timeout=args.seconds + args.warmup + 60,
        )
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
    args = parser.parse_args(argv)
    try:
        result = asyncio.run(drive(args))
    except BaseException as exc:
        traceback.print_exc()
        emit("error", error=f"{type(exc).__name__}: {exc}".strip())
        return 1
    emit("result", **result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
