"""Hand freed memory back to the operating system after calls that buffered a lot.

A call whose handler stopped reading holds up to its request bound plus its HTTP/2 window (see
``_requests``). When such calls end, Python frees every byte (tracemalloc agrees), but glibc's
malloc keeps the freed chunks of its heap for reuse: without a trim, the RSS of a server that once
held 100 full streams stays at its peak. :func:`trim_soon` asks glibc to return free pages, at
most once a second and only after calls that hit their bound; elsewhere (no glibc) it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import sys
from collections.abc import Callable

_DELAY = 1.0  # seconds: calls ending together get one trim, after the last of them

_trim: Callable[[int], int] | None = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _trim = _libc.malloc_trim  # glibc only; musl has no malloc_trim
    except (OSError, AttributeError):
        _trim = None

_scheduled: asyncio.TimerHandle | None = None


def trim_soon() -> None:
    """Schedule one ``malloc_trim(0)`` on the running loop, ``_DELAY`` s from now."""
    global _scheduled
    if _trim is None:
        return
    if _scheduled is not None:
        _scheduled.cancel()
    _scheduled = asyncio.get_running_loop().call_later(_DELAY, _run)


def _run() -> None:
    global _scheduled
    _scheduled = None
    if _trim is not None:
        _trim(0)
