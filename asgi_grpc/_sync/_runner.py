"""Who runs the blocking API's event loop: the thread that waits on it, or the loop's own thread.

A blocking call used to cross threads twice: the caller handed the call to the loop thread and
slept; the loop thread sent the request, read the response and woke the caller. At one call in
flight those two wake-ups (each a trip through the scheduler, and on a virtual machine often an
inter-processor interrupt) cost the blocking client about 50-130 us of CPU per call over the aio
client in one coroutine. grpcio's blocking calls have no such hop: the calling thread polls its
own completion queue.

So a thread that waits for the loop (:func:`~._loop.wait_condition`) runs the loop itself when
nobody else does (it *leads*), until what it waits for happens, and then leaves it *parked*: run
by nobody. The next call of the same thread takes it again; back-to-back blocking calls never
leave their thread. A blocking call's start is handed to the loop by its wait: a leading thread
runs it itself, with what it makes ready (the request framed and written), before running the
loop (:meth:`LoopRunner.run`'s ``first``); otherwise it is posted to the loop's inbox.
The loop's own thread runs it whenever it is wanted and no caller runs it:

- after the loop has been parked for :data:`PARK` (keepalive timers, a deadline of a call that
  nobody waits on, a PING to answer: each is late by at most that);
- at once when *kicked*: work was handed to the loop that no thread will wait on (a future, a
  done callback, creating or closing a channel);
- always while *pinned*: a blocking server is serving from it (its handlers run on other threads
  and every request must be read at once), and then no caller leads.

A caller that finds the loop thread running the loop asks it to hand over (a ``loop.stop`` in its
inbox) and waits as a *follower*; so does a caller that finds another caller leading. Whoever
stops running the loop wakes the first follower, which leads next (or finds its call already
done and passes the loop on).

A loop callback must never be cut short, or a connection's state is left half updated (and an
interrupt between taking the loop and running it would leave it owned by nobody running it). On
the main thread, where Python runs signal handlers between any two bytecodes, a waiting caller
swaps the SIGINT handler for one that only ends the wait (stopping the loop if it leads), and
runs the user's handler (by default raising KeyboardInterrupt) once the loop has been handed
back cleanly; the call is then cancelled as before. Only
the standard asyncio loop is led: uvloop handles signals itself when run on the main thread, so
its loop stays on its thread (the blocking API then works as before).
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # (no stubs: the C half of signal)
import asyncio
import signal
import threading
import time
from collections.abc import Callable
from contextvars import copy_context
from types import FrameType
from typing import Any

from .._wake import Waker, thread_waker

#: How long the loop may stay parked before its own thread takes it back.
PARK = 0.005
#: How much sooner than planned a slice of a leading thread may end (the loop runs a timer
#: up to its clock's resolution early: the slice timer then stops it rather than re-arming).
_EARLY = 0.001

_get_ident = threading.get_ident
_now = time.monotonic
_running_loop = asyncio._get_running_loop
_set_running_loop = asyncio._set_running_loop


class LoopRunner:
    """Hands one event loop between its own thread (:meth:`serve`) and waiting callers (module
    docstring). ``post`` hands the loop a callback from any thread (its inbox)."""

    __slots__ = (
        "_caught",
        "_closing",
        "_followers",
        "_home",
        "_kicked",
        "_lock",
        "_owner",
        "_parked_at",
        "_pins",
        "_post",
        "_slice_end",
        "_slice_timer",
        "_yield_asked",
        "enabled",
        "loop",
        "stopper",
        "thread_id",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, post: Callable[..., object], enabled: bool
    ) -> None:
        self.loop = loop
        self._post = post
        #: Callers may lead (the standard asyncio loop); else the loop thread always runs it.
        self.enabled = enabled
        self._lock = threading.Lock()
        self._owner: int | None = None  # the thread running the loop, or about to
        self._followers: list[Waker] = []  # threads waiting to run it
        self._parked_at = 0.0
        self._pins = 0
        self._kicked = False
        self._yield_asked = False  # a loop.stop was posted to the loop thread
        self._closing = False
        self._home: Waker | None = None  # the loop thread's waker
        self._caught: tuple[int, FrameType | None] | None = None
        self._slice_end: float | None = None  # when the leading thread's slice ends
        self._slice_timer: asyncio.TimerHandle | None = None  # see run
        self.thread_id: int | None = None
        self.stopper = Stopper(self)

    # ------------------------------------------------------------------ the loop's own thread

    def serve(self) -> None:
        """The loop thread's life: run the loop whenever it is wanted and no caller runs it.

        Returns once :meth:`close` was called, owning the loop (to shut it down)."""
        self.thread_id = me = _get_ident()
        self._home = waker = thread_waker()
        loop = self.loop
        while True:
            with self._lock:
                run = self._owner is None and (
                    self._closing
                    or self._kicked
                    or self._pins > 0
                    or not self.enabled
                    or _now() - self._parked_at >= PARK
                )
                if run:
                    self._owner = me
                    self._kicked = self._yield_asked = False
                    if self._closing:
                        return
            if not run:
                waker.sleep(PARK)
                continue
            try:
                loop.run_forever()
            finally:
                self._release()

    def close(self) -> None:
        """Make :meth:`serve` return (its thread then shuts the loop down); callers stop
        leading. From any thread but the loop's."""
        with self._lock:
            self._closing = True
        # (Not through the inbox: at interpreter exit its eventfd may be closed already.)
        self.loop.call_soon_threadsafe(self.loop.stop)
        home = self._home
        if home is not None:
            home.wake()

    def kick(self) -> None:
        """Work was handed to the loop that no thread will wait on: have it run now."""
        with self._lock:
            if self._kicked:
                return
            self._kicked = True
            parked = self._owner is None
        home = self._home
        if parked and home is not None:
            home.wake()

    def pin(self) -> None:
        """Keep the loop on its own thread until :meth:`unpin` (a blocking server serves)."""
        with self._lock:
            self._pins += 1
            parked = self._owner is None
            led = not parked and self._owner != self.thread_id
        if led:  # a caller leads: hand the loop over now
            self._post(self.loop.stop)
        home = self._home
        if (parked or led) and home is not None:
            home.wake()

    def unpin(self) -> None:
        with self._lock:
            self._pins -= 1

    # ------------------------------------------------------------------ callers

    def try_lead(self, waker: Waker) -> bool:
        """Take the loop if nobody runs it: the caller must then :meth:`run` it. Otherwise the
        caller follows: ``waker`` is woken once the loop is free (the loop thread, if it runs it,
        is asked to hand it over); :meth:`unfollow` after the wait."""
        ask = False
        with self._lock:
            owner = self._owner
            if self._pins or self._closing:
                return False
            if owner is None:
                self._owner = _get_ident()
                return True
            if waker not in self._followers:
                self._followers.append(waker)
            if owner == self.thread_id and not self._yield_asked:
                self._yield_asked = ask = True
        if ask:
            self._post(self.loop.stop)
        return False

    def unfollow(self, waker: Waker) -> None:
        """A follower's wait ended. If it was woken to lead and will not (what it waited for
        happened), the next follower gets the loop instead."""
        with self._lock:
            followers = self._followers
            if waker in followers:
                followers.remove(waker)
                return
            if self._owner is not None or not followers:
                return
            nxt: Waker | None = followers.pop(0)
        if nxt is not None:
            nxt.wake()

    def run(self, timeout: float | None, first: Callable[[], object] | None = None) -> None:
        """Run the loop on this thread (which :meth:`try_lead` made its owner) until it is
        stopped (the waited-for condition's :class:`Stopper`, a hand-over, ``timeout``, a
        deferred signal), then park it. ``first`` runs before, as a loop callback (in a copy
        of this thread's context, as a posted one), but without a pass of the loop."""
        loop = self.loop
        if timeout is not None:
            # One timer serves every slice, not one made and cancelled per wait (a TimerHandle,
            # a heap push and ten Python calls for each blocking call): it is re-armed when it
            # fires early, and a new one replaces it only when it would fire too late.
            self._slice_end = end = _now() + timeout
            timer = self._slice_timer
            if timer is None or timer.when() > end:
                if timer is not None:
                    timer.cancel()
                self._slice_timer = loop.call_at(end, self._slice_over)
        try:
            if first is not None:
                self._run_first(first)
            loop.run_forever()
        finally:
            self._slice_end = None
            self._release()

    def _slice_over(self) -> None:
        """The slice timer fired (on whichever thread runs the loop): stop the loop if the
        leader's slice is over, wait for its end if not; nobody leads, nothing to do."""
        self._slice_timer = None
        end = self._slice_end
        if end is None:
            return
        if end - _now() <= _EARLY:
            self.loop.stop()
        else:
            self._slice_timer = self.loop.call_at(end, self._slice_over)

    def _run_first(self, fn: Callable[[], object]) -> None:
        loop = self.loop
        # The loop is this thread's (nobody else runs it): what ``fn`` does on it (create tasks,
        # call_soon) is what a callback would, once it sees it as the running loop.
        _set_running_loop(loop)
        try:
            try:
                copy_context().run(fn)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # as the loop reports a failing callback
                loop.call_exception_handler(
                    {"message": f"Exception in callback {fn!r}", "exception": exc}
                )
            # Then what is ready to run, twice over: a blocking call's first step (its request
            # framed) and the connection's flush (the request handed to the socket). The loop's
            # next two passes would run them, each after a select() that releases the GIL (and
            # lets any thread woken meanwhile take it) and ten Python calls of loop mechanics;
            # the request is written before the loop runs instead. What the loop has to read
            # or a timer due waits for its first pass, as it would have waited for a pass
            # anyway. Not in debug mode (the loop times each callback there).
            ready: Any = getattr(loop, "_ready", None)
            if ready is not None and not loop.get_debug():
                for _ in range(2):
                    for _ in range(len(ready)):
                        handle = ready.popleft()
                        if not handle._cancelled:
                            handle._run()  # (reports what it raises, as in the loop)
        finally:
            _set_running_loop(None)

    def defer_signals(self) -> Any:
        """On the main thread, until :meth:`restore_signals`: SIGINT only stops the loop (if
        this thread runs it) and ends the wait; the user's handler is what this returns (None
        off the main thread, or when SIGINT has no Python handler)."""
        if _get_ident() != _MAIN_THREAD_ID:
            return None
        # ``_signal``'s functions, not ``signal``'s: the latter's wrappers convert handlers and
        # signal numbers to and from enums in Python (about 17 Python calls per blocking call,
        # every call from the main thread pays them).
        previous = _get_handler(_SIGINT)
        if not callable(previous):  # SIG_DFL, SIG_IGN, or None (not set from Python)
            return None
        _set_handler(_SIGINT, self._defer)
        return previous

    def restore_signals(self, previous: Any) -> None:
        """Put the user's SIGINT handler back and run it for a SIGINT that came meanwhile (by
        default it raises KeyboardInterrupt, now that no loop callback can be cut short)."""
        if previous is None:
            return
        _set_handler(_SIGINT, previous)
        caught, self._caught = self._caught, None
        if caught is not None:
            previous(*caught)

    def interrupted(self) -> bool:
        return self._caught is not None

    def _defer(self, signum: int, frame: FrameType | None) -> None:
        self._caught = (signum, frame)
        thread_waker().wake()  # (a follower's sleep ends)
        if self._owner == _get_ident():
            self._post(self.loop.stop)  # (the loop's select() ends: it may be waiting in it)

    # ------------------------------------------------------------------ either

    def _release(self) -> None:
        """This thread stops running the loop: the first follower leads next; else the loop is
        parked, or goes straight back to its thread if that was asked for."""
        with self._lock:
            self._owner = None
            self._parked_at = _now()
            followers = self._followers
            if followers:
                waker: Waker | None = followers.pop(0)
            elif self._kicked or self._pins or self._closing:
                waker = self._home
            else:
                waker = None
        if waker is not None:
            waker.wake()


class Stopper:
    """Stands for the leading thread among a condition's waiters: notifying it stops the loop
    that thread runs, so its wait ends (``WakeCondition.notify`` stops it with any other)."""

    __slots__ = ("_runner",)

    def __init__(self, runner: LoopRunner) -> None:
        self._runner = runner

    def wake(self) -> None:
        runner = self._runner
        if _running_loop() is runner.loop:  # (the usual case: notified by a loop callback)
            runner.loop.stop()
        else:
            runner._post(runner.loop.stop)


_MAIN_THREAD_ID = threading.main_thread().ident
_get_handler = _signal.getsignal
_set_handler = _signal.signal
_SIGINT = int(signal.SIGINT)


def leader(runner: LoopRunner | None) -> LoopRunner | None:
    """``runner`` if the calling thread may lead its loop: it is enabled and the thread runs no
    event loop (its own, or this one: a callback cannot wait for the loop it runs in)."""
    if runner is None or not runner.enabled or _running_loop() is not None:
        return None
    if _get_ident() == runner.thread_id:
        return None
    return runner
