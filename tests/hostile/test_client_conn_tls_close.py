"""Issue 9 item 14: closing a TLS channel must not wait for a close_notify the peer never
sends. grpcio's server does not answer ours, and asyncio's TLS close waits for the answer: our
channel.close() took 1.00 s every time against it (the old bounded wait). grpcio's client,
the control, closes at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import grpc.aio
import pytest

import asgi_grpc
import asgi_grpc.aio
from tests.conftest import TLS


async def _echo(request: bytes, context: Any) -> bytes:
    return request


@pytest.mark.parametrize("kind", ["grpc.aio", "asgi_grpc.aio", "asgi_grpc"])
async def test_tls_close_does_not_wait_for_the_peers_close_notify(kind: str, tls: TLS) -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "hostile.Test", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    credentials = grpc.ssl_server_credentials([(tls.server_key, tls.server_chain)])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    module: Any = {"grpc.aio": grpc.aio, "asgi_grpc.aio": asgi_grpc.aio, "asgi_grpc": asgi_grpc}[
        kind
    ]
    top: Any = grpc if kind == "grpc.aio" else asgi_grpc
    channel_credentials = top.ssl_channel_credentials(root_certificates=tls.ca_pem)
    try:
        for _ in range(3):
            channel = module.secure_channel(f"localhost:{port}", channel_credentials)
            method = channel.unary_unary("/hostile.Test/Echo")
            if kind == "asgi_grpc":
                assert await asyncio.to_thread(method, b"hi", timeout=5) == b"hi"
                started = time.monotonic()
                await asyncio.to_thread(channel.close)
            else:
                assert await method(b"hi", timeout=5) == b"hi"
                started = time.monotonic()
                await channel.close()
            # Was 1.00 s; now our close_notify, a 20 ms grace, then the socket is aborted.
            assert time.monotonic() - started < 0.5
    finally:
        await server.stop(None)
