"""The interop server as a program, with the flags doc/interop-test-descriptions.md gives servers.

    python -m tests.interop.server --port=50051 [--use_tls=true --ca_file=ca.pem] [--impl=asgi_grpc]

Plaintext: the servicer listens behind a wire tap on 127.0.0.1:PORT, so CompressedRequest works
as in the tests. TLS: a throwaway CA (trustme) signs a certificate for localhost / 127.0.0.1;
its CA certificate is written to --ca_file for the client. Loopback only; runs until interrupted
or for --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path

import trustme

from tests.conftest import TLS

from ._protos import load_protos
from .harness import MODULES, serve


def _bool(text: str) -> bool:
    return text.lower() in ("1", "true", "yes")


def _tls(ca_file: Path) -> TLS:
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1", "::1")
    ca_file.write_bytes(ca.cert_pem.bytes())
    return TLS(
        ca_pem=ca.cert_pem.bytes(),
        server_key=server.private_key_pem.bytes(),
        server_chain=server.cert_chain_pems[0].bytes(),
        client_key=b"",
        client_chain=b"",
    )


async def main(args: argparse.Namespace, tls: TLS | None) -> None:
    async with serve(load_protos(), args.impl, tls=tls, port=args.port) as endpoint:
        print(f"interop server ({args.impl}) on {endpoint.target}", flush=True)
        await asyncio.sleep(args.seconds)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--use_tls", default="false")
    parser.add_argument("--ca_file", default="interop-ca.pem")
    parser.add_argument("--impl", choices=sorted(MODULES), default="asgi_grpc")
    parser.add_argument("--seconds", type=float, default=3600.0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        arguments = parse()
        asyncio.run(
            main(arguments, _tls(Path(arguments.ca_file)) if _bool(arguments.use_tls) else None)
        )
