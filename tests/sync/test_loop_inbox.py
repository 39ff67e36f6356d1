"""The loop inbox (asgi_grpc/_wake.py) does what ``call_soon_threadsafe`` did for the blocking
API: every callback posted from any thread runs on the loop, in the order each thread posted,
in the poster's context; a failing callback is reported and the others still run; a closed loop
refuses new work with RuntimeError.

Each runs on a plain loop and on the blocking API's (``idle``: its selector frees a lock while
it waits, and a post from another thread then runs on that thread, with the loop as its running
loop); the tests at the end are about the latter: what such a callback leaves the loop to do is
done, the loop's own thread and the main thread never run work of the loop while it is taken.
"""

from __future__ import annotations

import asyncio
import contextvars
import socket
import threading
import time
from typing import Any

import pytest

from asgi_grpc._sync._selector import idle_selector
from asgi_grpc._wake import loop_inbox, post_to

_who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


@pytest.fixture(params=[False, True], ids=["plain", "idle"])
def idle(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def _run_loop(idle: bool = False) -> tuple[asyncio.AbstractEventLoop, threading.Thread, Any]:
    selector = idle_selector() if idle else None
    if idle:
        assert selector is not None  # (Linux: the tests run there)
    loop = asyncio.SelectorEventLoop(selector) if selector else asyncio.new_event_loop()
    made: list[Any] = []
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        made.append(loop_inbox(loop, selector.idle if selector else None))
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


def test_posts_from_many_threads_run_in_order_in_the_posters_context(idle: bool) -> None:
    loop, thread, inbox = _run_loop(idle)
    seen: list[tuple[str, int, bool, str]] = []
    done = threading.Event()
    threads, per_thread = 8, 500

    def record(name: str, index: int) -> None:
        # On the loop's thread, or (idle) on the poster's while the loop waited.
        on_loop = asyncio.get_running_loop() is loop and (
            threading.current_thread() is thread or idle
        )
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


def test_a_failing_callback_is_reported_and_the_rest_run(idle: bool) -> None:
    loop, thread, inbox = _run_loop(idle)
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


def test_a_closed_loop_refuses_work(idle: bool) -> None:
    loop, thread, inbox = _run_loop(idle)
    _stop(loop, thread)
    with pytest.raises(RuntimeError):
        inbox.post(print, "never")


def test_deferred_work_runs_once_after_the_callbacks_of_a_wake_up(idle: bool) -> None:
    """What callbacks defer runs once (the same bound method deferred by several counts once),
    after every callback posted before the loop woke, and a failing one does not stop the rest."""
    loop, thread, inbox = _run_loop(idle)
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


# -- the blocking API's loop: posts run by the posting thread while the loop waits -----------------


def _in_thread(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` on a new thread (not the main one), its result."""
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(fn(*args)))
    worker.start()
    worker.join(10)
    return result[0]


def test_a_post_runs_on_the_posting_thread_while_the_loop_waits() -> None:
    loop, thread, inbox = _run_loop(idle=True)
    seen: list[tuple[int, object, str]] = []

    def record() -> None:
        seen.append((threading.get_ident(), asyncio.get_running_loop(), _who.get()))

    def post_from_worker() -> int:
        _who.set("worker")
        inbox.post(record)
        return threading.get_ident()

    try:
        worker = _in_thread(post_from_worker)
        assert seen == [(worker, loop, "worker")]
        # The main thread never runs the loop's work (a signal there could cut it short).
        done = threading.Event()
        inbox.post(lambda: (record(), done.set()))
        assert done.wait(10)
        assert seen[1][0] == thread.ident
    finally:
        _stop(loop, thread)


def test_what_a_post_run_here_leaves_the_loop_is_done() -> None:
    """A callback run on the posting thread may schedule work (call_soon, a task, a timer sooner
    than the loop's next one) or stop the loop: the loop, which waited, is woken for it."""
    loop, thread, inbox = _run_loop(idle=True)
    soon, task_ran, timer_fired = threading.Event(), threading.Event(), threading.Event()

    async def task() -> None:
        task_ran.set()

    def schedule() -> None:
        loop.call_soon(soon.set)
        loop.create_task(task())
        loop.call_later(0.01, timer_fired.set)

    try:
        loop.call_soon_threadsafe(loop.call_later, 3600, print)  # the loop waits an hour
        _in_thread(inbox.post, schedule)
        assert soon.wait(5)
        assert task_ran.wait(5)
        assert timer_fired.wait(5)
        _in_thread(inbox.post, loop.stop)
        thread.join(5)
        assert not thread.is_alive()
    finally:
        if thread.is_alive():
            _stop(loop, thread)
        else:
            loop.close()


def test_posts_made_by_a_post_run_here_follow_it_in_order() -> None:
    loop, thread, inbox = _run_loop(idle=True)
    order: list[tuple[str, int]] = []

    def outer() -> None:
        inbox.post(lambda: order.append(("inner", threading.get_ident())))
        order.append(("outer", threading.get_ident()))

    try:
        worker = _in_thread(lambda: (inbox.post(outer), threading.get_ident())[1])
        assert order == [("outer", worker), ("inner", worker)]
    finally:
        _stop(loop, thread)


def test_the_loop_waits_for_a_post_run_here_before_going_on() -> None:
    """While a posting thread runs the loop's work, the loop's thread, woken by a socket, does
    not run its own callbacks until that work is done."""
    loop, thread, inbox = _run_loop(idle=True)
    reader, writer = socket.socketpair()
    events: list[str] = []
    inside, release, read = threading.Event(), threading.Event(), threading.Event()

    def on_readable() -> None:
        reader.recv(1)
        events.append("loop read")
        read.set()

    def slow() -> None:
        events.append("post start")
        inside.set()
        release.wait(10)
        events.append("post end")

    try:
        loop.call_soon_threadsafe(loop.add_reader, reader.fileno(), on_readable)
        time.sleep(0.05)  # (the loop waits again)
        worker = threading.Thread(target=inbox.post, args=(slow,))
        worker.start()
        assert inside.wait(10)
        writer.send(b"x")
        assert not read.wait(0.2)
        release.set()
        assert read.wait(10)
        worker.join(10)
        assert events == ["post start", "post end", "loop read"]
    finally:
        loop.call_soon_threadsafe(loop.remove_reader, reader.fileno())
        _stop(loop, thread)
        reader.close()
        writer.close()
