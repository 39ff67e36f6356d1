"""Sync handlers on the server's thread pool, handed over without the GIL held at the wake-up.

``ThreadPoolExecutor.submit`` wakes an idle worker through its queue's lock while the event
loop's thread holds the GIL (asgi_grpc/_wake.py says why that stalls). A blocking server's unary
call at one call in flight spent about a third of its loop thread's GIL time in that one line.
So the pool runs *runners* instead: a runner is one ``submit`` that takes handlers from this
module's queue until it has been idle for ``IDLE`` seconds, then gives its thread back to the
pool. A handler arriving while a runner waits is handed to it through the runner's eventfd; only
when none waits is a new runner submitted. Handlers still run on the pool's threads and never
more at once than it has; an idle runner holds a thread for at most ``IDLE``.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor

from .._wake import Waker, thread_waker

logger = logging.getLogger("asgi_grpc.server")

#: How long a runner waits for the next handler before it gives its thread back to the pool.
IDLE = 0.01


class PoolRunners:
    """Runs work items (which never raise) on ``pool`` through runners (module docstring)."""

    __slots__ = ("_idle", "_lock", "_work", "pool")

    def __init__(self, pool: Executor) -> None:
        self.pool = pool
        self._lock = threading.Lock()
        self._work: collections.deque[Callable[[], None]] = collections.deque()
        self._idle: list[Waker] = []  # runners waiting for work

    def submit(self, item: Callable[[], None]) -> None:
        """Queue ``item``; wake a waiting runner, or submit one (the pool's errors raise)."""
        with self._lock:
            self._work.append(item)
            waker = self._idle.pop() if self._idle else None
        if waker is not None:
            waker.wake()
            return
        try:
            self.pool.submit(self._run)
        except BaseException:  # (a pool shut down): the item must not run later either
            with self._lock, contextlib.suppress(ValueError):  # (a runner took it already)
                self._work.remove(item)
            raise

    def _run(self) -> None:
        """A runner, on a pool thread: items until none came for ``IDLE`` seconds."""
        waker = thread_waker()
        lock = self._lock
        work = self._work
        idle = self._idle
        while True:
            with lock:
                if work:
                    item: Callable[[], None] | None = work.popleft()
                else:
                    item = None
                    idle.append(waker)
            if item is not None:
                try:
                    item()
                except BaseException:  # pragma: no cover - items report their own outcome
                    logger.exception("sync handler dispatch failed")
                continue
            waker.sleep(IDLE)
            with lock:
                if waker in idle:  # nobody handed it work: give the thread back, unless there is
                    idle.remove(waker)  # work that another (woken) runner has not taken yet
                    if not work:
                        return
