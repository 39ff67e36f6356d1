"""Hand freed memory back to the operating system.

Python frees what a call used (tracemalloc and ``sys.getallocatedblocks()`` stay flat), but
glibc's malloc keeps freed chunks of its heap resident for reuse, which shows up as RSS that does
not come down:

- after calls whose handler stopped reading: each held up to its request bound plus its HTTP/2
  window (see ``_requests``); without a trim, a server that once held 100 full streams stays at
  that peak;
- under steady load: the heap's free pages creep up (measured: 16 clients of the four patterns,
  ~0.3 MiB a minute, while the live heap is flat; a trim brings RSS back to its level).

:func:`trim_soon` asks glibc to return free pages (``malloc_trim``), at most once a second;
the app asks after calls that hit their bound and every :data:`TRIM_EVERY_CALLS` calls.
Elsewhere (no glibc) it does nothing. A trim of a server's heap takes well under a millisecond.

Since the server trims when it has reason to, glibc need not do it on every ``free``: the first
``GrpcApp`` raises glibc's mmap and trim thresholds (:func:`asgi_grpc._allocator.tune_allocator`,
shared with the client; ``ASGI_GRPC_MALLOPT=0`` opts out).
"""

from __future__ import annotations

import asyncio

from .._allocator import malloc_trim as _trim
from .._allocator import tune_allocator

__all__ = ["TRIM_EVERY_CALLS", "trim_soon", "tune_allocator"]

_DELAY = 1.0  # seconds: calls ending together get one trim, after the last of them
TRIM_EVERY_CALLS = 16_384

_scheduled: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None


def trim_soon() -> None:
    """Have ``malloc_trim(0)`` run on the running loop within ``_DELAY`` s (one trim for all
    the requests made before it runs)."""
    global _scheduled
    if _trim is None:
        return
    loop = asyncio.get_running_loop()
    if _scheduled is not None and _scheduled[0] is loop:
        return
    # (A trim scheduled on another loop, one closed before it ran included, is left alone.)
    _scheduled = loop, loop.call_later(_DELAY, _run)


def _run() -> None:
    global _scheduled
    _scheduled = None
    if _trim is not None:
        _trim(0)
