"""The blocking API's selector (asgi_grpc/_sync/_selector.py): its ``idle`` lock is free exactly
while a thread other than the main one waits in ``select()``, and taken again before
``select()`` returns. This also fails loudly if ``selectors.EpollSelector`` stops keeping its
epoll object in ``_selector`` (the wrapper would then never release the lock)."""

from __future__ import annotations

import selectors
import socket
import sys
import threading

import pytest

from asgi_grpc._sync._selector import idle_selector

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="epoll: Linux only")


def test_the_lock_is_free_only_while_select_waits() -> None:
    selector = idle_selector()
    assert selector is not None
    idle = selector.idle
    reader, writer = socket.socketpair()
    selector.register(reader, selectors.EVENT_READ, "data")
    returned: list[list[tuple[selectors.SelectorKey, int]]] = []
    done = threading.Event()

    def wait() -> None:
        returned.append(selector.select(10))
        done.set()

    try:
        assert not idle.acquire(False), "held while nobody waits"
        assert selector.select(0) == []  # (a wait of no time does not free it)
        assert not idle.acquire(False)
        waiter = threading.Thread(target=wait)
        waiter.start()
        assert idle.acquire(timeout=10), "free while the selector waits"
        writer.send(b"x")
        assert not done.wait(0.2), "select() returned while another thread held the lock"
        idle.release()
        assert done.wait(10)
        waiter.join(10)
        [[(key, events)]] = returned
        assert key.data == "data"
        assert events == selectors.EVENT_READ
        assert not idle.acquire(False), "taken again when select() returns"
    finally:
        selector.close()
        reader.close()
        writer.close()


def test_the_main_thread_keeps_the_lock_while_it_waits() -> None:
    """A caller leading the loop on the main thread (asgi_grpc/_sync/_runner.py) does not free
    it: a signal handler raising there would leave it with nobody."""
    assert threading.current_thread() is threading.main_thread()
    selector = idle_selector()
    assert selector is not None
    seen: list[bool] = []
    timer = threading.Timer(0.05, lambda: seen.append(selector.idle.acquire(False)))
    try:
        timer.start()
        assert selector.select(0.3) == []
        timer.join(10)
        assert seen == [False]
    finally:
        selector.close()
