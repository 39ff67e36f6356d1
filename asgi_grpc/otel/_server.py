"""Server interceptors: a SERVER span and an ``rpc.server.duration`` measurement per call.

The interceptor wraps the method handler's behaviour in one of the same shape (coroutine
function, async generator function, plain function or generator function), because the server
picks how to run a behaviour by its shape. The span is current while the behaviour runs (on the
event loop or on its worker thread), so spans the servicer starts are its children.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from .._core import StatusCode
from .._handlers import (
    HandlerCallDetails,
    RpcMethodHandler,
    stream_stream_rpc_method_handler,
    stream_unary_rpc_method_handler,
    unary_stream_rpc_method_handler,
    unary_unary_rpc_method_handler,
)
from .._interceptors import AioServerInterceptor as _AioBase
from .._interceptors import ServerInterceptor as _SyncBase
from ._common import (
    SERVER_ERRORS,
    Attributes,
    Instruments,
    address_attributes,
    finish,
    message_event,
    method_attributes,
    parse_peer,
)

__all__ = ["AioServerInterceptor", "ServerInterceptor"]

_FACTORIES = {
    "unary_unary": unary_unary_rpc_method_handler,
    "unary_stream": unary_stream_rpc_method_handler,
    "stream_unary": stream_unary_rpc_method_handler,
    "stream_stream": stream_stream_rpc_method_handler,
}


class _Tracing:
    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        message_events: bool = False,
    ) -> None:
        self._instruments = Instruments("server", tracer_provider, meter_provider, message_events)

    def _wrap(self, handler: RpcMethodHandler | None, method: str) -> RpcMethodHandler | None:
        if handler is None:
            return None  # UNIMPLEMENTED, answered by the server before any behaviour runs
        for kind in _FACTORIES:
            behavior = getattr(handler, kind, None)
            if behavior is not None:
                break
        else:
            return handler
        if getattr(behavior, "experimental_non_blocking", False):
            return handler  # it ends through a callback we do not see
        wrapped = _wrap_behavior(
            behavior, self._instruments, method, kind.startswith("stream"), kind.endswith("stream")
        )
        return _FACTORIES[kind](wrapped, handler.request_deserializer, handler.response_serializer)


class AioServerInterceptor(_Tracing, _AioBase):
    """OpenTelemetry for ``asgi_grpc.aio.server`` (and ``asgi_grpc.server``)."""

    async def intercept_service(
        self,
        continuation: Callable[[HandlerCallDetails], Awaitable[RpcMethodHandler | None]],
        handler_call_details: HandlerCallDetails,
    ) -> RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        return self._wrap(handler, handler_call_details.method)


class ServerInterceptor(_Tracing, _SyncBase):
    """OpenTelemetry for ``asgi_grpc.server`` in a chain of grpc-style (sync) interceptors."""

    def intercept_service(
        self,
        continuation: Callable[[HandlerCallDetails], RpcMethodHandler | None],
        handler_call_details: HandlerCallDetails,
    ) -> RpcMethodHandler | None:
        return self._wrap(continuation(handler_call_details), handler_call_details.method)


class _Call:
    """One call's span and measurement, from the behaviour's start to its end."""

    __slots__ = ("attributes", "context", "instruments", "received", "sent", "span", "started")

    def __init__(self, instruments: Instruments, method: str, context: Any) -> None:
        name, attributes = method_attributes(method)
        self.attributes = attributes
        server = _server_address(context)
        attributes.update(server)
        carrier = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        parent = propagate.extract(carrier)
        peer = parse_peer(context.peer())
        if "network.transport" in peer:  # a unix socket's server has no address in the scope
            attributes.setdefault("network.transport", peer["network.transport"])
        span_attributes = {**attributes, **peer}
        self.span = instruments.tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=span_attributes
        )
        self.instruments = instruments
        self.context = context
        self.received = 0
        self.sent = 0
        self.started = time.perf_counter()

    def enter(self) -> object:
        return otel_context.attach(trace.set_span_in_context(self.span))

    def got(self) -> None:
        self.received += 1
        message_event(self.span, "RECEIVED", self.received)

    def put(self) -> None:
        if not self.instruments.events:
            return
        self.sent += 1
        message_event(self.span, "SENT", self.sent)

    def exit(self, token: object, exc: BaseException | None) -> None:
        otel_context.detach(token)  # type: ignore[arg-type]
        ended = time.perf_counter()
        context = self.context
        code = context.code()
        details = context.details()
        if exc is not None and (code is None or code is StatusCode.OK):
            if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
                remaining = context.time_remaining()
                code = (
                    StatusCode.DEADLINE_EXCEEDED
                    if remaining is not None and remaining <= 0
                    else StatusCode.CANCELLED
                )
            else:  # an unexpected error: the server answers UNKNOWN
                self.span.record_exception(exc)
                code = StatusCode.UNKNOWN
                details = f"Unexpected {type(exc)}: {exc}"
        if not isinstance(code, StatusCode):
            code = StatusCode.OK
        finish(
            self.span, self.instruments, self.attributes, self.started, ended, code, details,
            SERVER_ERRORS,
        )  # fmt: skip


def _server_address(context: Any) -> Attributes:
    """``server.*`` from the ASGI scope: the address the call came in on."""
    scope = getattr(context, "_scope", None)
    server = scope.get("server") if isinstance(scope, dict) else None
    if not server:
        return {}
    host, port = server[0], server[1]
    return address_attributes("server", str(host), port)


def _wrap_behavior(
    behavior: Callable[..., Any],
    instruments: Instruments,
    method: str,
    request_streaming: bool,
    response_streaming: bool,
) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):

        async def async_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            call = _Call(instruments, method, context)
            token = call.enter()
            error: BaseException | None = None
            responses = behavior(_arequests(request, call, request_streaming), context)
            try:
                async for response in responses:
                    call.put()
                    yield response
            except BaseException as exc:
                error = exc
                raise
            finally:
                try:
                    await responses.aclose()
                finally:
                    call.exit(token, error)

        return async_stream

    if inspect.iscoroutinefunction(behavior):

        async def coroutine(request: Any, context: Any) -> Any:
            call = _Call(instruments, method, context)
            token = call.enter()
            error: BaseException | None = None
            try:
                response = await behavior(_arequests(request, call, request_streaming), context)
                if not response_streaming:
                    call.put()
                return response
            except BaseException as exc:
                error = exc
                raise
            finally:
                call.exit(token, error)

        return coroutine

    if response_streaming:

        def sync_stream(request: Any, context: Any) -> Iterator[Any]:
            call = _Call(instruments, method, context)
            token = call.enter()
            error: BaseException | None = None
            try:
                responses = behavior(_requests(request, call, request_streaming), context)
                for response in responses if responses is not None else ():
                    call.put()
                    yield response
            except BaseException as exc:
                error = exc
                raise
            finally:
                call.exit(token, error)

        return sync_stream

    def function(request: Any, context: Any) -> Any:
        call = _Call(instruments, method, context)
        token = call.enter()
        error: BaseException | None = None
        try:
            response = behavior(_requests(request, call, request_streaming), context)
            call.put()
            return response
        except BaseException as exc:
            error = exc
            raise
        finally:
            call.exit(token, error)

    return function


def _arequests(request: Any, call: _Call, streaming: bool) -> Any:
    if not call.instruments.events:
        return request
    if not streaming:
        call.got()
        return request
    return _AsyncRequests(request, call)


def _requests(request: Any, call: _Call, streaming: bool) -> Any:
    if not call.instruments.events:
        return request
    if not streaming:
        call.got()
        return request
    return _Requests(request, call)


class _AsyncRequests:
    """The request stream, counted (a class, not an async generator: nothing to finalize)."""

    __slots__ = ("_call", "_source")

    def __init__(self, source: Any, call: _Call) -> None:
        self._source = source.__aiter__()
        self._call = call

    def __aiter__(self) -> _AsyncRequests:
        return self

    async def __anext__(self) -> Any:
        message = await self._source.__anext__()
        self._call.got()
        return message


class _Requests:
    __slots__ = ("_call", "_source")

    def __init__(self, source: Any, call: _Call) -> None:
        self._source = iter(source)
        self._call = call

    def __iter__(self) -> _Requests:
        return self

    def __next__(self) -> Any:
        message = next(self._source)
        self._call.got()
        return message
