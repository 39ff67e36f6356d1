"""glibc's malloc thresholds for large messages, for the server and the client alike.

With glibc's defaults (a dynamic mmap threshold, and the heap's top handed back on ``free`` past
128 KiB), the buffers of a large message (the payload, its frames, h2's and TLS's copies) were
mapped, or returned at the top of the heap, on every call and faulted in again on the next:
a 1 MiB unary call cost ~1,000 page faults and 1-3 ms of system time on each side
(bench/README.md, "Large messages"). :func:`tune_allocator` raises both thresholds, once per
process: run by the first ``GrpcApp`` and by every channel. The server also hands the heap back
when it has reason to (``server._memory.trim_soon``); a process that is only a client keeps up to
:data:`TRIM_THRESHOLD` of free heap, which glibc returns past that. ``ASGI_GRPC_MALLOPT=0``
leaves glibc's settings alone. Elsewhere (no glibc) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "malloc_trim", "tune_allocator"]

# glibc's mallopt parameters (malloc.h) and the values tune_allocator sets: messages up to 8 MiB
# (twice grpc's default receive limit) come from the heap; the heap's top is given back by
# glibc itself only past 64 MiB free.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 8 * 1024 * 1024
TRIM_THRESHOLD = 64 * 1024 * 1024

malloc_trim: Callable[[int], int] | None = None
_mallopt: Callable[[int, int], int] | None = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        malloc_trim = _libc.malloc_trim  # glibc only; musl has no malloc_trim
        _mallopt = _libc.mallopt
    except (OSError, AttributeError):
        malloc_trim = _mallopt = None

_tuned = False


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds, once per process (see the module docstring).
    Returns whether they are set; not on other C libraries, nor with ``ASGI_GRPC_MALLOPT=0``."""
    global _tuned
    if _tuned:
        return True
    if _mallopt is None or malloc_trim is None or os.environ.get("ASGI_GRPC_MALLOPT") == "0":
        return False
    # Both are set: setting either one turns glibc's dynamic mmap threshold off.
    _tuned = bool(
        _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _tuned
