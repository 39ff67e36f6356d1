"""The interop client as a program, with the flags doc/interop-test-descriptions.md gives clients.

    python -m tests.interop.client --server_port=50051 --test_case=large_unary,ping_pong
        [--server_host=127.0.0.1] [--use_tls=true --ca_file=ca.pem --server_host_override=localhost]
        [--impl=grpcio]

--test_case takes one case, a comma-separated list, or "all" (the official cases) / "extra".
Against a remote server there is no wire tap, so the cases' wire checks are skipped. Exits 1 if
any case failed, printing each result.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from pathlib import Path

from ._protos import load_protos
from .cases import ALL_CASES, CASES, EXTRA_CASES
from .harness import MODULES, library


def _bool(text: str) -> bool:
    return text.lower() in ("1", "true", "yes")


def _names(test_case: str) -> list[str]:
    if test_case == "all":
        return list(CASES)
    if test_case == "extra":
        return list(EXTRA_CASES)
    names = test_case.split(",")
    unknown = [name for name in names if name not in ALL_CASES]
    if unknown:
        raise SystemExit(f"unknown test case(s) {unknown}; known: {sorted(ALL_CASES)}")
    return names


async def main(args: argparse.Namespace, root_certificates: bytes | None) -> int:
    protos = load_protos()
    grpc_module = library(args.impl)
    target = f"{args.server_host}:{args.server_port}"
    failed = 0
    for name in _names(args.test_case):
        if _bool(args.use_tls):
            credentials = grpc_module.ssl_channel_credentials(root_certificates=root_certificates)
            options = []
            if args.server_host_override:
                options.append(("grpc.ssl_target_name_override", args.server_host_override))
            channel = grpc_module.aio.secure_channel(target, credentials, options=options)
        else:
            channel = grpc_module.aio.insecure_channel(target)
        async with channel:
            try:
                await asyncio.wait_for(ALL_CASES[name](protos, channel, grpc_module), 30)
            except Exception:
                failed += 1
                print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)
            else:
                print(f"ok   {name}", flush=True)
    return 1 if failed else 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server_host", default="127.0.0.1")
    parser.add_argument("--server_port", type=int, required=True)
    parser.add_argument("--server_host_override", default="")
    parser.add_argument("--test_case", default="all")
    parser.add_argument("--use_tls", default="false")
    parser.add_argument("--ca_file", default="")
    parser.add_argument("--impl", choices=sorted(MODULES), default="grpcio")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    ca = Path(arguments.ca_file).read_bytes() if arguments.ca_file else None
    sys.exit(asyncio.run(main(arguments, ca)))
