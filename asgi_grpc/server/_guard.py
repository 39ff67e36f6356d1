"""Refuse, at start-up, an app graph that would drop gRPC's HTTP trailers.

gRPC puts the call's status in HTTP trailers. Starlette's ``BaseHTTPMiddleware`` (and so every
``@app.middleware("http")`` function) re-wraps responses without them: a gRPC call that passes
through one never gets a ``grpc-status`` and fails on the client with an opaque INTERNAL or
UNKNOWN error, on every call, long after the server started "fine". :func:`check_app` finds that
arrangement by walking the ASGI app graph, so the server can refuse to start instead.

Only the path a *gRPC request* takes matters:

- ``Starlette(middleware=[BaseHTTP...], routes=[Mount("/pkg.Svc", grpc_app)])``: gRPC requests go
  through the middleware: broken, refused.
- ``GrpcApp(fallback=Starlette(middleware=[BaseHTTP...]))``: the GrpcApp answers every gRPC request
  itself and hands only the rest (REST, and the lifespan) to its fallback, so the middleware never
  sees a gRPC request: fine, and the fallback is not walked.

The walk knows Starlette's shapes (applications, routers with their own middleware, ``Mount``,
``Host``, routes with ASGI endpoints, not-yet-built ``user_middleware``) and the pure-ASGI
middleware convention of keeping the wrapped app in ``.app``. What it cannot see (an app hidden in
a closure) it assumes to be fine: it must never refuse a working app.

:func:`install` makes Hypercorn run the check on the app it serves when the lifespan starts (the
outermost app may well be a Starlette app, which never forwards the lifespan to a mounted GrpcApp),
and turns a failure into a lifespan start-up failure: Hypercorn then exits with the message instead
of serving.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["check_app", "install", "is_installed"]

# Bounds for the walk: app graphs are small; these only stop pathological or cyclic ones.
_MAX_NODES = 10_000

_HINT = (
    "Starlette's BaseHTTPMiddleware (also behind @app.middleware('http')) drops HTTP trailers, "
    "where gRPC carries every call's status, so every gRPC call would fail. Write that middleware "
    "as a pure ASGI middleware (https://www.starlette.io/middleware/#pure-asgi-middleware), or put "
    "the GrpcApp in front: GrpcApp(fallback=starlette_app) sends only non-gRPC requests (and the "
    "lifespan) through Starlette's middleware."
)


def check_app(app: object) -> None:
    """Raise :class:`RuntimeError` if gRPC requests would reach a ``GrpcApp`` through a
    middleware that drops HTTP trailers (Starlette's ``BaseHTTPMiddleware``).

    ``app`` is the outermost ASGI app, the one the server serves. Cheap (one walk over the app
    graph); run it once before serving. Apps without a ``GrpcApp`` in them always pass.
    """
    found = _find_lossy_path(app)
    if found is not None:
        raise RuntimeError(
            "asgi_grpc: gRPC requests reach a GrpcApp through a middleware that drops HTTP "
            f"trailers: {' -> '.join(found)}. {_HINT}"
        )


def _find_lossy_path(app: object) -> list[str] | None:
    """The first path (as display names) from ``app`` to a GrpcApp with a lossy middleware on
    it, or None. Depth first over an explicit stack: no recursion limit to hit."""
    from ._app import GrpcApp  # a cycle at import time otherwise (_app installs this guard)

    seen: set[int] = set()
    # (node, path of display names so far, whether a lossy middleware is on the path)
    stack: list[tuple[object, tuple[str, ...], bool]] = [(app, (), False)]
    while stack and len(seen) < _MAX_NODES:
        node, path, lossy = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        path = (*path, _name(node))
        if isinstance(node, GrpcApp):
            if lossy:
                return list(path)
            continue  # its fallback never sees a gRPC request (see the module docstring)
        lossy = lossy or _is_lossy(node)
        children = list(_children(node))
        # Reversed so that the first child is walked first (only affects which path is shown).
        for child, child_lossy, label in reversed(children):
            child_path = (*path, label) if label else path
            stack.append((child, child_path, lossy or child_lossy))
    return None


def _children(node: object) -> Iterator[tuple[object, bool, str]]:
    """The apps ``node`` may pass an HTTP request to: ``(app, lossy on the way, label)``."""
    starlette = sys.modules.get("starlette.applications")
    routing = sys.modules.get("starlette.routing")
    if starlette is not None and isinstance(node, starlette.Starlette):
        if node.middleware_stack is not None:
            yield node.middleware_stack, False, ""
            return
        # Not built yet (it is built on the first call, the lifespan included): the user's
        # middleware will all sit in front of the router.
        lossy = False
        labels = []
        for middleware in node.user_middleware:
            cls = getattr(middleware, "cls", None)
            if isinstance(cls, type) and _is_lossy_class(cls):
                lossy = True
                labels.append(f"{cls.__name__} (a BaseHTTPMiddleware)")
        yield node.router, lossy, " -> ".join(labels)
        return
    if routing is not None and isinstance(node, routing.Router):
        stack = getattr(node, "middleware_stack", None)
        # The router's own middleware (Router(middleware=...)) wraps its bound ``app`` method.
        if stack is not None and not _is_bound_to(stack, node):
            yield stack, False, ""
            return
        for route in node.routes:
            yield route, False, ""
        return
    if inspect.ismethod(node):
        # A router's bound ``app`` at the bottom of its own middleware stack: its routes.
        owner = node.__self__
        if routing is not None and isinstance(owner, routing.Router):
            for route in owner.routes:
                yield route, False, ""
        return
    if inspect.isfunction(node) or inspect.isbuiltin(node):
        return  # an endpoint or a closure-based app: nothing visible to walk
    inner = getattr(node, "app", None)
    if inner is not None and inner is not node:
        yield inner, False, ""


def _is_bound_to(value: object, owner: object) -> bool:
    return inspect.ismethod(value) and value.__self__ is owner


def _is_lossy(node: object) -> bool:
    return _is_lossy_class(type(node))


def _is_lossy_class(cls: type) -> bool:
    base = sys.modules.get("starlette.middleware.base")
    # Not imported means nobody built one: no need to import Starlette to find out.
    return base is not None and issubclass(cls, base.BaseHTTPMiddleware)


def _name(node: object) -> str:
    routing = sys.modules.get("starlette.routing")
    if routing is not None and isinstance(node, routing.Mount):
        return f"Mount({node.path!r})"
    if routing is not None and isinstance(node, routing.Route):
        return f"Route({node.path!r})"
    if routing is not None and isinstance(node, routing.Host):
        return f"Host({node.host!r})"
    if inspect.ismethod(node):
        return f"{type(node.__self__).__name__}.{node.__func__.__name__}"
    name = getattr(node, "__qualname__", None) if inspect.isfunction(node) else None
    name = name or type(node).__name__
    if _is_lossy(node):
        return f"{name} (a BaseHTTPMiddleware)"
    return name


# ---------------------------------------------------------------------- Hypercorn hook

_PATCHED = "_asgi_grpc_guarded"


def is_installed() -> bool:
    from hypercorn.asyncio.lifespan import Lifespan

    return bool(getattr(Lifespan.handle_lifespan, _PATCHED, False))


def install() -> None:
    """Make Hypercorn (asyncio and uvloop workers) run :func:`check_app` on the app it serves
    when the lifespan starts, and fail start-up with the message if the check fails. Idempotent.

    The check has to start from the outermost app, which only the server knows: a Starlette app
    in front of a mounted GrpcApp runs the lifespan itself and never forwards it. A check that
    raises inside the app's lifespan would not do either: Hypercorn logs "continuing without
    Lifespan support" and serves anyway. A lifespan start-up failure makes it exit instead.
    """
    from hypercorn.asyncio.lifespan import Lifespan
    from hypercorn.utils import LifespanFailureError

    if is_installed():
        return
    stock = Lifespan.handle_lifespan

    async def handle_lifespan(self: Any) -> None:
        try:
            check_app(self.app)  # Hypercorn's ASGIWrapper; the walk goes through its ``.app``
        except RuntimeError as exc:
            # What a "lifespan.startup.failed" from the app does: wait_for_startup() returns,
            # then worker_serve() raises this task's exception instead of serving.
            self._started.set()
            self.startup.set()
            self.shutdown.set()
            raise LifespanFailureError("startup", str(exc)) from exc
        await stock(self)

    setattr(handle_lifespan, _PATCHED, True)
    Lifespan.handle_lifespan = handle_lifespan  # type: ignore[method-assign]
