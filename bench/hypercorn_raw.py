"""Hypercorn alone, stock protocol vs asgi_grpc's ``install()``: a raw ASGI gRPC-shaped echo app
on Hypercorn in a subprocess, driven by a grpc.aio client from this process.

    python -m bench.hypercorn_raw [--seconds 5] [--rounds 2] [--variants ...]

Variants (each server is a fresh subprocess):
  stock       stock H2Protocol, grpc_config() (the "tuned" baseline: no access log, no
              date/server headers, no keep_alive_max_requests limit, same windows and frame size)
  stock-default  stock H2Protocol and Hypercorn's default Config (fails past 1000 requests)
  fixed       install() + grpc_config()
  grpcio      grpcio's own aio server (sync handlers), for reference

Workloads: ``unary64`` (64 unary calls in flight on one channel), ``unary1`` (one at a time),
``stream`` (server streaming of 10-byte messages, 4 streams at once), ``unary64k`` (64 KiB
messages, 8 in flight). Prints calls (or messages) per second and the server's CPU time per call,
interleaving variants round by round (this machine is noisy: compare medians).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

HEADER = struct.Struct(">BI")

# -- the server (run in a subprocess) ------------------------------------------------------------


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/grpc")],
            "trailers": True,
        }
    )
    if scope["path"] == "/bench/Stream":
        (count,) = struct.unpack(">I", body[5:9])
        message = HEADER.pack(0, 10) + b"0123456789"
        for _ in range(count):
            await send({"type": "http.response.body", "body": message, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    else:
        await send({"type": "http.response.body", "body": bytes(body), "more_body": False})
    await send({"type": "http.response.trailers", "headers": [(b"grpc-status", b"0")]})


def serve_grpcio() -> None:
    """The same two methods on grpcio's own server, for reference."""
    import grpc

    def unary(request: bytes, context: Any) -> bytes:
        return request

    def stream(request: bytes, context: Any) -> Any:
        (count,) = struct.unpack(">I", request[:4])
        for _ in range(count):
            yield b"0123456789"

    async def main() -> None:
        server = grpc.aio.server()
        handlers = {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench", handlers),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(port, flush=True)
        await server.wait_for_termination()

    asyncio.run(main())


def serve(variant: str) -> None:
    if variant == "grpcio":
        serve_grpcio()
        return
    from hypercorn.app_wrappers import ASGIWrapper
    from hypercorn.asyncio.run import worker_serve
    from hypercorn.config import Config

    from asgi_grpc.server._hypercorn import grpc_config
    from asgi_grpc.server._hypercorn_install import install

    if variant == "fixed":
        install()
    config = Config() if variant == "stock-default" else grpc_config()
    config.bind = ["127.0.0.1:0"]
    config.errorlog = None
    sockets = config.create_sockets()
    print(sockets.insecure_sockets[0].getsockname()[1], flush=True)
    asyncio.run(worker_serve(ASGIWrapper(echo_app), config, sockets=sockets))  # type: ignore[arg-type]


# -- the client ----------------------------------------------------------------------------------


class Server:
    def __init__(self, variant: str) -> None:
        import psutil

        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.hypercorn_raw", "--serve", variant],
            stdout=subprocess.PIPE,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.ps = psutil.Process(self.process.pid)
        # The port is printed before worker_serve listens (after lifespan startup): wait.
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.01)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


async def closed_loop(
    call: Callable[[], Awaitable[int]], in_flight: int, seconds: float
) -> tuple[int, int]:
    """Run ``in_flight`` workers calling ``call`` for ``seconds``: (units done, errors)."""
    deadline = time.monotonic() + seconds
    done = errors = 0

    async def worker() -> None:
        nonlocal done, errors
        while time.monotonic() < deadline:
            try:
                # Not `done += await call()`: that reads `done` before awaiting and loses
                # the other workers' updates.
                units = await call()
            except Exception:  # noqa: PERF203 - a failed call is counted, not fatal
                errors += 1
            else:
                done += units

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return done, errors


WORKLOADS = {
    # name: (in flight, unit)
    "unary64": (64, "calls"),
    "unary1": (1, "calls"),
    "stream": (4, "msgs"),
    "unary64k": (8, "calls"),
}


async def run_workload(server: Server, name: str, seconds: float) -> tuple[int, int, float]:
    """(units done, errors, server CPU seconds) of the measured part of one workload."""
    import grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        unary = channel.unary_unary("/bench/Unary")
        stream = channel.unary_stream("/bench/Stream")
        small, big = b"x" * 10, b"x" * 65536
        count = 2000

        async def one_small() -> int:
            await unary(small, timeout=10)
            return 1

        async def one_big() -> int:
            await unary(big, timeout=10)
            return 1

        async def one_stream() -> int:
            n = 0
            async for _ in stream(struct.pack(">I", count), timeout=30):
                n += 1
            return n

        call = {"unary64": one_small, "unary1": one_small, "stream": one_stream}.get(name, one_big)
        await closed_loop(call, WORKLOADS[name][0], 0.5)  # warm-up
        before = server.cpu()
        done, failed = await closed_loop(call, WORKLOADS[name][0], seconds)
        return done, failed, server.cpu() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default="stock,fixed")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    variants = args.variants.split(",")
    workloads = args.workloads.split(",")
    rates: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    errors: dict[tuple[str, str], int] = {}
    for _ in range(args.rounds):
        for workload in workloads:
            for variant in variants:
                server = Server(variant)
                try:
                    done, failed, used = asyncio.run(run_workload(server, workload, args.seconds))
                finally:
                    server.stop()
                key = (workload, variant)
                rates.setdefault(key, []).append(done / args.seconds)
                cpus.setdefault(key, []).append(used / max(done, 1))
                errors[key] = errors.get(key, 0) + failed
    print(f"{'workload':10} {'variant':14} {'units/s':>10} {'server us/unit':>15} {'errors':>7}")
    for workload in workloads:
        for variant in variants:
            key = (workload, variant)
            unit = WORKLOADS[workload][1]
            print(
                f"{workload:10} {variant:14} {statistics.median(rates[key]):>10,.0f} "
                f"{statistics.median(cpus[key]) * 1e6:>15,.0f} {errors[key]:>7}  ({unit})"
            )


if __name__ == "__main__":
    main()
