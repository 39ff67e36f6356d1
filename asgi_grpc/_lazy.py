"""Names a package re-exports from modules imported on first use (PEP 562).

The client (httpx, h2's client side, ~25 modules) costs a server process several MiB of memory
and its start-up time, and a server never calls it; so the public facades (``asgi_grpc``,
``asgi_grpc.aio``) import the client, and the blocking channels, when one of their names is
first looked up. ``from asgi_grpc.aio import insecure_channel`` and ``grpc.aio.Channel`` work as
before; type checkers see ordinary imports (under ``TYPE_CHECKING`` in each facade).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def attributes(
    package: str, namespace: dict[str, Any], lazy: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name in ``lazy`` comes from the
    module named there (relative to ``package``), imported once and cached in ``namespace``."""

    def __getattr__(name: str) -> Any:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value  # later lookups are plain global reads
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(lazy))

    return __getattr__, __dir__
