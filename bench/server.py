"""Server worker: ``python -m bench.server --impl NAME --gen-dir DIR``.

Serves the echo service on 127.0.0.1 port 0, prints ``{"port": N}`` on stdout once it accepts
calls, and stops on SIGTERM or SIGINT. Started by the orchestrator (bench/run.py), one process per
measurement, so each server's CPU time and memory are its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from bench.servers import SERVERS, create
from bench.uvloop_pairs import run_loop


async def serve(impl: str, gen_dir: Path, host: str, tls: Path | None = None) -> None:
    server = create(impl, gen_dir)
    port = await server.start(host, tls)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    print(json.dumps({"port": port}), flush=True)
    await server.serve_until_stopped()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.server")
    parser.add_argument("--impl", choices=sorted(SERVERS), required=True)
    parser.add_argument("--gen-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tls-dir", type=Path, help="serve TLS with bench/tls.py's files here")
    args = parser.parse_args(argv)
    run_loop(args.impl, serve(args.impl, args.gen_dir, args.host, args.tls_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
