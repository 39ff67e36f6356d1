"""Retries against servers that fail below gRPC: a stream reset or a connection dropped before
the response headers is retried by the service config's retryPolicy (its status, from the
reset's error code or the lost connection, is retryable); after the headers it is not (the call
has committed). grpcio's clients run every case first, as the control.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import grpc.aio
import h2.errors
import h2.events
import pytest

import asgi_grpc
import asgi_grpc.aio

from .clients import KINDS
from .lying_server import LyingConnection, LyingServer, Script, lying_server, serve_echo

METHOD = "/hostile.Test/Unary"
OK_HEADERS = [(b":status", b"200"), (b"content-type", b"application/grpc")]
CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": "hostile.Test"}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.01s",
                    "backoffMultiplier": 1,
                    "retryableStatusCodes": ["INTERNAL", "UNAVAILABLE"],
                },
            }
        ]
    }
)


def _one_fails(how: str, index: int = 0) -> Script:
    """Answer every request honestly, except the ``index``-th, which fails ``how``."""
    failing: list[tuple[int, int]] = []  # (connection, stream id) of the failing request
    count = [0]

    def on_event(conn: LyingConnection, event: h2.events.Event) -> None:
        stream_id = getattr(event, "stream_id", 0)
        if isinstance(event, h2.events.RequestReceived):
            count[0] += 1
            if count[0] - 1 == index:
                failing.append((id(conn), stream_id))
                if how == "reset":
                    conn.h2.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                elif how == "goaway":
                    code = h2.errors.ErrorCodes.NO_ERROR
                    conn.h2.close_connection(code, last_stream_id=stream_id)
                    conn.close()
                elif how == "headers-then-reset":
                    conn.h2.send_headers(stream_id, OK_HEADERS)
                    conn.h2.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
                conn.flush()
                return
        if (id(conn), stream_id) not in failing:
            serve_echo(conn, event)

    return Script(on_event=on_event)


def _calls(kind: str, target: str, count: int) -> list[str]:
    """``count`` unary calls on one channel of ``kind``'s client: their status code names."""
    options = [("grpc.service_config", CONFIG)]
    codes: list[str] = []
    if kind.endswith(".aio"):
        module: Any = grpc.aio if kind == "grpc.aio" else asgi_grpc.aio

        async def run() -> None:
            async with module.insecure_channel(target, options=options) as channel:
                for _ in range(count):
                    try:
                        await channel.unary_unary(METHOD)(b"", timeout=5)
                        codes.append("OK")
                    except module.AioRpcError as exc:  # noqa: PERF203 - a test, not a hot loop
                        codes.append(exc.code().name)

        asyncio.run(run())
        return codes
    module = grpc if kind == "grpc" else asgi_grpc
    with module.insecure_channel(target, options=options) as channel:
        for _ in range(count):
            try:
                channel.unary_unary(METHOD)(b"", timeout=5)
                codes.append("OK")
            except module.RpcError as exc:  # noqa: PERF203 - a test, not a hot loop
                codes.append(exc.code().name)
    return codes


def _attempts(server: LyingServer) -> list[bytes | None]:
    """grpc-previous-rpc-attempts of every request the server received, in order."""
    return [
        dict(headers).get(b"grpc-previous-rpc-attempts")
        for conn in server.connections
        for _, headers in sorted(conn.requests.items())
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_reset_before_headers_is_retried(kind: str) -> None:
    """RST_STREAM INTERNAL_ERROR (INTERNAL, retryable here) before any response."""
    with lying_server(_one_fails("reset")) as server:
        assert _calls(kind, server.target, 1) == ["OK"]
        assert _attempts(server) == [None, b"1"]


@pytest.mark.parametrize("kind", KINDS)
def test_dropped_connection_is_retried(kind: str) -> None:
    """The server drops its connection (GOAWAY naming the stream as processed, then close)
    under the second call: UNAVAILABLE, retried on a new connection.

    The first call proves the connection: a fresh connection that the server closes before
    answering anything counts with our pool as a failed connect, and the retries would then
    wait for its reconnect backoff (about a second), where grpcio reconnects at once."""
    with lying_server(_one_fails("goaway", index=1)) as server:
        assert _calls(kind, server.target, 2) == ["OK", "OK"]
        assert _attempts(server) == [None, None, b"1"]
        assert server.accepted == 2


@pytest.mark.parametrize("kind", KINDS)
def test_reset_after_headers_is_not_retried(kind: str) -> None:
    with lying_server(_one_fails("headers-then-reset")) as server:
        assert _calls(kind, server.target, 1) == ["INTERNAL"]
        assert _attempts(server) == [None]
