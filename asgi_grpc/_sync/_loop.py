"""The one event loop behind the synchronous API, and the thread-side waiting primitives.

Every sync channel and server of a process runs on a single asyncio loop in a daemon thread,
started on first use. One loop (rather than one per channel or server) because the work is
GIL-bound anyway: a second loop thread adds context switches, not throughput, and one loop lets a
sync servicer call a sync channel without any cross-loop hand-off. The caller's own loop, if its
thread runs one, is never touched: blocking calls hand their work to this loop and wait on
``threading`` primitives.

A thread waiting for a call runs the loop itself when nobody else does (asgi_grpc/_sync/_runner.py
says when and why): back-to-back blocking calls then never leave their thread. Other waits spin
with a short timeout (as grpcio's ``_common.wait`` does) so a signal handler on the main thread
runs promptly on every platform; callers cancel their RPC when the wait is interrupted. At
interpreter exit (atexit) the registered channels and servers are closed and the loop is stopped,
bounded in time, so nothing hangs on calls still in flight. After ``fork()`` the child starts a
fresh loop on first use (the parent's loop thread does not exist there).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from .._wake import Inbox, loop_inbox, thread_waker
from ._runner import LoopRunner, Stopper, leader
from ._selector import idle_selector

logger = logging.getLogger("asgi_grpc.sync")

T = TypeVar("T")

#: Longest uninterrupted sleep of a waiting thread: signals are handled at least this often.
SPIN = 0.25
#: How long interpreter exit waits for channels and servers to close before stopping the loop.
EXIT_GRACE = 2.0


class Closable(Protocol):
    """A sync channel or server: closed (without waiting for peers) at interpreter exit."""

    async def _close_at_exit(self) -> None: ...


#: Set to ``0`` to keep the standard asyncio loop where asgi_grpc would pick uvloop (the sync
#: API's loop thread and ``asgi-grpc serve``), e.g. to compare the two.
UVLOOP_ENV = "ASGI_GRPC_UVLOOP"


def uvloop_wanted() -> bool:
    """uvloop is installed (the ``uvloop`` extra) and not turned off by :data:`UVLOOP_ENV`.

    Only loops asgi_grpc owns use it: a library must not change its user's event loop policy.
    """
    if os.environ.get(UVLOOP_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _new_loop() -> tuple[asyncio.AbstractEventLoop, threading.Lock | None]:
    """The loop, and the lock that is free while it waits in its selector (None: uvloop, or no
    epoll; asgi_grpc/_sync/_selector.py)."""
    if uvloop_wanted():
        import uvloop

        return uvloop.new_event_loop(), None
    selector = idle_selector()
    if selector is None:
        return asyncio.new_event_loop(), None
    return asyncio.SelectorEventLoop(selector), selector.idle


class BackgroundLoop:
    """An asyncio loop (uvloop's when :func:`uvloop_wanted`) running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop, self._idle = _new_loop()
        self.inbox: Inbox  # work posted from other threads (asgi_grpc/_wake.py), made on the loop
        self.runner: LoopRunner  # who runs the loop (asgi_grpc/_sync/_runner.py)
        self._ready = threading.Event()
        self._closables: weakref.WeakSet[Closable] = weakref.WeakSet()
        self.thread = threading.Thread(target=self._run, name="asgi_grpc-loop", daemon=True)
        self.thread.start()
        self._ready.wait()
        self.thread_id = self.thread.ident

    def _run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        self.inbox = loop_inbox(loop, self._idle)
        # Only the standard loop is led by callers (uvloop handles signals itself).
        self.runner = LoopRunner(loop, self.inbox.post, type(loop).__module__.startswith("asyncio"))
        loop.call_soon(self._ready.set)
        try:
            self.runner.serve()
        finally:
            with contextlib.suppress(Exception):
                _cancel_all(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
            self.inbox.close()
            loop.close()

    def register(self, closable: Closable) -> None:
        self._closables.add(closable)

    def stop(self, timeout: float = EXIT_GRACE) -> None:
        """Close what is registered, stop the loop and join its thread, within ``timeout``."""
        if not self.thread.is_alive() or self.loop.is_closed():
            return
        if on_loop():
            self.loop.stop()
            return
        closables = list(self._closables)

        async def shutdown() -> None:
            if closables:
                await asyncio.wait(
                    [asyncio.ensure_future(c._close_at_exit()) for c in closables],
                    timeout=timeout / 2,
                )

        with contextlib.suppress(Exception):
            future = asyncio.run_coroutine_threadsafe(shutdown(), self.loop)
            self.runner.kick()
            future.result(timeout / 2)
        with contextlib.suppress(RuntimeError):  # already closed
            self.runner.close()
        self.thread.join(timeout / 2)


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=EXIT_GRACE / 2))


