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

The other direction, a thread handing work to an event loop, goes through the loop's
:class:`LoopInbox` (:func:`loop_inbox`): ``call_soon_threadsafe``'s job with one eventfd the loop
watches, so a hand-off costs a deque append and, only when the loop has not been woken already,
one ``eventfd_write``; the loop runs what was posted in the reader's callback itself, instead of
reading its self-pipe until it is empty (two ``recv`` and a caught BlockingIOError per wake-up) and
running a Handle made per callback on its next pass. About a quarter of a bare thread-to-loop and
back round trip (63 -> 48 k instructions).

A loop whose selector says when it waits (``idle``: the blocking API's loop,
``asgi_grpc._sync._selector``) is not woken at all when it waits: the posting thread takes the
idle lock and runs the callback itself, as the loop would have, with the loop as its running loop
(:meth:`LoopInbox.post`). The loop is woken only for what that left it to do (a task to step, a
timer sooner than the one it waits for, a stop). A blocking server's handler thread so writes
its response itself, as grpcio's does: one thread hand-off per ping-pong round trip instead of
two. Not from the main thread (a signal handler that raises must never cut a loop callback
short), from a thread that runs an event loop, or in asyncio's debug mode.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import os
import select
import threading
import weakref
from asyncio.events import _get_running_loop, _set_running_loop
from collections.abc import Callable
from typing import Any


class _EventfdWaker:
    """Wakes one thread (the one it belongs to: :func:`thread_waker`) through an eventfd."""

    __slots__ = ("_fd", "_poll")

    def __init__(self) -> None:
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)  # type: ignore[attr-defined,unused-ignore]
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)

    def wake(self) -> None:
        # try/except, not contextlib.suppress, on the hot paths here: suppress costs an object
        # and two calls each time (about a tenth of a thread-to-loop round trip, measured).
        try:  # noqa: SIM105
            os.eventfd_write(self._fd, 1)  # type: ignore[attr-defined,unused-ignore]
        except OSError:  # (never at a closed fd: the waiter holds it)
            pass

    def sleep(self, timeout: float) -> None:
        """Until woken or ``timeout`` passes; may return early (callers check their predicate)."""
        if self._poll.poll(timeout * 1000.0):
            try:  # noqa: SIM105 (see wake)
                os.eventfd_read(self._fd)  # type: ignore[attr-defined,unused-ignore]
            except BlockingIOError:
                pass

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            os.close(self._fd)


