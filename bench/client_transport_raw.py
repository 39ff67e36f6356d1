"""Micro-benchmark of the client transport alone: our pool vs grpclib's client.

    python -m bench.client_transport_raw [--seconds 5] [--concurrency 64] [--rounds 2]

A grpcio aio echo server runs in a subprocess (bench/server.py). Each client runs in this
process, in turns (interleaved rounds, since the machine is noisy): 64 unary calls in flight
for a few seconds, then server streaming (one call, many 10-byte messages). Our side does a
whole gRPC call by hand with the sans-IO core (frame, request_headers, MessageReader,
parse_trailers) so the numbers are the floor under the future Channel. Client CPU is this
process's CPU time per call (the server's CPU is in the other process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from asgi_grpc._core import (  # noqa: E402
    MessageReader,
    StatusCode,
    frame,
    parse_trailers,
    request_headers,
)
from asgi_grpc.client._address import TCPAddress  # noqa: E402
from asgi_grpc.client._pool import ConnectionPool  # noqa: E402
from bench.proto import compile_proto, load  # noqa: E402

UNARY = "/asgi_grpc.bench.Echo/Unary"
STREAM = "/asgi_grpc.bench.Echo/ServerStream"


def start_server(gen_dir: Path) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.server", "--impl", "grpcio", "--gen-dir", str(gen_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise RuntimeError("the grpcio bench server did not start")
    return process, int(json.loads(line)["port"])


class Ours:
    name = "asgi_grpc pool"

    def __init__(self, port: int, pb2: Any) -> None:
        self.pb2 = pb2
        self.pool = ConnectionPool([TCPAddress("127.0.0.1", port)], authority=f"127.0.0.1:{port}")

    async def _call(self, path: str, request: Any) -> list[bytes]:
        headers = request_headers(
            timeout=None, encoding="identity", metadata=None, user_agent=b"asgi-grpc-bench"
        )
        stream = await self.pool.request(path, headers, frame(request.SerializeToString()))
        try:
            reader = MessageReader()
            messages: list[bytes] = []
            read = stream.read
            while chunk := await read():
                messages += [payload for _, payload in reader.feed(chunk)]
            reader.close()
            status = parse_trailers(await stream.trailers())
            if status.code is not StatusCode.OK:
                raise RuntimeError(f"call failed: {status}")
            return messages
        finally:
            stream.close()

    async def unary(self, payload: bytes) -> None:
        (message,) = await self._call(UNARY, self.pb2.EchoRequest(payload=payload))
        assert len(self.pb2.EchoResponse.FromString(message).payload) == len(payload)

    async def server_stream(self, count: int, size: int) -> int:
        request = self.pb2.EchoRequest(count=count, response_size=size)
        messages = await self._call(STREAM, request)
        for message in messages:
            self.pb2.EchoResponse.FromString(message)
        return len(messages)

    async def close(self) -> None:
        await self.pool.aclose()


class Grpclib:
    name = "grpclib client"

    def __init__(self, port: int, pb2: Any, echo_grpc: Any) -> None:
        from grpclib.client import Channel

        self.pb2 = pb2
        self.channel = Channel("127.0.0.1", port)
        self.stub = echo_grpc.EchoStub(self.channel)

    async def unary(self, payload: bytes) -> None:
        response = await self.stub.Unary(self.pb2.EchoRequest(payload=payload))
        assert len(response.payload) == len(payload)

    async def server_stream(self, count: int, size: int) -> int:
        received = 0
        async with self.stub.ServerStream.open() as stream:
            await stream.send_message(self.pb2.EchoRequest(count=count, response_size=size))
            async for _ in stream:
                received += 1
        return received

    async def close(self) -> None:
        self.channel.close()


async def run_unary(client: Any, seconds: float, concurrency: int) -> tuple[float, float]:
    """calls/s and client CPU us per call."""
    await asyncio.gather(*(client.unary(b"x" * 10) for _ in range(concurrency)))  # warm up
    stop = time.perf_counter() + seconds
    count = 0

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await client.unary(b"x" * 10)
            count += 1

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    return count / wall, cpu / count * 1e6


async def run_stream(client: Any, seconds: float) -> tuple[float, float]:
    """messages/s and client CPU us per message (10-byte messages, 10,000 per call)."""
    await client.server_stream(1000, 10)
    stop = time.perf_counter() + seconds
    count = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    while time.perf_counter() < stop:
        count += await client.server_stream(10_000, 10)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    return count / wall, cpu / count * 1e6


async def measure(
    make: Callable[[], Any], seconds: float, concurrency: int
) -> dict[str, tuple[float, float]]:
    client = make()
    try:
        return {
            "unary": await run_unary(client, seconds, concurrency),
            "stream": await run_stream(client, seconds),
        }
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.client_transport_raw")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    gen_dir = compile_proto()
    pb2, echo_grpc = load(gen_dir, "echo_pb2", "echo_grpc")
    server, port = start_server(gen_dir)
    makers: dict[str, Callable[[], Any]] = {
        Ours.name: lambda: Ours(port, pb2),
        Grpclib.name: lambda: Grpclib(port, pb2, echo_grpc),
    }
    results: dict[str, dict[str, list[tuple[float, float]]]] = {
        name: {"unary": [], "stream": []} for name in makers
    }
    try:
        for _ in range(args.rounds):
            for name, make in makers.items():
                run: Awaitable[dict[str, tuple[float, float]]] = measure(
                    make, args.seconds, args.concurrency
                )
                for kind, value in asyncio.run(run).items():  # type: ignore[arg-type]
                    results[name][kind].append(value)
    finally:
        server.terminate()
        server.wait(10)

    print(f"grpcio aio server (pid {server.pid}), client in pid {os.getpid()}, medians:")
    for name, kinds in results.items():
        unary_rate = statistics.median(r for r, _ in kinds["unary"])
        unary_cpu = statistics.median(c for _, c in kinds["unary"])
        stream_rate = statistics.median(r for r, _ in kinds["stream"])
        stream_cpu = statistics.median(c for _, c in kinds["stream"])
        print(
            f"  {name:16} unary x{args.concurrency}: {unary_rate:8.0f} calls/s "
            f"{unary_cpu:6.0f} us/call | server stream: {stream_rate:8.0f} msgs/s "
            f"{stream_cpu:6.1f} us/msg"
        )

    def rate(name: str, kind: str) -> float:
        return statistics.median(r for r, _ in results[name][kind])

    print(
        "  ratio ours/grpclib:"
        f" unary {rate(Ours.name, 'unary') / rate(Grpclib.name, 'unary'):.2f}x,"
        f" stream {rate(Ours.name, 'stream') / rate(Grpclib.name, 'stream'):.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