_lock = threading.Lock()
_background: BackgroundLoop | None = None


def background() -> BackgroundLoop:
    """The process's background loop, started on first use."""
    current = _background
    if current is not None:
        return current
    return _start()


def _start() -> BackgroundLoop:
    global _background
    with _lock:
        if _background is None:
            _background = BackgroundLoop()
        return _background


def get_loop() -> asyncio.AbstractEventLoop:
    return background().loop


def poster(loop: asyncio.AbstractEventLoop) -> Callable[..., object]:
    """How other threads hand ``loop`` a callback: the background loop's inbox
    (asgi_grpc/_wake.py), else ``call_soon_threadsafe``. RuntimeError once the loop is closed."""
    current = _background
    if current is not None and current.loop is loop:
        return current.inbox.post
    return loop.call_soon_threadsafe


_exiting = False


def _at_exit() -> None:
    global _exiting
    _exiting = True
    current = _background
    if current is not None:
        current.stop()


def park_if_exiting() -> None:
    """At interpreter exit, a (daemon) thread whose call was just cancelled by the shutdown stays
    blocked, as it would with grpcio, instead of raising into the user's thread (and printing a
    traceback) while the interpreter is being torn down. The process ends it."""
    if _exiting and threading.current_thread() is not threading.main_thread():
        while True:
            time.sleep(SPIN)


def _after_fork_in_child() -> None:
    global _background, _lock, _dispatcher
    _lock = threading.Lock()
    _background = None
    _dispatcher = None


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def on_loop() -> bool:
    """This thread is running the background loop now (its own thread, or a caller leading it)."""
    current = _background
    return current is not None and asyncio._get_running_loop() is current.loop


def kick() -> None:
    """Work was handed to the background loop that no thread will wait on: have it run now."""
    background().runner.kick()


def pin() -> None:
    """Keep the background loop on its own thread until :func:`unpin` (a server serves)."""
    background().runner.pin()


def unpin() -> None:
    background().runner.unpin()


def check_not_loop_thread() -> None:
    """Blocking on the loop from the loop's own thread would deadlock: fail loudly instead."""
    current = _background
    if current is not None and (
        threading.get_ident() == current.thread_id or asyncio._get_running_loop() is current.loop
    ):
        raise RuntimeError(
            "a blocking asgi_grpc call was made on asgi_grpc's own event loop thread (from an "
            "async handler or a callback run there); use asgi_grpc.aio in async code"
        )


