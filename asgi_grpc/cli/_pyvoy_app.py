"""The app of ``asgi-grpc serve --server pyvoy``: Envoy's embedded Python imports
``asgi_grpc.cli._pyvoy_app:app`` (pyvoy takes a ``module:attribute`` name, not a factory), built
from the serve settings ``asgi-grpc serve`` put in the environment (:data:`_serve.ENV`)."""

from __future__ import annotations

import asyncio
from typing import Any

from ..server._types import ASGIApp, ASGIReceive, ASGISend, Scope
from ._serve import load_app


class ShieldedReceive:
    """pyvoy 1.3 completes a ``receive()`` future even after the app cancelled its await, and
    the event loop logs ``InvalidStateError`` with a traceback each time. asgi_grpc cancels a
    call's disconnect watcher (a pending ``receive()``) whenever a call ends, so without this
    every call would log one. The shield leaves pyvoy's future alone; pyvoy completes it when the
    stream ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def shielded() -> Any:
            return await asyncio.shield(receive())

        await self.app(scope, shielded, send)


app: ASGIApp = ShieldedReceive(load_app())
