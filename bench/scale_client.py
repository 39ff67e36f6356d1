"""Load client of ``python -m bench scale``: ``python -m bench.scale_client --target HOST:PORT
--connections N --seconds S --warmup W --gen-dir DIR``.

Opens N grpclib channels (one HTTP/2 connection each; grpclib is the lightest of the pure-asyncio
clients, so the client's own cost is the same for every server), runs one unary call in flight on
each, and prints JSON lines: ``{"event": "measuring"}`` when the measured window opens, then the
result: calls, elapsed seconds, calls/s, p50 and p99 latency over that window. Every channel
connects and makes a call before the window opens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from bench.proto import load
from bench.workloads import UNARY_PAYLOAD, percentile


async def drive(
    target: str, connections: int, seconds: float, warmup: float, gen_dir: Path
) -> dict[str, float]:
    from grpclib.client import Channel

    pb2, echo_grpc = load(gen_dir, "echo_pb2", "echo_grpc")
    host, _, port = target.rpartition(":")
    channels = [Channel(host.strip("[]"), int(port)) for _ in range(connections)]
    stubs = [echo_grpc.EchoStub(channel) for channel in channels]
    request = pb2.EchoRequest(payload=UNARY_PAYLOAD)
    clock = time.perf_counter
    latencies: list[float] = []
    try:
        # Connect every channel (a few at a time: a burst of 1,000 SYNs overflows the backlog).
        gate = asyncio.Semaphore(64)

        async def connect(stub: object) -> None:
            async with gate:
                await stub.Unary(request)  # type: ignore[attr-defined]

        await asyncio.gather(*(connect(stub) for stub in stubs))
        start = clock()
        opens = start + warmup
        end = opens + seconds
        # The orchestrator reads the server's CPU from this line to the result.
        measuring: dict[str, object] = {"event": "measuring"}
        asyncio.get_running_loop().call_later(warmup, _emit, measuring)

        async def worker(stub: object) -> None:
            now = clock()
            measured = 0
            # At least one measured call per connection, even when a loaded machine makes a call
            # outlast a short window (one call longer at most).
            while now < end or not measured:
                await stub.Unary(request)  # type: ignore[attr-defined]
                after = clock()
                if now >= opens:
                    latencies.append(after - now)
                    measured += 1
                now = after

        await asyncio.gather(*(worker(stub) for stub in stubs))
        elapsed = clock() - opens
    finally:
        for channel in channels:
            channel.close()
    latencies.sort()
    return {
        "calls": len(latencies),
        "elapsed": elapsed,
        "value": len(latencies) / elapsed,
        "p50_us": percentile(latencies, 50) * 1e6,
        "p99_us": percentile(latencies, 99) * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_client")
    parser.add_argument("--target", required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--gen-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    result = asyncio.run(
        drive(args.target, args.connections, args.seconds, args.warmup, args.gen_dir)
    )
    _emit({"event": "result", **result})
    return 0


def _emit(event: dict[str, object]) -> None:
    print(json.dumps(event), flush=True)


if __name__ == "__main__":
    sys.exit(main())
