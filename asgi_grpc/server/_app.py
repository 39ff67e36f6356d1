"""The gRPC ASGI application.

:class:`GrpcApp` is a plain ASGI 3 app: serve it with Hypercorn over HTTP/2 (``hypercorn
module:app``), mount it in Starlette, or give it a ``fallback`` ASGI app that gets every request
that is not gRPC (content-type dispatch), so REST and gRPC share one port.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .._core import (
    IDENTITY,
    ProtocolError,
    RequestHead,
    StatusCode,
    is_grpc_content_type,
    is_supported,
    parse_request_headers,
    response_headers,
    trailers,
)
from .._core._web import is_grpc_web_content_type
from .._handlers import CallDetails, GenericHandlerLike, metadata_pairs
from .._wake import loop_inbox
from . import _guard, _hypercorn_install
from ._call import CALL_POOL, ServicerContext
from ._config import ServerConfig
from ._memory import TRIM_EVERY_CALLS, trim_soon, tune_allocator
from ._sync_pool import PoolRunners
from ._types import TRAILERS_ONLY_EXTENSION, ASGIApp, ASGIReceive, ASGISend, Scope
from ._web import GrpcWebConfig, WebCall, preflight_headers

if TYPE_CHECKING:
    from ..transcoding import HttpJson

T = TypeVar("T")

logger = logging.getLogger("asgi_grpc.server")


class GrpcApp:
    """An ASGI application that serves gRPC methods.

    Handlers are registered the grpcio way (``add_generic_rpc_handlers``,
    ``add_registered_method_handlers``, or a generated ``add_XServicer_to_server(servicer, app)``).
    gRPC-Web (``application/grpc-web*``, over HTTP/1.1 or HTTP/2) reaches the same handlers;
    ``grpc_web`` sets it up (CORS included; see :class:`GrpcWebConfig`), ``False`` turns it off.
    ``http_json=True`` (or an ``asgi_grpc.transcoding.HttpJson``) transcodes HTTP/JSON requests
    that match a ``google.api.http`` binding of a registered method (extra ``transcoding``).
    Other requests go to ``fallback`` (a REST app, for example); without one they get
    ``415 Unsupported Media Type``.
    """

    def __init__(
        self,
        handlers: Iterable[GenericHandlerLike] | None = None,
        *,
        interceptors: Sequence[Any] | None = None,
        config: ServerConfig | None = None,
        fallback: ASGIApp | None = None,
        grpc_web: GrpcWebConfig | bool | None = None,
        http_json: bool | HttpJson = False,
    ) -> None:
        # Whatever Hypercorn serves this app in this process gets the gRPC fixes (a no-op for other
        # ASGI servers, which then get the portable code paths).
        _hypercorn_install.install()
        # ...and refuses, at lifespan start-up, an app graph that would drop gRPC's trailers.
        _guard.install()
        # Large messages without a page fault per byte: glibc's thresholds (see _memory).
        tune_allocator()
        self.config = config or ServerConfig()
        self.fallback = fallback
        if grpc_web is None:  # server options (asgi_grpc.grpc_web, asgi_grpc.cors_origins)
            grpc_web = GrpcWebConfig.from_options(self.config.options)
        elif isinstance(grpc_web, bool):
            grpc_web = GrpcWebConfig(enabled=grpc_web)
        self.grpc_web: GrpcWebConfig | None = grpc_web if grpc_web.enabled else None
        self._generic: list[GenericHandlerLike] = list(handlers or ())
        self._registered: dict[str, Any] = {}
        self._interceptors = tuple(interceptors or ())
        self._calls: set[ServicerContext] = set()
        self._ended = 0  # calls ended (only to pace trim_soon)
        self._loop: asyncio.AbstractEventLoop | None = None
        # HTTP/JSON transcoding (``True`` or ``asgi_grpc.transcoding.HttpJson``): the optional
        # `transcoding` extra, imported only when asked for.
        self._http_json: Any = None
        if http_json:
            from ..transcoding import JsonTranscoder

            self._http_json = JsonTranscoder(self, None if http_json is True else http_json)
        self._runners: PoolRunners | None = None  # on config.thread_pool, made on first use
        # The running loop and its inbox's post (asgi_grpc/_wake.py), for sync handlers' results.
        self._inbox: tuple[asyncio.AbstractEventLoop, Callable[..., object]] | None = None

    # ------------------------------------------------------------------ registration (grpcio API)

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[GenericHandlerLike]) -> None:
        for handler in generic_rpc_handlers:
            if not callable(getattr(handler, "service", None)):
                raise AttributeError(  # grpcio's exception type
                    f"{handler!r} must conform to grpc.GenericRpcHandler type but does not have "
                    "a 'service' method"
                )
            self._generic.append(handler)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, Any]
    ) -> None:
        for method, handler in method_handlers.items():
            self._registered[f"/{service_name}/{method}"] = handler

    @property
    def active_rpcs(self) -> int:
        return len(self._calls)

    async def cancel_all(self, wait: float = 1.0) -> None:
        """Cancel every call in flight (they end UNAVAILABLE) and give them ``wait`` s to finish."""
        tasks = [call._task for call in self._calls if call._task is not None]
        for call in list(self._calls):
            call._shutdown()
        if tasks:
            await asyncio.wait(tasks, timeout=wait)

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
        kind = scope["type"]
        if kind == "http":
            content_type = _header(scope["headers"], b"content-type")
            if is_grpc_content_type(content_type):
                await self._handle_grpc(scope, receive, send)
                return
            if self.grpc_web is not None and await self._handle_web(
                scope, receive, send, content_type
            ):
                return
            http_json = self._http_json
            if http_json is not None and await http_json.handle(
                scope, receive, send, owned=self.fallback is None
            ):
                return
            if self.fallback is not None:
                await self.fallback(scope, receive, send)
                return
            await _http_error(
                send, 415, "not a gRPC request: content-type must be application/grpc"
            )
        elif kind == "lifespan":
            if self.fallback is not None:
                await self.fallback(scope, receive, send)
            else:
                await _lifespan(receive, send)
        elif self.fallback is not None:
            await self.fallback(scope, receive, send)

    async def _handle_grpc(self, scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["method"] != "POST":
            await _http_error(send, 405, "gRPC requires POST", [(b"allow", b"POST")])
            return
        if "http.response.trailers" not in scope.get("extensions", {}) or scope.get(
            "http_version"
        ) not in ("2", "3"):
            await _http_error(
                send,
                505,
                "gRPC needs HTTP/2 with trailers: serve this app with Hypercorn over HTTP/2",
            )
            return
        headers = scope["headers"]
        if _header(headers, b"te") != b"trailers":
            await _http_error(send, 400, "gRPC requires the 'te: trailers' request header")
            return
        path = scope.get("raw_path") or scope["path"].encode()
        method = path.decode("utf-8", "replace") if isinstance(path, bytes) else path
        try:
            head = parse_request_headers(headers)
        except ProtocolError as exc:
            await _reject(scope, send, exc.code, exc.message)
            return
        await self._serve(scope, receive, send, method, head)

    async def _handle_web(
        self, scope: Scope, receive: ASGIReceive, send: ASGISend, content_type: bytes | None
    ) -> bool:
        """A gRPC-Web call, or its CORS preflight; False if the request is neither."""
        config = self.grpc_web
        assert config is not None
        headers = scope["headers"]
        if not is_grpc_web_content_type(content_type):
            if scope["method"] != "OPTIONS" or config.cors_origins is None:
                return False
            requested = _header(headers, b"access-control-request-headers")
            if _header(headers, b"access-control-request-method") is None or (
                # With a fallback app, only preflights of gRPC-Web calls are ours.
                self.fallback is not None and b"x-grpc-web" not in (requested or b"").lower()
            ):
                return False
            answer = preflight_headers(config, _header(headers, b"origin"), requested)
            if answer is None:
                await _http_error(send, 403, "origin not allowed")
            else:
                await send({"type": "http.response.start", "status": 204, "headers": answer})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            return True
        assert content_type is not None
        if scope["method"] != "POST":
            await _http_error(send, 405, "gRPC-Web requires POST", [(b"allow", b"POST")])
            return True
        web = WebCall(scope, receive, send, content_type, config, _header(headers, b"origin"))
        path = scope.get("raw_path") or scope["path"].encode()
        method = path.decode("utf-8", "replace") if isinstance(path, bytes) else path
        try:
            head = parse_request_headers(headers)
        except ProtocolError as exc:
            await _reject(web.scope, web.send, exc.code, exc.message)
            return True
        await self._serve(web.scope, web.receive, web.send, method, head)
        return True

    async def _serve(
        self, scope: Scope, receive: ASGIReceive, send: ASGISend, method: str, head: RequestHead
    ) -> None:
        """Find the handler and run the call (gRPC, or gRPC-Web through its adapter)."""
        if head.encoding != IDENTITY and head.encoding not in self.config.enabled_encodings:
            await _reject(
                scope,
                send,
                StatusCode.UNIMPLEMENTED,
                f"Compression algorithm '{head.encoding}' is disabled."
                if is_supported(head.encoding)
                else f"Compression algorithm '{head.encoding}' is not supported",
            )
            return
        try:
            handler = await self._lookup(method, head)
        except Exception as exc:
            # A generic handler's service() or an interceptor raised: the call ends UNKNOWN, as
            # in grpcio (not an HTTP 500), with the details each grpcio API gives.
            logger.exception("Exception servicing handler for %s", method)
            if self.config.blocking_api:
                details = "Error in service handler!"
            else:
                details = f"Unexpected {type(exc)}: {exc}"
            await _reject(scope, send, StatusCode.UNKNOWN, details)
            return
        if handler is None:
            await _reject(scope, send, StatusCode.UNIMPLEMENTED, "Method not found!")
            return
        limit = self.config.maximum_concurrent_rpcs
        calls = self._calls
        if limit is not None and len(calls) >= limit:
            await _reject(
                scope, send, StatusCode.RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!"
            )
            return
        call = ServicerContext(
            self,
            scope,
            receive,
            send,
            method,
            head,
            handler.request_deserializer,
            handler.response_serializer,
        )
        calls.add(call)
        try:
            await call.run(handler)
        finally:
            calls.discard(call)
            self._ended += 1
            if not self._ended % TRIM_EVERY_CALLS:
                trim_soon()  # glibc's heap creeps under steady load; see _memory

    async def _lookup(self, method: str, head: RequestHead) -> Any:
        if not self._interceptors:
            handler = self._registered.get(method)
            if handler is not None:
                return handler
            return self._lookup_generic(CallDetails(method, metadata_pairs(head.metadata)))
        # grpcio hands generic handlers and interceptors the metadata as a tuple of pairs.
        return await self._intercepted(0, CallDetails(method, metadata_pairs(head.metadata)))

    def _lookup_any(self, details: Any) -> Any:
        handler = self._registered.get(details.method)
        return handler if handler is not None else self._lookup_generic(details)

    def _lookup_generic(self, details: Any) -> Any:
        for generic in self._generic:
            handler = generic.service(details)
            if handler is not None:
                return handler
        return None

    async def _intercepted(self, index: int, details: Any) -> Any:
        """Run interceptor ``index`` with a continuation to the next one (or to the lookup)."""
        if index == len(self._interceptors):
            return self._lookup_any(details)
        interceptor = self._interceptors[index]
        if inspect.iscoroutinefunction(interceptor.intercept_service):

            async def continuation(next_details: Any) -> Any:
                return await self._intercepted(index + 1, next_details)

            return await interceptor.intercept_service(continuation, details)

        # A grpc-style (sync) interceptor gets a sync continuation; the rest of the chain after it
        # must then be sync as well.
        def sync_continuation(next_details: Any) -> Any:
            return self._sync_intercepted(index + 1, next_details)

        result = interceptor.intercept_service(sync_continuation, details)
        if inspect.isawaitable(result):
            return await result
        return result

    def _sync_intercepted(self, index: int, details: Any) -> Any:
        if index == len(self._interceptors):
            return self._lookup_any(details)
        interceptor = self._interceptors[index]
        return interceptor.intercept_service(
            lambda next_details: self._sync_intercepted(index + 1, next_details), details
        )

    # ------------------------------------------------------------------ helpers for calls

    def response_encoding(self, head: RequestHead) -> str:
        encoding = self.config.compression
        if encoding != IDENTITY and encoding in head.accept_encoding:
            return encoding
        return IDENTITY

    def run_sync(self, fn: Callable[..., T], *args: Any) -> Awaitable[T]:
        """Run a blocking behaviour on the call's ``experimental_thread_pool`` (see CALL_POOL),
        else on the server's thread pool (or the loop's default one), in a copy of the call's
        context: what a server interceptor put in a ContextVar, the sync handler sees (grpcio
        runs a call's interceptors and handler in one context)."""
        loop = asyncio.get_running_loop()
        run = contextvars.copy_context().run
        inbox = self._inbox
        if inbox is None or inbox[0] is not loop:
            inbox = self._inbox = (loop, loop_inbox(loop).post)
        own_pool = CALL_POOL.get()
        if own_pool is not None:
            return _submit(loop, inbox[1], own_pool.submit, run, fn, *args)
        pool = self.config.thread_pool
        if pool is None:
            return loop.run_in_executor(None, run, fn, *args)
        runners = self._runners
        if runners is None or runners.pool is not pool:
            runners = self._runners = PoolRunners(pool)
        return _submit(loop, inbox[1], runners.submit, run, fn, *args)


def _submit(
    loop: asyncio.AbstractEventLoop,
    post: Callable[..., object],
    submit: Callable[[Callable[[], None]], Any],
    fn: Callable[..., T],
    *args: Any,
) -> asyncio.Future[T]:
    """``fn(*args)`` through ``submit`` (a pool's, or its PoolRunners'), its outcome reported
    back to the loop by the worker itself, through the loop's inbox (``post``,
    asgi_grpc/_wake.py).

    Leaner than ``run_in_executor`` (no concurrent future chained to an asyncio one through
    callbacks and locks on both threads). Also what a behaviour's own pool needs: grpc ignores
    what ``submit`` returns, so such pools need not return a Future (grpcio's own tests use one
    whose ``submit`` returns None). As with ``run_in_executor``, a call cancelled before its
    turn comes never runs its handler."""
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():  # (the call may have been cancelled meanwhile)
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def work() -> None:
        if future.cancelled():  # (a read of the future's state: safe from any thread)
            return
        outcome: tuple[bool, Any]
        try:
            outcome = (True, fn(*args))
        except BaseException as exc:  # handed to the loop, raised there
            outcome = (False, exc)
        try:  # noqa: SIM105 (once per call: see asgi_grpc/_wake.py on suppress)
            post(settle, *outcome)
        except RuntimeError:  # the loop closed meanwhile: nobody waits
            pass

    submit(work)
    return future


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


async def _reject(scope: Scope, send: ASGISend, code: StatusCode, message: str) -> None:
    """End a call before it started: a trailers-only response where the server can send one."""
    status = trailers(code, message)
    if TRAILERS_ONLY_EXTENSION in scope.get("extensions", {}):
        await send(
            {"type": "http.response.trailers", "headers": response_headers(IDENTITY) + status}
        )
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": response_headers(IDENTITY),
            "trailers": True,
        }
    )
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    await send({"type": "http.response.trailers", "headers": status, "more_trailers": False})


async def _http_error(
    send: ASGISend, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = message.encode() + b"\n"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
    ]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _lifespan(receive: ASGIReceive, send: ASGISend) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
