"""The blocking API's selector: says when its event loop waits, so other threads may run its work.

A blocking server's round trip crossed its threads twice: the loop read the request and woke the
handler's thread; the handler's thread handed its response to the loop (an eventfd write, a
wake-up through the scheduler, a loop pass) for the loop to write it. grpcio's handler thread
writes its response itself. Here it may too, when nothing else touches the loop's state: while
the loop waits in ``epoll_wait``. :class:`IdleSelector` holds :attr:`IdleSelector.idle`, a
lock that is free exactly while the loop's thread waits in the system call; a thread that takes
it may run loop callbacks itself (``asgi_grpc._wake.LoopInbox.post``) and the loop, woken
meanwhile, waits for the lock before it goes on. Everything else the loop runs (callbacks,
timers, the selector's own bookkeeping after the wait) holds the lock, whoever runs the loop,
and so does a parked loop that nobody runs.

Not released:

- for a wait of no time (the loop has work ready): nothing to gain, two lock operations saved;
- on the main thread (a caller leading the loop, ``_runner``): a signal handler raising there
  would leave the lock with nobody, or the loop running without it.

Built on ``selectors.EpollSelector``, whose ``_selector`` attribute (the ``select.epoll``
object) is replaced by :class:`_IdleEpoll`; ``tests/sync/test_idle_selector.py`` fails if the
standard library stops working that way. Linux only (epoll): elsewhere the loop keeps the default
selector and every hand-off goes through the inbox.
"""

from __future__ import annotations

import selectors
import sys
import threading
from typing import Any

__all__ = ["idle_selector"]

_get_ident = threading.get_ident
_MAIN_THREAD_ID = threading.main_thread().ident


class _IdleEpoll:
    """A ``select.epoll`` whose ``poll`` frees ``lock`` while it waits."""

    __slots__ = ("_epoll", "_lock", "close", "fileno", "modify", "register", "unregister")

    def __init__(self, epoll: Any, lock: threading.Lock) -> None:
        self._epoll = epoll
        self._lock = lock
        self.close = epoll.close
        self.fileno = epoll.fileno
        self.modify = epoll.modify
        self.register = epoll.register
        self.unregister = epoll.unregister

    def poll(self, timeout: float = -1, maxevents: int = -1) -> list[tuple[int, int]]:
        if timeout == 0 or _get_ident() == _MAIN_THREAD_ID:
            return self._epoll.poll(timeout, maxevents)  # type: ignore[no-any-return]
        lock = self._lock
        lock.release()
        try:
            return self._epoll.poll(timeout, maxevents)  # type: ignore[no-any-return]
        finally:
            lock.acquire()


if sys.platform == "linux":

    class IdleSelector(selectors.EpollSelector):
        """An epoll selector whose :attr:`idle` lock is free while its loop waits (module
        docstring). Held from the start: a loop that nobody runs is not idle."""

        def __init__(self) -> None:
            super().__init__()
            self.idle = threading.Lock()
            self.idle.acquire()
            self._selector = _IdleEpoll(self._selector, self.idle)  # type: ignore[has-type]


def idle_selector() -> IdleSelector | None:
    """An :class:`IdleSelector`, or None where there is none (no epoll)."""
    if sys.platform == "linux":
        return IdleSelector()
    return None  # pragma: no cover
