"""A blocking server runs its handlers on the thread pool it was given, through runners that
stay on a pool thread briefly between handlers (asgi_grpc/server/_sync_pool.py): the pool must
still bound the handlers running at once, and a runner must give its thread back. Each scenario
runs against grpcio and asgi_grpc (the ``grpc`` fixture)."""

from __future__ import annotations

import threading
import time
from concurrent import futures
from types import ModuleType
from typing import Any

from .conftest import method, serve_blocking


def _serve(grpc: ModuleType, pool: futures.ThreadPoolExecutor, fn: Any) -> tuple[Any, str]:
    return serve_blocking(grpc, {"Call": grpc.unary_unary_rpc_method_handler(fn)}, pool)


def test_no_more_handlers_at_once_than_pool_threads(grpc: ModuleType) -> None:
    lock = threading.Lock()
    running = [0, 0]  # now, most at once
    threads: set[int] = set()

    def slow(request: bytes, context: Any) -> bytes:
        with lock:
            running[0] += 1
            running[1] = max(running)
            threads.add(threading.get_ident())
        time.sleep(0.1)
        with lock:
            running[0] -= 1
        return request

    pool = futures.ThreadPoolExecutor(2)
    server, target = _serve(grpc, pool, slow)
    try:
        with grpc.insecure_channel(target) as channel:
            call = channel.unary_unary(method("Call"))
            calls = [call.future(str(i).encode()) for i in range(8)]
            assert [c.result(timeout=30) for c in calls] == [str(i).encode() for i in range(8)]
    finally:
        server.stop(0)
    assert running[1] == 2
    assert len(threads) == 2


def test_the_pool_serves_other_work_between_calls(grpc: ModuleType) -> None:
    """A pool of one thread, shared: work submitted by the application after a call runs
    (the runner gives the thread back), and calls still run after that work."""
    pool = futures.ThreadPoolExecutor(1)
    server, target = _serve(grpc, pool, lambda request, context: request)
    try:
        with grpc.insecure_channel(target) as channel:
            call = channel.unary_unary(method("Call"))
            for round_ in range(3):
                assert call(b"x", timeout=30) == b"x"
                assert pool.submit(abs, -round_).result(timeout=30) == round_
    finally:
        server.stop(0)
        pool.shutdown(wait=True)
