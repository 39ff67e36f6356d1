"""A blocking server's worker, blocked reading its request iterator, is freed when the call ends.

A sync client-streaming handler waits in ``next(request_iterator)`` for a message that never
comes: the client stops writing, then cancels, lets its deadline pass, or vanishes. grpcio's
blocking server then ends the iterator (``RpcError``) and the worker goes back to the pool; a
server whose worker stayed blocked would never serve another call with ``max_workers=1`` and
would hang at ``stop()``. Played against grpcio's ``grpc.server`` and asgi_grpc's blocking
server alike (grpcio's channel as the client), asserting grpcio's outcome on both.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

import asgi_grpc

# Generous: the release takes milliseconds; this only absorbs a loaded machine.
PROMPT = 5.0


class Blocked:
    """What the handler saw: when it entered next(), and what next() raised."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.outcome: queue.Queue[str] = queue.Queue()


def _handlers(module: Any, blocked: Blocked) -> Any:
    def read_all(requests: Iterator[bytes], context: Any) -> bytes:
        count = 0
        try:
            for _ in requests:
                count += 1
                blocked.entered.set()  # the next next() blocks: the client stops writing
        except module.RpcError:
            blocked.outcome.put("RpcError")
            raise
        except BaseException as exc:
            blocked.outcome.put(type(exc).__name__)
            raise
        blocked.outcome.put(f"end after {count}")
        return b"done"

    def unary(request: bytes, context: Any) -> bytes:
        return request

    return module.method_handlers_generic_handler(
        "hostile.Blocked",
        {
            "ReadAll": module.stream_unary_rpc_method_handler(read_all),
            "Unary": module.unary_unary_rpc_method_handler(unary),
        },
    )


@pytest.fixture(params=["grpcio", "asgi_grpc"])
def blocking_server(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Blocked, str]]:
    module: Any = grpc if request.param == "grpcio" else asgi_grpc
    blocked = Blocked()
    pool = ThreadPoolExecutor(max_workers=1)
    server = module.server(pool)
    server.add_generic_rpc_handlers((_handlers(module, blocked),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield server, blocked, f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait(PROMPT)
        pool.shutdown(wait=False)


def _requests(stop: threading.Event) -> Iterator[bytes]:
    yield b"one"
    stop.wait()  # then nothing more, the stream left open


def _next_call_served(target: str) -> None:
    """With max_workers=1, a new call is served only once the blocked worker is free."""
    with grpc.insecure_channel(target) as channel:
        unary = channel.unary_unary("/hostile.Blocked/Unary")
        assert unary(b"ping", timeout=PROMPT) == b"ping"


def _assert_released(server: Any, blocked: Blocked) -> None:
    """The handler blocked in the request iterator returned. asgi_grpc's iterator raises
    RpcError (the call was cancelled); grpcio's blocking server races between raising and simply
    ending the iterator, so for grpcio (the control) either way out counts."""
    outcome = blocked.outcome.get(timeout=PROMPT)
    if server.__module__.startswith("grpc."):
        assert outcome == "RpcError" or outcome.startswith("end after"), outcome
    else:
        assert outcome == "RpcError"


@pytest.mark.parametrize("ending", ["cancel", "deadline"])
def test_worker_freed_when_call_ends(
    blocking_server: tuple[Any, Blocked, str], ending: str
) -> None:
    server, blocked, target = blocking_server
    stop = threading.Event()
    try:
        with grpc.insecure_channel(target) as channel:
            read_all = channel.stream_unary("/hostile.Blocked/ReadAll")
            if ending == "cancel":
                future = read_all.future(_requests(stop))
                assert blocked.entered.wait(PROMPT)
                time.sleep(0.1)  # the worker is now blocked in next()
                assert future.cancel()
                with pytest.raises(grpc.FutureCancelledError):
                    future.result(timeout=PROMPT)
            else:
                future = read_all.future(_requests(stop), timeout=1.0)
                assert blocked.entered.wait(PROMPT)
                with pytest.raises(grpc.RpcError) as info:
                    future.result(timeout=PROMPT)
                assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        # The handler's iterator ended with RpcError, so the handler returned and its worker is
        # free (see _assert_released).
        _assert_released(server, blocked)
        _next_call_served(target)
        started = time.monotonic()
        server.stop(None).wait(PROMPT)
        assert time.monotonic() - started < PROMPT
    finally:
        stop.set()


def test_worker_freed_when_client_vanishes(blocking_server: tuple[Any, Blocked, str]) -> None:
    """The client's channel is closed mid-stream: no more requests, no cancel from the call."""
    server, blocked, target = blocking_server
    stop = threading.Event()
    try:
        channel = grpc.insecure_channel(target)
        read_all = channel.stream_unary("/hostile.Blocked/ReadAll")
        future = read_all.future(_requests(stop))
        assert blocked.entered.wait(PROMPT)
        time.sleep(0.1)
        channel.close()  # grpcio cancels its calls and closes the connection
        with pytest.raises(grpc.RpcError):
            future.result(timeout=PROMPT)
        _assert_released(server, blocked)
        _next_call_served(target)
    finally:
        stop.set()
