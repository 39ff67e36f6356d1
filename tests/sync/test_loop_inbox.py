"""The loop inbox (asgi_grpc/_wake.py) does what ``call_soon_threadsafe`` did for the blocking
API: every callback posted from any thread runs on the loop, in the order each thread posted,
in the poster's context; a failing callback is reported and the others still run; a closed loop
refuses new work with RuntimeError."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest

from asgi_grpc._wake import loop_inbox, post_to

_who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def _run_loop() -> tuple[asyncio.AbstractEventLoop, threading.Thread, Any]:
    loop = asyncio.new_event_loop()
    made: list[Any] = []
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        made.append(loop_inbox(loop))
        loop.call_soon(ready.set)
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    return loop, thread, made[0]


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_posts_from_many_threads_run_in_order_in_the_posters_context() -> None:
    loop, thread, inbox = _run_loop()
    seen: list[tuple[str, int, bool, str]] = []
    done = threading.Event()
    threads, per_thread = 8, 500

    def record(name: str, index: int) -> None:
        on_loop = threading.current_thread() is thread
        seen.append((name, index, on_loop, _who.get()))
        if len(seen) == threads * per_thread:
            done.set()

    def poster(name: str) -> None:
        _who.set(name)
        post = post_to(loop)
        for index in range(per_thread):
            post(record, name, index)

    try:
        workers = [threading.Thread(target=poster, args=(f"t{n}",)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(10)
        assert done.wait(10)
        assert all(on_loop for _, _, on_loop, _ in seen)
        assert all(name == who for name, _, _, who in seen)
        for n in range(threads):
            assert [i for name, i, _, _ in seen if name == f"t{n}"] == list(range(per_thread))
        assert post_to(loop) == inbox.post
    finally:
        _stop(loop, thread)


def test_a_failing_callback_is_reported_and_the_rest_run() -> None:
    loop, thread, inbox = _run_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    ran = threading.Event()

    def fail() -> None:
        raise ValueError("boom")

    try:
        inbox.post(fail)
        inbox.post(ran.set)
        assert ran.wait(10)
        assert len(reported) == 1
        assert isinstance(reported[0]["exception"], ValueError)
    finally:
        _stop(loop, thread)


def test_a_closed_loop_refuses_work() -> None:
    loop, thread, inbox = _run_loop()
    _stop(loop, thread)
    with pytest.raises(RuntimeError):
        inbox.post(print, "never")


def test_deferred_work_runs_once_after_the_callbacks_of_a_wake_up() -> None:
    """What callbacks defer runs once (the same bound method deferred by several counts once),
    after every callback posted before the loop woke, and a failing one does not stop the rest."""
    loop, thread, inbox = _run_loop()
    order: list[str] = []
    done = threading.Event()
    gate = threading.Event()

    class Writer:
        def flush(self) -> None:
            order.append("flush")

    writer = Writer()

    def handoff(name: str) -> None:
        order.append(name)
        inbox.defer(writer.flush)  # a new bound method each time, equal to the others

    def failing() -> None:
        raise RuntimeError("deferred work failed")

    def last() -> None:
        order.append("last deferred")
        done.set()

    try:
        loop.call_soon_threadsafe(loop.set_exception_handler, lambda _loop, _context: None)
        loop.call_soon_threadsafe(gate.wait, 10)  # holds the loop while everything is posted
        for name in ("a", "b", "c"):
            inbox.post(handoff, name)
        inbox.post(inbox.defer, failing)
        inbox.post(inbox.defer, last)
        gate.set()
        assert done.wait(10)
        assert order == ["a", "b", "c", "flush", "last deferred"]
    finally:
        _stop(loop, thread)
