"""A real server for tests: Hypercorn (asgi_grpc's config and fixes) on 127.0.0.1, any free port.

The socket is bound and listening before Hypercorn starts, so the port is known at once and
connections wait in the backlog; the block starts once the app's lifespan startup is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..client._channel import Channel as AioChannel
from ..client._channel import insecure_channel
from ..server import _hypercorn, _hypercorn_install
from ..server._types import ASGIApp, ASGIReceive, ASGISend, Message, Scope

__all__ = ["LiveServer", "serve"]

#: How long the server may take to start (lifespan included) or to stop.
TIMEOUT = 30.0


@dataclass(frozen=True)
class LiveServer:
    """Where :func:`serve` listens."""

    host: str
    port: int

    @property
    def target(self) -> str:
        """The gRPC target: ``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The base URL for REST calls."""
        return f"http://{self.host}:{self.port}"

    def channel(self, **kwargs: Any) -> AioChannel:
        """An ``asgi_grpc.aio.insecure_channel`` to this server (keyword arguments go to it)."""
        return insecure_channel(self.target, **kwargs)


@contextlib.asynccontextmanager
async def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    graceful_timeout: float = 3.0,
    settings: dict[str, Any] | None = None,
    alpn: Sequence[str] | None = None,
) -> AsyncIterator[LiveServer]:
    """``async with serve(app) as server:`` serves ``app`` with Hypercorn over cleartext HTTP/2
    (and HTTP/1.1) on ``host`` and a free port until the block ends, lifespan included (an app
    without lifespan support is served anyway, as Hypercorn does). ``settings`` are
    :func:`~asgi_grpc.server.grpc_config` overrides."""
    from hypercorn.asyncio import serve as hypercorn_serve

    _hypercorn_install.install()  # our HTTP/2 fixes, whatever app this is
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        overrides: dict[str, Any] = {"graceful_timeout": graceful_timeout, **(settings or {})}
        if alpn is not None:
            overrides["alpn_protocols"] = list(alpn)
        config = _hypercorn.grpc_config(bind=[f"fd://{sock.fileno()}"], **overrides)
    except BaseException:
        sock.close()
        raise
    sock.detach()  # Hypercorn owns the descriptor now
    started = asyncio.Event()

    async def observed(scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] in ("lifespan.startup.complete", "lifespan.startup.failed"):
                started.set()
            await send(message)

        try:
            await app(scope, receive, watch)
        finally:
            started.set()  # no lifespan support: Hypercorn carries on without it

    stop = asyncio.Event()
    task = asyncio.ensure_future(hypercorn_serve(observed, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    ready = asyncio.ensure_future(started.wait())
    try:
        await asyncio.wait([task, ready], timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ready.cancel()
    if task.done():
        task.result()  # the startup failure
        raise RuntimeError("the server stopped while starting")
    if not started.is_set():
        stop.set()
        await asyncio.wait([task], timeout=TIMEOUT)
        raise RuntimeError(f"the server did not start within {TIMEOUT}s")
    try:
        yield LiveServer(host, port)
    finally:
        stop.set()
        done, _ = await asyncio.wait([task], timeout=TIMEOUT + graceful_timeout)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        else:
            task.result()