def run(coro_factory: Callable[[], Coroutine[Any, Any, T]], timeout: float | None = None) -> T:
    """Run a coroutine on the background loop and wait for its result (signals get through).

    On an interrupted wait (KeyboardInterrupt) or timeout the coroutine is cancelled."""
    check_not_loop_thread()
    current = background()
    future = asyncio.run_coroutine_threadsafe(coro_factory(), current.loop)
    current.runner.kick()
    try:
        result: T = wait_future(future, timeout)
    except BaseException:
        future.cancel()
        raise
    return result


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Start a coroutine on the background loop; its result as a concurrent future."""
    current = background()
    future = asyncio.run_coroutine_threadsafe(coro, current.loop)
    current.runner.kick()
    return future


def wait_future(future: Any, timeout: float | None = None) -> Any:
    """``concurrent.futures.Future.result`` in short slices, so signal handlers run."""
    deadline = None if timeout is None else _now() + timeout
    while True:
        remaining = SPIN if deadline is None else min(SPIN, deadline - _now())
        if remaining <= 0:
            raise TimeoutError
        try:
            return future.result(remaining)
        except concurrent.futures.TimeoutError:
            if deadline is not None and _now() >= deadline:
                raise TimeoutError from None


def wait_event(event: threading.Event, timeout: float | None = None) -> bool:
    """``event.wait(timeout)`` in short slices; True if it was set (as ``Event.wait``)."""
    deadline = None if timeout is None else _now() + timeout
    while True:
        remaining = SPIN if deadline is None else min(SPIN, deadline - _now())
        if remaining <= 0:
            return event.is_set()
        if event.wait(remaining):
            return True


class Start(Protocol):
    """A blocking call not handed to the loop yet: its first wait does (``start``)."""

    def start_here(self) -> None:
        """Run the start on this thread, which runs the loop (as a loop callback would)."""

    def start_posted(self) -> None:
        """Hand the start to the loop."""


def wait_condition(
    condition: threading.Condition | WakeCondition,
    predicate: Callable[[], bool],
    timeout: float | None = None,
    start: Start | None = None,
) -> bool:
    """``condition.wait_for(predicate, timeout)`` in short slices; the lock must be held.

    Waiting on a :class:`WakeCondition` of a background-loop call, the thread runs the loop
    itself while nobody else does (asgi_grpc/_sync/_runner.py); then ``start`` is run first
    on this thread, else it is posted to the loop before the wait. Returns the predicate's
    last value (False on timeout)."""
    if start is not None and predicate():
        start.start_posted()
        start = None
    if start is None and predicate():
        return True
    if isinstance(condition, WakeCondition):
        current = _background
        runner = leader(current.runner if current is not None else None)
        if runner is not None:
            return _lead_or_follow(runner, condition, predicate, timeout, start)
    if start is not None:
        start.start_posted()
    deadline = None if timeout is None else _now() + timeout
    while True:
        remaining = SPIN if deadline is None else min(SPIN, deadline - _now())
        if remaining <= 0:
            return predicate()
        condition.wait(remaining)
        if predicate():
            return True


def _lead_or_follow(
    runner: LoopRunner,
    condition: WakeCondition,
    predicate: Callable[[], bool],
    timeout: float | None,
    start: Start | None = None,
) -> bool:
    """:func:`wait_condition`, running the loop whenever nobody else does."""
    deadline = None if timeout is None else _now() + timeout
    waker = thread_waker()
    previous = runner.defer_signals()
    try:
        while True:
            remaining = None if deadline is None else deadline - _now()
            if remaining is not None and remaining <= 0:
                return predicate()
            if runner.try_lead(waker):
                # In slices too: whatever ends a wait is also meant to stop the loop, and a
                # missed stop must cost a slice, not the call.
                condition.lead(runner, SPIN if remaining is None else min(SPIN, remaining), start)
                start = None
            else:
                if start is not None:
                    start.start_posted()
                    start = None
                try:
                    condition.wait(SPIN if remaining is None else min(SPIN, remaining))
                finally:
                    runner.unfollow(waker)
            if predicate():
                return True
            if previous is not None and runner.interrupted():  # (this thread deferred it)
                return False
    finally:
        runner.restore_signals(previous)


_now = time.monotonic


# ---------------------------------------------------------------------- waking a waiting thread


class _Wakes(Protocol):
    """A thread's waker, or the stand-in for a thread that runs the loop (_runner.Stopper)."""

    def wake(self) -> None: ...


