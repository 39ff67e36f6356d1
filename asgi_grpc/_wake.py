"""Waking a thread that waits, without holding the GIL through the wake-up.

A ``threading`` lock's ``release()`` (under every Condition, Event and queue) wakes the waiting
thread while the waker holds the GIL. On a busy machine Linux often runs the woken thread at
once, on the waker's core: the waker is then off the core holding the GIL the woken thread
needs, and both wait for the scheduler to come back to it. Profiles of asgi_grpc's blocking API
showed exactly that as the costliest line of its event-loop thread (``Condition.notify`` after
a client call; ``ThreadPoolExecutor.submit``'s queue put for a server handler: a third of the
loop thread's GIL time at one call in flight). An eventfd written with ``os.eventfd_write``
releases the GIL around the system call, so the woken thread can run at once.

Each thread has one waker (:func:`thread_waker`); a wait may end early (a wake-up meant for an
earlier wait of the same thread): waiters check what they wait for and wait again.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading


class _EventfdWaker:
    """Wakes one thread (the one it belongs to: :func:`thread_waker`) through an eventfd."""

    __slots__ = ("_fd", "_poll", "pid")

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)  # type: ignore[attr-defined,unused-ignore]
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # (never at a closed fd: the waiter holds it)
            os.eventfd_write(self._fd, 1)  # type: ignore[attr-defined,unused-ignore]

    def sleep(self, timeout: float) -> None:
        """Until woken or ``timeout`` passes; may return early (callers check their predicate)."""
        if self._poll.poll(timeout * 1000.0):
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self._fd)  # type: ignore[attr-defined,unused-ignore]

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            os.close(self._fd)


class _LockWaker:
    """Where there is no eventfd: a lock used as a binary semaphore."""

    __slots__ = ("_lock", "pid")

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._lock.acquire()

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # already woken
            self._lock.release()

    def sleep(self, timeout: float) -> None:
        self._lock.acquire(timeout=max(timeout, 0.0))


Waker = _EventfdWaker | _LockWaker
_new_waker = _EventfdWaker if hasattr(os, "eventfd") else _LockWaker
_local = threading.local()


def thread_waker() -> Waker:
    """This thread's waker (made on first use, again in a forked child; closed with the
    thread)."""
    waker: Waker | None = getattr(_local, "waker", None)
    if waker is None or waker.pid != os.getpid():
        waker = _local.waker = _new_waker()
    return waker
