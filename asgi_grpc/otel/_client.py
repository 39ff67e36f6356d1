"""Client interceptors: a CLIENT span and an ``rpc.client.duration`` measurement per call, and
the trace context injected into the call's metadata.

The span starts when the call does (its parent is the span current at that moment) and ends when
the call is done, from the call's done callback: for streaming calls that is when the response
stream ends or the call is cancelled, whoever reads it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from .._core import Metadata, StatusCode
from ..client._interceptors import (
    ClientCallDetails,
    StreamStreamClientInterceptor,
    StreamUnaryClientInterceptor,
    UnaryStreamClientInterceptor,
    UnaryUnaryClientInterceptor,
)
from ._common import Attributes, Instruments, finish, message_event, method_attributes
from ._common import parse_authority as _parse_authority

__all__ = ["AioClientInterceptor", "ClientInterceptor"]

# Tasks that read a finished aio call's status: held here so they are not collected mid-way.
_PENDING: set[asyncio.Task[None]] = set()


class _Call:
    """One call's span and measurement."""

    __slots__ = ("attributes", "instruments", "span", "started", "unary_response")

    def __init__(
        self, instruments: Instruments, method: str, server: Attributes, unary: tuple[bool, bool]
    ) -> None:
        name, attributes = method_attributes(method)
        attributes.update(server)
        self.attributes = attributes
        self.instruments = instruments
        self.span = instruments.tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=dict(attributes)
        )
        self.started = time.perf_counter()
        self.unary_response = unary[1] and instruments.events
        if unary[0] and instruments.events:
            message_event(self.span, "SENT", 1)

    def headers(self) -> list[tuple[str, str]]:
        """The trace context as metadata (``traceparent``, ``tracestate``...)."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(self.span))
        return list(carrier.items())

    def end(self, code: StatusCode, details: str | None) -> None:
        if code is StatusCode.OK and self.unary_response:
            message_event(self.span, "RECEIVED", 1)
        ended = time.perf_counter()
        finish(
            self.span, self.instruments, self.attributes, self.started, ended, code, details, None
        )

    def failed(self, exc: BaseException) -> None:
        """The chain raised instead of returning a call."""
        code = _code_of(exc)
        if code is StatusCode.UNKNOWN:
            self.span.record_exception(exc)
        self.end(code, str(exc))


def _code_of(exc: BaseException) -> StatusCode:
    if isinstance(exc, asyncio.CancelledError):
        return StatusCode.CANCELLED
    code = getattr(exc, "code", None)
    value = code() if callable(code) else None
    return value if isinstance(value, StatusCode) else _coerce(value)


def _coerce(value: Any) -> StatusCode:
    """Our StatusCode from grpcio's (same names) or anything else (UNKNOWN)."""
    name = getattr(value, "name", None)
    return (
        StatusCode[name]
        if isinstance(name, str) and name in StatusCode.__members__
        else (StatusCode.UNKNOWN)
    )


def _merged(metadata: Any, extra: list[tuple[str, str]]) -> list[tuple[str, Any]]:
    names = {key for key, _ in extra}
    kept = [(k, v) for k, v in (metadata or ()) if k not in names]
    return kept + extra


class _Client:
    def __init__(
        self, target: str | None, tracer_provider: Any, meter_provider: Any, events: bool
    ) -> None:
        self._instruments = Instruments("client", tracer_provider, meter_provider, events)
        self._server = _parse_authority(target) if target else {}

    def _start(self, method: Any, unary: tuple[bool, bool]) -> _Call:
        if isinstance(method, bytes):
            method = method.decode("ascii")
        return _Call(self._instruments, method, self._server, unary)


class AioClientInterceptor(
    _Client,
    UnaryUnaryClientInterceptor,
    UnaryStreamClientInterceptor,
    StreamUnaryClientInterceptor,
    StreamStreamClientInterceptor,
):
    """OpenTelemetry for ``asgi_grpc.aio`` channels: pass it in ``interceptors=[...]``.

    ``target`` (the channel's) gives the spans and measurements ``server.address`` and
    ``server.port``; the interceptor cannot see the channel it is given to.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        message_events: bool = False,
    ) -> None:
        super().__init__(target, tracer_provider, meter_provider, message_events)

    async def _intercept(
        self, continuation: Callable[..., Any], details: Any, request: Any, unary: tuple[bool, bool]
    ) -> Any:
        call = self._start(details.method, unary)
        metadata = Metadata(*_merged(details.metadata, call.headers()))
        if hasattr(details, "_replace"):
            details = details._replace(metadata=metadata)
        else:
            details = ClientCallDetails(
                details.method, details.timeout, metadata, details.credentials,
                details.wait_for_ready,
            )  # fmt: skip
        try:
            result = await continuation(details, request)
        except BaseException as exc:
            call.failed(exc)
            raise
        if callable(getattr(result, "add_done_callback", None)):
            result.add_done_callback(lambda done: _read_status(done, call))
        else:  # an interceptor further in answered without a call
            call.end(StatusCode.OK, None)
        return result

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: ClientCallDetails, request: Any
    ) -> Any:
        return await self._intercept(continuation, client_call_details, request, (True, True))

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: ClientCallDetails, request: Any
    ) -> Any:
        return await self._intercept(continuation, client_call_details, request, (True, False))

    async def intercept_stream_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await self._intercept(
            continuation, client_call_details, request_iterator, (False, True)
        )

    async def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await self._intercept(
            continuation, client_call_details, request_iterator, (False, False)
        )


def _read_status(done: Any, call: _Call) -> None:
    """A done callback: grpc.aio gives the status through coroutines, read in a task."""

    async def read() -> None:
        call.end(_coerce(await done.code()), await done.details())

    task = asyncio.get_running_loop().create_task(read())
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)


class _SyncDetails(NamedTuple):
    """grpc.ClientCallDetails, with the metadata that carries the trace context."""

    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class ClientInterceptor(_Client):
    """OpenTelemetry for blocking channels: ``asgi_grpc.intercept_channel(channel,
    ClientInterceptor(target))``, all four kinds."""

    def __init__(
        self,
        target: str | None = None,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        message_events: bool = False,
    ) -> None:
        super().__init__(target, tracer_provider, meter_provider, message_events)

    def _intercept(
        self, continuation: Callable[..., Any], details: Any, request: Any, unary: tuple[bool, bool]
    ) -> Any:
        call = self._start(details.method, unary)
        details = _SyncDetails(
            details.method,
            details.timeout,
            _merged(details.metadata, call.headers()),
            getattr(details, "credentials", None),
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )
        try:
            result = continuation(details, request)
        except BaseException as exc:
            call.failed(exc)
            raise
        if callable(getattr(result, "add_done_callback", None)):
            result.add_done_callback(lambda done: call.end(_coerce(done.code()), done.details()))
        else:
            call.end(StatusCode.OK, None)
        return result

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return self._intercept(continuation, client_call_details, request, (True, True))

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return self._intercept(continuation, client_call_details, request, (True, False))

    def intercept_stream_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request_iterator: Any
    ) -> Any:
        return self._intercept(continuation, client_call_details, request_iterator, (False, True))

    def intercept_stream_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request_iterator: Any
    ) -> Any:
        return self._intercept(continuation, client_call_details, request_iterator, (False, False))