class WakeCondition:
    """The part of ``threading.Condition`` the sync calls use (``with``, ``wait``, ``notify``,
    ``notify_all``), with every wake-up done after the lock is released and through the woken
    thread's waker (asgi_grpc/_wake.py: see there why). A wait may return early: use it through
    :func:`wait_condition`, which checks its predicate."""

    __slots__ = ("_lock", "_waiters", "_woken")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: list[_Wakes] = []
        self._woken: list[_Wakes] | None = None

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        woken = self._woken
        if woken is None:
            self._lock.release()
            return
        self._woken = None
        self._lock.release()
        for waker in woken:
            waker.wake()

    def notify(self) -> None:
        """Wake one waiting thread when the lock is released (the lock must be held).

        A thread that runs the loop while it waits (its :class:`~._runner.Stopper` stands among
        the waiters) is stopped as well: threads on one condition wait for different things (a
        stream's reader, its request feed), and the one woken rechecks only its own."""
        waiters = self._waiters
        if not waiters:
            return
        woken = self._woken
        if woken is None:
            woken = self._woken = []
        waker = waiters.pop(0)
        woken.append(waker)
        if isinstance(waker, Stopper):
            if waiters:
                woken.append(waiters.pop(0))
        else:
            for other in waiters:
                if isinstance(other, Stopper):
                    waiters.remove(other)
                    woken.append(other)
                    break

    def notify_all(self) -> None:
        """Wake every waiting thread when the lock is released (the lock must be held)."""
        waiters = self._waiters
        if waiters:
            self._waiters = []
            if self._woken is None:
                self._woken = waiters
            else:
                self._woken += waiters

    def lead(self, runner: LoopRunner, timeout: float, start: Start | None = None) -> None:
        """As :meth:`wait`, but run ``runner``'s loop meanwhile (this thread leads it) for at most
        ``timeout``: a notify stops the loop, and so does a SIGINT (``runner.defer_signals``).
        ``start.start_here()`` runs first (with the lock released: it may settle the call)."""
        if start is None:
            self._away(runner.stopper, runner.run, timeout)
        else:
            self._away(
                runner.stopper, functools.partial(runner.run, first=start.start_here), timeout
            )

    def wait(self, timeout: float) -> None:
        """Release the lock, sleep until notified or ``timeout`` passes, take the lock again."""
        waker = thread_waker()
        self._away(waker, waker.sleep, timeout)

    def _away(self, waiter: _Wakes, block: Callable[[float], None], timeout: float) -> None:
        """With ``waiter`` listed, the lock released and the wake-ups owed sent: ``block``."""
        self._waiters.append(waiter)
        woken, self._woken = self._woken, None
        self._lock.release()
        try:
            if woken:
                for other in woken:
                    other.wake()
            block(timeout)
        finally:
            self._lock.acquire()
            waiters = self._waiters
            if waiter in waiters:  # (a notify took it off already, as usual)
                waiters.remove(waiter)


# ---------------------------------------------------------------------- callbacks off the loop


class Dispatcher:
    """Runs user callbacks (done callbacks, connectivity callbacks) in order on one daemon thread.

    Never on the loop thread: a callback may block, or make a blocking call of its own."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], Any]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="asgi_grpc-callbacks", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        get = self._queue.get
        while True:
            callback = get()
            try:
                callback()
            except Exception:
                logger.exception("asgi_grpc callback %r failed", callback)

    def submit(self, callback: Callable[[], Any]) -> None:
        self._queue.put(callback)


_dispatcher: Dispatcher | None = None


def dispatch(callback: Callable[[], Any]) -> None:
    """Run ``callback`` soon on the callback thread."""
    global _dispatcher
    dispatcher = _dispatcher
    if dispatcher is None:
        with _lock:
            if _dispatcher is None:
                _dispatcher = Dispatcher()
            dispatcher = _dispatcher
    dispatcher.submit(callback)
