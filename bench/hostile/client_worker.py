"""A client under test: ``python -m bench.hostile.client_worker --impl NAME``.

Reads one JSON command per line on stdin, ``{"target": "127.0.0.1:PORT", "timeout": 2.0,
"witness": "127.0.0.1:PORT", "parallel": 1, "method": "unary"}``, makes one unary call (or
``parallel`` concurrent ones, or with ``"method": "bidi"`` a bidi call that keeps writing) on a
fresh channel (closed afterwards), then
one witness call on another fresh channel, and answers one JSON line: the call's status code
name (or the foreign exception it raised), its details, the elapsed seconds, and the number of
log records at WARNING and above that the call left.

Implementations: ``asgi_grpc_aio`` (asgi_grpc.aio), ``asgi_grpc_sync`` (asgi_grpc's blocking
API), ``grpcio`` (grpc.aio, the control).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

METHOD = "/hostile.Target/Unary"
BIDI = "/hostile.Target/Bidi"


class Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()[:120]}")


def outcome(exc: BaseException | None, grpc: Any) -> tuple[str, str]:
    if exc is None:
        return "OK", ""
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return str(exc.code().name), str(exc.details())[:160]
    return f"foreign {type(exc).__name__}", str(exc)[:160]


async def aio_call(
    aio: Any, grpc: Any, target: str, timeout: float, payload: bytes, parallel: int = 1
) -> tuple[str, str]:
    channel = aio.insecure_channel(target)
    stub = channel.unary_unary(METHOD)

    async def one() -> tuple[str, str]:
        try:
            answer = await stub(payload, timeout=timeout)
        except Exception as exc:
            return outcome(exc, grpc)
        return ("OK", "") if answer == payload else ("WRONG_ANSWER", repr(answer)[:60])

    try:
        results = await asyncio.gather(*(one() for _ in range(parallel)))
    finally:
        try:
            await asyncio.wait_for(channel.close(), 5.0)
        except asyncio.TimeoutError:
            return "CLOSE_HUNG", "channel.close() took over 5 s"
    return combine(results)


def sync_call(
    grpc: Any, target: str, timeout: float, payload: bytes, parallel: int = 1
) -> tuple[str, str]:
    channel = grpc.insecure_channel(target)
    stub = channel.unary_unary(METHOD)

    def one() -> tuple[str, str]:
        try:
            answer = stub(payload, timeout=timeout)
        except Exception as exc:
            return outcome(exc, grpc)
        return ("OK", "") if answer == payload else ("WRONG_ANSWER", repr(answer)[:60])

    try:
        with ThreadPoolExecutor(parallel) as pool:
            results = list(pool.map(lambda _: one(), range(parallel)))
    finally:
        channel.close()
    return combine(results)


async def aio_bidi(
    aio: Any, grpc: Any, target: str, timeout: float, payload: bytes
) -> tuple[str, str]:
    """A bidi call whose client keeps writing (never done_writing) until the server ends it."""
    channel = aio.insecure_channel(target)

    async def requests() -> Any:
        for _ in range(100):
            yield payload
            await asyncio.sleep(0.05)

    try:
        async for _ in channel.stream_stream(BIDI)(requests(), timeout=timeout):
            pass
    except Exception as exc:
        return outcome(exc, grpc)
    finally:
        # Give a reset of the open half a moment to leave before the connection goes.
        await asyncio.sleep(0.3)
        await asyncio.wait_for(channel.close(), 5.0)
    return "OK", ""


def sync_bidi(grpc: Any, target: str, timeout: float, payload: bytes) -> tuple[str, str]:
    channel = grpc.insecure_channel(target)

    def requests() -> Any:
        for _ in range(100):
            yield payload
            time.sleep(0.05)

    try:
        for _ in channel.stream_stream(BIDI)(requests(), timeout=timeout):
            pass
    except Exception as exc:
        return outcome(exc, grpc)
    finally:
        time.sleep(0.3)
        channel.close()
    return "OK", ""


def combine(results: list[tuple[str, str]]) -> tuple[str, str]:
    """One call's outcome; for parallel calls on one channel, the sorted codes joined by '+'."""
    if len(results) == 1:
        return results[0]
    results.sort()
    return "+".join(c for c, _ in results), " / ".join(d for _, d in results if d)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile.client_worker")
    parser.add_argument(
        "--impl", choices=["asgi_grpc_aio", "asgi_grpc_sync", "grpcio"], required=True
    )
    args = parser.parse_args(argv)
    if args.impl == "grpcio":
        import grpc
        import grpc.aio as aio
    else:
        import asgi_grpc as grpc
        import asgi_grpc.aio as aio
    counter = Counter()
    logging.getLogger().addHandler(counter)

    def call(
        target: str, timeout: float, payload: bytes, parallel: int = 1, method: str = "unary"
    ) -> tuple[str, str]:
        if method == "bidi":
            if args.impl == "asgi_grpc_sync":
                return sync_bidi(grpc, target, timeout, payload)
            return asyncio.run(aio_bidi(aio, grpc, target, timeout, payload))
        if args.impl == "asgi_grpc_sync":
            return sync_call(grpc, target, timeout, payload, parallel)
        return asyncio.run(aio_call(aio, grpc, target, timeout, payload, parallel))

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        counter.records.clear()
        started = time.monotonic()
        parallel = command.get("parallel", 1)
        method = command.get("method", "unary")
        code, details = call(command["target"], command["timeout"], b"hostile", parallel, method)
        elapsed = time.monotonic() - started
        logged = list(counter.records)
        witness, _ = call(command["witness"], 10.0, b"witness")
        answer = {
            "code": code,
            "details": details,
            "elapsed": elapsed,
            "logged": logged[:3],
            "logged_count": len(logged),
            "witness": witness,
        }
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
