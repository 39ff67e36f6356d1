"""The ``*_uvloop`` implementations: the same asgi_grpc code with uvloop as the event loop.

A bench process whose implementation name ends in ``_uvloop`` runs its own loop on uvloop, and
the orchestrator sets ``ASGI_GRPC_UVLOOP=1`` for it (``0`` for every other process), so the
blocking API's loop thread follows too (asgi_grpc/_sync/_loop.py). Without the suffix the standard
asyncio loop is used even when uvloop is installed: each pair is measured one way or the other,
never by accident.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

SUFFIX = "_uvloop"


def uses_uvloop(impl: str) -> bool:
    return impl.endswith(SUFFIX)


def env_for(impl: str) -> dict[str, str]:
    """Environment a process running ``impl`` gets (read by asgi_grpc's own loops)."""
    return {"ASGI_GRPC_UVLOOP": "1" if uses_uvloop(impl) else "0"}


def run_loop(impl: str, main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on a uvloop loop when ``impl`` asks for it."""
    if not uses_uvloop(impl):
        return asyncio.run(main)
    import uvloop

    # asyncio.Runner(loop_factory=...) is 3.11+; this is what it does, for 3.10 too.
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        loop.close()
