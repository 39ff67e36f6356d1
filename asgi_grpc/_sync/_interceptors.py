"""Sync client interceptors: ``intercept_channel(channel, *interceptors)``, with grpc's semantics.

Each interceptor wraps the channel in a layer; a multi-callable of a layer whose interceptor
handles that kind of call runs ``interceptor.intercept_<kind>(continuation, details, request)``,
where ``continuation(details, request)`` makes the call on the layer below with whatever details
the interceptor passes on. As in grpc, a unary continuation returns an object that is a
``grpc.Call`` and a ``grpc.Future`` (an RpcError if the call failed), and a streaming
continuation returns the response iterator. Interceptors are matched by the method they define,
so grpcio's interceptor base classes work as well as ours.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, NamedTuple

from .._core import Compression, StatusCode
from .._errors import RpcError
from . import _abc


class _Details(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Compression | None


class _ClientCallDetails(_Details, _abc.ClientCallDetails):
    """What an interceptor gets: grpc.ClientCallDetails as a namedtuple."""


_FIELDS = _Details._fields


def _unwrap(details: Any, default: _ClientCallDetails) -> dict[str, Any]:
    """The fields of whatever the interceptor passed on; missing ones keep their old value."""
    values = {field: getattr(details, field, getattr(default, field)) for field in _FIELDS}
    method = values["method"]
    if isinstance(method, bytes):
        values["method"] = method.decode("ascii")
    return values


def _call_kwargs(values: dict[str, Any]) -> dict[str, Any]:
    return {field: values[field] for field in _FIELDS if field != "method"}


class _UnaryOutcome(_abc.Call, _abc.Future):
    """A unary call that ended OK, as the continuation hands it to the interceptor."""

    def __init__(self, response: Any, call: Any) -> None:
        self._response = response
        self._call = call

    def initial_metadata(self) -> Any:
        return self._call.initial_metadata()

    def trailing_metadata(self) -> Any:
        return self._call.trailing_metadata()

    def code(self) -> StatusCode:
        return self._call.code()  # type: ignore[no-any-return]

    def details(self) -> str | None:
        return self._call.details()  # type: ignore[no-any-return]

    def is_active(self) -> bool:
        return self._call.is_active()  # type: ignore[no-any-return]

    def time_remaining(self) -> float | None:
        return self._call.time_remaining()  # type: ignore[no-any-return]

    def cancel(self) -> bool:
        return self._call.cancel()  # type: ignore[no-any-return]

    def add_callback(self, callback: Callable[[], Any]) -> bool:
        return self._call.add_callback(callback)  # type: ignore[no-any-return]

    def cancelled(self) -> bool:
        return False

    def running(self) -> bool:
        return False

    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> Any:
        return self._response

    def exception(self, timeout: float | None = None) -> None:
        return None

    def traceback(self, timeout: float | None = None) -> None:
        return None

    def add_done_callback(self, fn: Callable[[Any], Any]) -> None:
        fn(self)


class _FailureOutcome(RpcError, _abc.Call, _abc.Future, Iterator[Any]):
    """An interceptor (or its continuation) raised something that is not an RpcError."""

    def __init__(self, exception: BaseException, traceback: TracebackType | None) -> None:
        super().__init__()
        self._exception = exception
        self._traceback = traceback

    def initial_metadata(self) -> Any:
        return None

    def trailing_metadata(self) -> Any:
        return None

    def code(self) -> StatusCode:
        return StatusCode.INTERNAL

    def details(self) -> str:
        return "Exception raised while intercepting the RPC"

    def cancel(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:
        return None

    def running(self) -> bool:
        return False

    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> Any:
        raise self._exception

    def exception(self, timeout: float | None = None) -> BaseException:
        return self._exception

    def traceback(self, timeout: float | None = None) -> TracebackType | None:
        return self._traceback

    def add_callback(self, callback: Callable[[], Any]) -> bool:
        return False

    def add_done_callback(self, fn: Callable[[Any], Any]) -> None:
        fn(self)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        raise self._exception


Thunk = Callable[[str], Any]  # method name -> the layer below's multi-callable


class _Intercepted:
    def __init__(self, thunk: Thunk, method: str, interceptor: Any) -> None:
        self._thunk = thunk
        self._method = method
        self._interceptor = interceptor

    def _details(self, **kwargs: Any) -> _ClientCallDetails:
        return _ClientCallDetails(self._method, **kwargs)


class _UnaryResponse(_Intercepted):
    _intercept: str

    def _with_call(self, request: Any, **kwargs: Any) -> tuple[Any, Any]:
        default = self._details(**kwargs)

        def continuation(new_details: Any, new_request: Any) -> Any:
            values = _unwrap(new_details, default)
            try:
                response, call = self._thunk(values["method"]).with_call(
                    new_request, **_call_kwargs(values)
                )
            except RpcError as error:
                return error
            except Exception as exc:
                return _FailureOutcome(exc, sys.exc_info()[2])
            return _UnaryOutcome(response, call)

        call = getattr(self._interceptor, self._intercept)(continuation, default, request)
        return call.result(), call

    def _future(self, request: Any, **kwargs: Any) -> Any:
        default = self._details(**kwargs)

        def continuation(new_details: Any, new_request: Any) -> Any:
            values = _unwrap(new_details, default)
            return self._thunk(values["method"]).future(new_request, **_call_kwargs(values))

        try:
            return getattr(self._interceptor, self._intercept)(continuation, default, request)
        except Exception as exc:
            return _FailureOutcome(exc, sys.exc_info()[2])


class _StreamResponse(_Intercepted):
    _intercept: str

    def _stream(self, request: Any, **kwargs: Any) -> Any:
        default = self._details(**kwargs)

        def continuation(new_details: Any, new_request: Any) -> Any:
            values = _unwrap(new_details, default)
            return self._thunk(values["method"])(new_request, **_call_kwargs(values))

        try:
            return getattr(self._interceptor, self._intercept)(continuation, default, request)
        except Exception as exc:
            return _FailureOutcome(exc, sys.exc_info()[2])


class _UnaryUnary(_UnaryResponse, _abc.UnaryUnaryMultiCallable):
    _intercept = "intercept_unary_unary"

    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> Any:
        return self._with_call(
            request,
            timeout=timeout,
            metadata=metadata,
            credentials=credentials,
            wait_for_ready=wait_for_ready,
            compression=compression,
        )[0]

    def with_call(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> tuple[Any, Any]:
        return self._with_call(
            request,
            timeout=timeout,
            metadata=metadata,
            credentials=credentials,
            wait_for_ready=wait_for_ready,
            compression=compression,
        )

    def future(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> Any:
        return self._future(
            request,
            timeout=timeout,
            metadata=metadata,
            credentials=credentials,
            wait_for_ready=wait_for_ready,
            compression=compression,
        )


class _StreamUnary(_UnaryUnary, _abc.StreamUnaryMultiCallable):
    _intercept = "intercept_stream_unary"


class _UnaryStream(_StreamResponse, _abc.UnaryStreamMultiCallable):
    _intercept = "intercept_unary_stream"

    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> Any:
        return self._stream(
            request,
            timeout=timeout,
            metadata=metadata,
            credentials=credentials,
            wait_for_ready=wait_for_ready,
            compression=compression,
        )


class _StreamStream(_UnaryStream, _abc.StreamStreamMultiCallable):
    _intercept = "intercept_stream_stream"


_KINDS: dict[str, tuple[str, type[_Intercepted]]] = {
    "unary_unary": ("intercept_unary_unary", _UnaryUnary),
    "unary_stream": ("intercept_unary_stream", _UnaryStream),
    "stream_unary": ("intercept_stream_unary", _StreamUnary),
    "stream_stream": ("intercept_stream_stream", _StreamStream),
}


class _InterceptedChannel(_abc.Channel):
    """One interceptor's layer over a channel (grpc's ``_interceptor._Channel``)."""

    def __init__(self, channel: Any, interceptor: Any) -> None:
        self._channel = channel
        self._interceptor = interceptor

    def subscribe(self, callback: Callable[[Any], Any], try_to_connect: bool = False) -> None:
        self._channel.subscribe(callback, try_to_connect=try_to_connect)

    def unsubscribe(self, callback: Callable[[Any], Any]) -> None:
        self._channel.unsubscribe(callback)

    def _multicallable(
        self,
        kind: str,
        method: str,
        request_serializer: Any,
        response_deserializer: Any,
        registered: bool | None,
    ) -> Any:
        below = getattr(self._channel, kind)

        def thunk(name: str) -> Any:
            return below(name, request_serializer, response_deserializer, registered)

        attribute, intercepted = _KINDS[kind]
        if callable(getattr(self._interceptor, attribute, None)):
            return intercepted(thunk, method, self._interceptor)
        return thunk(method)

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return self._multicallable(
            "unary_unary", method, request_serializer, response_deserializer, _registered_method
        )

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return self._multicallable(
            "unary_stream", method, request_serializer, response_deserializer, _registered_method
        )

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return self._multicallable(
            "stream_unary", method, request_serializer, response_deserializer, _registered_method
        )

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return self._multicallable(
            "stream_stream", method, request_serializer, response_deserializer, _registered_method
        )

    def close(self) -> None:
        self._channel.close()


def intercept_channel(channel: Any, *interceptors: Any) -> _abc.Channel:
    """grpc.intercept_channel: a channel whose calls go through ``interceptors``, in order."""
    for interceptor in reversed(interceptors):
        if not any(callable(getattr(interceptor, a, None)) for a, _ in _KINDS.values()):
            raise TypeError(
                "interceptor must be UnaryUnaryClientInterceptor or "
                "UnaryStreamClientInterceptor or StreamUnaryClientInterceptor or "
                "StreamStreamClientInterceptor or "
            )
        channel = _InterceptedChannel(channel, interceptor)
    return channel  # type: ignore[no-any-return]
