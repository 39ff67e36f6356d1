"""Client cost of 1 MiB unary calls under callgrind: ``python -m bench.client_cost``.

Starts ``python -m bench.server --impl SERVER`` (grpcio by default), then runs the asgi_grpc client
in a fresh process under ``valgrind --tool=callgrind`` with instrumentation off until the
measured calls (``--calls`` 1 MiB unary calls, one at a time, after a warm-up), and prints the
client's instructions per call. On large messages these are mostly ``memcpy``, about one
instruction per byte copied, so the figure counts the copies of the payload (and, with
``--tls``, OpenSSL's work), the same on an idle or a loaded machine. The server side of the same
workload is ``python -m bench.server_cost --workload unary_1mib --callgrind``.

To compare two checkouts, run from outside both trees with ``PYTHONPATH=<tree>:<this repo>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.proto import compile_proto
from bench.tls import make_certs

_WARMUP = 5


def _callgrind(*command: str) -> None:
    """callgrind_control on this process (which runs under valgrind)."""
    control = ["callgrind_control", *command, str(os.getpid())]
    subprocess.run(control, check=True, capture_output=True)


async def _calls(port: int, gen_dir: Path, calls: int, tls_dir: Path | None) -> None:
    """The measured process: warm up, switch callgrind on, make ``calls`` calls, dump."""
    sys.path.insert(0, str(gen_dir))
    import echo_pb2  # type: ignore[import-not-found]
    import echo_pb2_asgi_grpc  # type: ignore[import-not-found]

    import asgi_grpc
    import asgi_grpc.aio

    if tls_dir is not None:
        credentials = asgi_grpc.ssl_channel_credentials((tls_dir / "ca.pem").read_bytes())
        channel = asgi_grpc.aio.secure_channel(f"localhost:{port}", credentials)
    else:
        channel = asgi_grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = echo_pb2_asgi_grpc.EchoStub(channel)
    request = echo_pb2.EchoRequest(payload=b"x" * (1024 * 1024))
    for _ in range(_WARMUP):
        await stub.Unary(request)
    _callgrind("-i", "on")  # (blocking on purpose: nothing else runs meanwhile)
    for _ in range(calls):
        await stub.Unary(request)
    _callgrind("-d")
    await channel.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.client_cost", description=__doc__)
    parser.add_argument("--server", default="grpcio")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("PORT", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        port, tmp = int(args.child[0]), Path(args.child[1])
        tls_dir = tmp / "tls" if args.tls else None
        asyncio.run(_calls(port, tmp / "gen", args.calls, tls_dir))
        return 0
    with tempfile.TemporaryDirectory(prefix="asgi_grpc_client_cost_") as name:
        tmp = Path(name)
        gen_dir = compile_proto(tmp / "gen")
        command = [sys.executable, "-m", "bench.server", "--impl", args.server]
        command += ["--gen-dir", str(gen_dir)]
        if args.tls:
            command += ["--tls-dir", str(make_certs(tmp / "tls"))]
        server = subprocess.Popen(command, stdout=subprocess.PIPE)
        try:
            assert server.stdout is not None
            port = json.loads(server.stdout.readline())["port"]
            out = tmp / "callgrind.out"
            child = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
            child += [f"--callgrind-out-file={out}", sys.executable, "-m", "bench.client_cost"]
            child += ["--calls", str(args.calls), "--child", str(port), str(tmp)]
            child += ["--tls"] if args.tls else []
            subprocess.run(child, check=True, capture_output=True)
        finally:
            server.terminate()
            server.wait(30)
        dump = max(tmp.glob("callgrind.out.*"), key=os.path.getmtime)
        totals = [line for line in dump.read_text().splitlines() if line.startswith("totals:")]
        per_call = int(totals[0].split()[1]) / args.calls / 1e3
    print(f"asgi_grpc client <- {args.server}{' TLS' if args.tls else ''}: ", end="")
    print(f"{per_call:,.0f} k instructions per 1 MiB call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