class _LockWaker:
    """Where there is no eventfd: a lock used as a binary semaphore."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # already woken
            self._lock.release()

    def sleep(self, timeout: float) -> None:
        self._lock.acquire(timeout=max(timeout, 0.0))


Waker = _EventfdWaker | _LockWaker
_get_ident = threading.get_ident
_MAIN_THREAD_ID = threading.main_thread().ident
_new_waker = _EventfdWaker if hasattr(os, "eventfd") else _LockWaker
_local = threading.local()


def _forget_wakers() -> None:
    # In a forked child the parent's wakers (eventfds shared with the parent) are not this
    # process's: dropped once here, instead of an ``os.getpid()`` (a system call) per wait.
    global _local
    _local = threading.local()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_wakers)


def thread_waker() -> Waker:
    """This thread's waker (made on first use, again in a forked child; closed with the
    thread)."""
    try:
        waker: Waker = _local.waker
    except AttributeError:  # (once per thread)
        waker = _local.waker = _new_waker()
    return waker


# ---------------------------------------------------------------------- handing work to a loop


class LoopInbox:
    """Callbacks posted to one event loop from any thread, run on it in the order posted, each
    in the context of the thread that posted it (as ``call_soon_threadsafe``). Made on the loop's
    thread (:func:`loop_inbox`)."""

    __slots__ = ("__weakref__", "_deferred", "_fd", "_idle", "_items", "_loop", "_pending")

    def __init__(self, loop: asyncio.AbstractEventLoop, idle: threading.Lock | None = None) -> None:
        self._loop = loop
        #: Free while the loop waits in its selector (module docstring); None: always posted.
        self._idle = idle
        self._items: collections.deque[tuple[contextvars.Context, Callable[..., Any], Any]] = (
            collections.deque()
        )
        self._pending = False  # the eventfd was written and the loop has not drained it yet
        self._deferred: list[Callable[[], object]] = []  # run once the items are drained
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)  # type: ignore[attr-defined,unused-ignore]
        loop.add_reader(self._fd, self._drain)
        weakref.finalize(self, os.close, self._fd)

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon; RuntimeError if the loop is closed (as
        ``call_soon_threadsafe``). On a loop with an idle lock that waits in its selector, run
        it here and now instead (module docstring)."""
        if self._loop.is_closed():
            raise RuntimeError("Event loop is closed")
        idle = self._idle
        if (
            idle is not None
            and _get_ident() != _MAIN_THREAD_ID
            and _get_running_loop() is None
            and idle.acquire(False)
        ):
            try:
                self._run_here(fn, args)
            finally:
                idle.release()
            return
        self._items.append((contextvars.copy_context(), fn, args))
        # Appended first, flag read after: the loop clears the flag before it drains, so an item
        # is either drained by a pass that has not started yet or wakes the loop itself.
        if not self._pending:
            self._pending = True
            os.eventfd_write(self._fd, 1)  # type: ignore[attr-defined,unused-ignore]

    def _run_here(self, fn: Callable[..., Any], args: Any) -> None:
        """On the posting thread, holding the idle lock (the loop waits in its selector): what
        was posted before, ``fn(*args)``, then what they deferred; the loop is woken for what
        that leaves it (module docstring)."""
        loop: Any = self._loop
        if loop._debug:  # (the loop times and checks each callback there: leave it to the loop)
            self._items.append((contextvars.copy_context(), fn, args))
            self._wake_loop()
            return
        scheduled = loop._scheduled
        soonest = scheduled[0] if scheduled else None
        _set_running_loop(loop)
        try:
            self._items.append((contextvars.copy_context(), fn, args))
            self._run_items()
        finally:
            _set_running_loop(None)
        if (
            loop._ready
            or loop._stopping
            or (scheduled and scheduled[0] is not soonest)
            or self._items  # (posted by a callback of ours: the lock was held)
        ):
            self._wake_loop()

    def _wake_loop(self) -> None:
        if not self._pending:
            self._pending = True
            os.eventfd_write(self._fd, 1)  # type: ignore[attr-defined,unused-ignore]

    def _drain(self) -> None:
        try:  # noqa: SIM105 (see _EventfdWaker.wake)
            os.eventfd_read(self._fd)  # type: ignore[attr-defined,unused-ignore]
        except BlockingIOError:  # (woken for items an earlier pass took)
            pass
        self._pending = False
        self._run_items()

    def _run_items(self) -> None:
        items = self._items
        while items:
            context, fn, args = items.popleft()
            try:
                context.run(fn, *args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # as the loop reports a failing callback
                self._loop.call_exception_handler(
                    {"message": f"Exception in callback {fn!r}", "exception": exc}
                )
        deferred = self._deferred
        while deferred:
            self._run_deferred(deferred.pop(0))

    def defer(self, fn: Callable[[], object]) -> None:
        """From a callback this inbox runs: ``fn()`` once the callbacks posted so far have
        run, once however often it was deferred meanwhile (an equal bound method counts as the
        same). What the callbacks of one wake-up leave for a connection's writer is written
        once, after them all."""
        if fn not in self._deferred:
            self._deferred.append(fn)

    def _run_deferred(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {"message": f"Exception in callback {fn!r}", "exception": exc}
            )

    def close(self) -> None:
        """On the loop's thread, before it closes: stop watching the eventfd."""
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)


class _ThreadsafeInbox:
    """Where there is no eventfd: ``call_soon_threadsafe`` itself."""

    __slots__ = ("post",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.post = loop.call_soon_threadsafe

    def defer(self, fn: Callable[[], object]) -> None:
        fn()  # (each callback is a Handle of its own here: nothing to gather)

    def close(self) -> None:
        pass


Inbox = LoopInbox | _ThreadsafeInbox
_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Inbox] = weakref.WeakKeyDictionary()


def post_to(loop: asyncio.AbstractEventLoop) -> Callable[..., object]:
    """From any thread: how to hand ``loop`` a callback, its inbox's ``post`` if it has one
    (made on its thread by :func:`loop_inbox`), else ``call_soon_threadsafe``."""
    inbox = _inboxes.get(loop)
    return loop.call_soon_threadsafe if inbox is None else inbox.post


def loop_inbox(loop: asyncio.AbstractEventLoop, idle: threading.Lock | None = None) -> Inbox:
    """``loop``'s inbox, made on first use; call it on the loop's thread the first time (it
    registers a reader), from anywhere after that. ``idle``: the lock of the loop's selector
    that is free while it waits (``asgi_grpc._sync._selector``), given when the inbox is made."""
    inbox = _inboxes.get(loop)
    if inbox is None:
        inbox = LoopInbox(loop, idle) if hasattr(os, "eventfd") else _ThreadsafeInbox(loop)
        _inboxes[loop] = inbox
    return inbox
