"""The server half of the in-memory transport: what Hypercorn does for an ASGI app, minus sockets.

:class:`AppServer` holds the app, builds each request's ASGI scope the way Hypercorn builds it for
HTTP/2 (with asgi_grpc's trailers-only extension), and runs the app's lifespan if asked. The
per-request half (receive / send) is :class:`~._connection.Exchange`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal
from urllib.parse import unquote

from .._core import Headers
from ..server._types import TRAILERS_ONLY_EXTENSION, ASGIApp, Message, Scope

__all__ = ["AppServer", "LifespanError", "LifespanMode"]

logger = logging.getLogger("asgi_grpc.testing")

#: ``True``: run the lifespan and fail if the app does not complete it; ``"auto"``: run it and
#: carry on without it if the app does not support lifespan (Hypercorn's behaviour); ``False``:
#: never send lifespan events (httpx.ASGITransport's behaviour).
LifespanMode = bool | Literal["auto"]

# The request extensions of a Hypercorn HTTP/2 request that this transport implements, plus
# asgi_grpc's (trailers sent before ``http.response.start`` are a trailers-only response).
_EXTENSIONS = ("http.response.trailers", "http.response.early_hint", TRAILERS_ONLY_EXTENSION)


class LifespanError(RuntimeError):
    """The app's lifespan startup or shutdown failed (or the app does not support lifespan,
    when it was required)."""


class AppServer:
    """An ASGI app served in memory: scopes, lifespan, and the per-request state copy."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        lifespan: LifespanMode = False,
        client: tuple[str, int] | None = ("127.0.0.1", 123),
        server: tuple[str, int] | None = ("127.0.0.1", 80),
        root_path: str = "",
        request_window: int = 1024 * 1024,
        lifespan_timeout: float = 60.0,
    ) -> None:
        if request_window <= 0:
            raise ValueError("request_window must be positive")
        self.app = app
        self.lifespan = lifespan
        self.client = client
        self.server = server
        self.root_path = root_path
        # How many request body bytes a stream buffers before its sender waits for the app to
        # read (an HTTP/2 server's stream receive window; asgi_grpc's Hypercorn announces 1 MiB).
        self.request_window = request_window
        self.lifespan_timeout = lifespan_timeout
        #: The lifespan state (ASGI ``scope["state"]``); each request gets a shallow copy.
        self.state: dict[str, Any] = {}
        self._lifespan_task: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Message] | None = None
        self._started: asyncio.Future[None] | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._supported = True
        self._shut_down = False

    def __repr__(self) -> str:
        return f"<AppServer {self.app!r}>"

    # -- requests ----------------------------------------------------------------------------

    def scope(self, headers: Headers) -> Scope:
        """The ASGI scope of an HTTP/2 request with these header fields (pseudo-headers
        first), as Hypercorn builds it: ``:authority`` becomes a leading ``host`` header."""
        method = "GET"
        path = b"/"
        scheme = "http"
        authority = b""
        fields: Headers = [(b"host", b"")]
        for name, value in headers:
            if name[:1] != b":":
                fields.append((name, value))
            elif name == b":method":
                method = value.decode("latin-1").upper()
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            elif name == b":scheme":
                scheme = value.decode("latin-1")
        fields[0] = (b"host", authority)
        raw_path, _, query_string = path.partition(b"?")
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.1"},
            "http_version": "2",
            "method": method,
            "scheme": scheme,
            "path": unquote(raw_path.decode("latin-1")),
            "raw_path": raw_path,
            "query_string": query_string,
            "root_path": self.root_path,
            "headers": fields,
            "client": self.client,
            "server": self.server,
            "state": self.state.copy(),
            "extensions": {name: {} for name in _EXTENSIONS},
        }

    # -- lifespan ----------------------------------------------------------------------------

    async def startup(self) -> None:
        """Run the lifespan startup (once; later calls wait for the first). No-op when the
        lifespan is off. Raises :class:`LifespanError` if it fails."""
        if self.lifespan is False:
            return
        if self._shut_down:
            raise LifespanError("the app has been shut down")
        if self._started is None:
            loop = asyncio.get_running_loop()
            self._started = loop.create_future()
            self._stopped = loop.create_future()
            self._queue = asyncio.Queue()
            self._queue.put_nowait({"type": "lifespan.startup"})
            self._lifespan_task = loop.create_task(self._run_lifespan())
        try:
            await asyncio.wait_for(asyncio.shield(self._started), self.lifespan_timeout)
        except asyncio.TimeoutError:
            raise LifespanError(
                f"lifespan startup did not complete within {self.lifespan_timeout}s"
            ) from None

    async def shutdown(self) -> None:
        """Run the lifespan shutdown, if the startup ran. Raises :class:`LifespanError` if it
        fails."""
        if self._shut_down:
            return
        self._shut_down = True
        task, stopped, queue = self._lifespan_task, self._stopped, self._queue
        if task is None or stopped is None or queue is None:
            return
        try:
            if self._supported and not task.done():
                queue.put_nowait({"type": "lifespan.shutdown"})
                try:
                    await asyncio.wait_for(asyncio.shield(stopped), self.lifespan_timeout)
                except asyncio.TimeoutError:
                    raise LifespanError(
                        f"lifespan shutdown did not complete within {self.lifespan_timeout}s"
                    ) from None
            elif stopped.done() and not stopped.cancelled():
                stopped.exception()  # retrieved: there is nothing to report after a failed start
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run_lifespan(self) -> None:
        started, stopped, queue = self._started, self._stopped, self._queue
        assert started is not None
        assert stopped is not None
        assert queue is not None
        scope: Scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }

        async def receive() -> Message:
            return await queue.get()

        async def send(message: Message) -> None:
            kind = message["type"]
            if kind == "lifespan.startup.complete":
                _resolve(started)
            elif kind == "lifespan.startup.failed":
                _fail(started, f"lifespan startup failed: {message.get('message', '')}")
            elif kind == "lifespan.shutdown.complete":
                _resolve(stopped)
            elif kind == "lifespan.shutdown.failed":
                _fail(stopped, f"lifespan shutdown failed: {message.get('message', '')}")
            else:
                raise LifespanError(f"unexpected lifespan message {kind!r}")

        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not started.done():
                self._supported = False
                if self.lifespan == "auto":
                    # As Hypercorn: an app that raises on the lifespan scope has no lifespan.
                    logger.debug("the app does not support lifespan (%r); continuing", exc)
                    _resolve(started)
                else:
                    _fail(started, f"lifespan startup failed: {exc!r}", exc)
            elif not stopped.done():
                _fail(stopped, f"lifespan shutdown failed: {exc!r}", exc)
            else:
                logger.exception("the app's lifespan raised after shutdown")
        finally:
            if not started.done():
                # The app returned without answering the startup.
                self._supported = False
                if self.lifespan == "auto":
                    _resolve(started)
                else:
                    _fail(started, "the app returned without completing lifespan startup")
            _resolve(stopped)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail(future: asyncio.Future[None], message: str, cause: BaseException | None = None) -> None:
    if not future.done():
        error = LifespanError(message)
        error.__cause__ = cause
        future.set_exception(error)
