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

Since the server trims when it has reason to, glibc need not do it on every ``free``:
:func:`tune_allocator` (run once by the first ``GrpcApp``) raises glibc's mmap and trim
thresholds. With glibc's defaults, buffers of a large message (the payload, its frame, h2's
frames) were mapped, or returned at the top of the heap, on every call and faulted in again on
the next: 1 MiB unary calls cost the server ~1,300 page faults and ~3 ms of system time per
call (3.4 ms against 0.55 ms with the thresholds raised, 0 faults; see bench/README.md).
``ASGI_GRPC_MALLOPT=0`` leaves glibc's settings alone.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable

_DELAY = 1.0  # seconds: calls ending together get one trim, after the last of them
TRIM_EVERY_CALLS = 16_384

# glibc's mallopt parameters (malloc.h) and the values tune_allocator sets: messages up to 8 MiB
# (twice grpc's default receive limit) come from the heap; the heap's top is given back by
# glibc itself only past 64 MiB free (trim_soon gives it all back when there is reason to).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 8 * 1024 * 1024
TRIM_THRESHOLD = 64 * 1024 * 1024

_trim: Callable[[int], int] | None = None
_mallopt: Callable[[int, int], int] | None = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _trim = _libc.malloc_trim  # glibc only; musl has no malloc_trim
        _mallopt = _libc.mallopt
    except (OSError, AttributeError):
        _trim = _mallopt = None

_tuned = False


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds, once per process (see the module docstring).
    Returns whether they are set; not on other C libraries, nor with ``ASGI_GRPC_MALLOPT=0``."""
    global _tuned
    if _tuned:
        return True
    if _mallopt is None or _trim is None or os.environ.get("ASGI_GRPC_MALLOPT") == "0":
        return False
    # Both are set: setting either one turns glibc's dynamic mmap threshold off.
    _tuned = bool(
        _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _tuned


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
