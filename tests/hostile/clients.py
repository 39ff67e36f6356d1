"""One gRPC call from each client under test, for hostile-server tests: grpcio's blocking and
aio clients (the control) and ours, reduced to (status code name, details).

Tests are plain functions: the aio clients run in a loop of their own (``asyncio.run``) while
the lying server runs in its thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

import asgi_grpc
import asgi_grpc.aio

#: grpcio's clients first: they are the control.
KINDS = ["grpc", "grpc.aio", "asgi_grpc", "asgi_grpc.aio"]
OURS = ["asgi_grpc", "asgi_grpc.aio"]

Options = Sequence[tuple[str, Any]]


@dataclass
class Outcome:
    code: str  # StatusCode name, "OK" on success
    details: str
    elapsed: float
    response: bytes | None = None


def _outcome(exc: BaseException, started: float) -> Outcome:
    if isinstance(exc, grpc.RpcError | asgi_grpc.RpcError) and hasattr(exc, "code"):
        error: Any = exc
        return Outcome(error.code().name, error.details() or "", time.monotonic() - started)
    raise exc  # a foreign exception is a failure of the test


def unary(
    kind: str,
    target: str,
    method: str = "/hostile.Test/Unary",
    *,
    timeout: float = 2.0,
    wait_for_ready: bool = False,
    options: Options = (),
) -> Outcome:
    """One unary call (request b"") with ``kind``'s client on a fresh channel."""
    started = time.monotonic()
    if kind.endswith(".aio"):
        module: Any = grpc.aio if kind == "grpc.aio" else asgi_grpc.aio

        async def call() -> Outcome:
            async with module.insecure_channel(target, options=list(options)) as channel:
                try:
                    response = await channel.unary_unary(method)(
                        b"", timeout=timeout, wait_for_ready=wait_for_ready
                    )
                except Exception as exc:
                    return _outcome(exc, started)
            return Outcome("OK", "", time.monotonic() - started, response)

        return asyncio.run(call())
    module = grpc if kind == "grpc" else asgi_grpc
    with module.insecure_channel(target, options=list(options)) as channel:
        try:
            response = channel.unary_unary(method)(
                b"", timeout=timeout, wait_for_ready=wait_for_ready
            )
        except Exception as exc:
            return _outcome(exc, started)
    return Outcome("OK", "", time.monotonic() - started, response)
