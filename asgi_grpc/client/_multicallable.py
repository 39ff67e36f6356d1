"""The four multi-callables of grpc.aio: what ``channel.unary_unary(...)`` returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core import Compression, Metadata, MetadataLike, StatusCode
from .._errors import UsageError
from ._call import (
    AioRpcError,
    StreamStreamCall,
    StreamUnaryCall,
    UnaryStreamCall,
    UnaryUnaryCall,
)
from ._interceptors import ClientCallDetails, intercept

if TYPE_CHECKING:
    from ._channel import Channel, _CallSettings


def _invalid_metadata(exc: Exception) -> AioRpcError:
    return AioRpcError(StatusCode.INTERNAL, Metadata(), Metadata(), f"Invalid metadata: {exc}")


class _MultiCallable:
    __slots__ = (
        "_channel",
        "_default",
        "_method",
        "_request_serializer",
        "_response_deserializer",
    )

    def __init__(
        self,
        channel: Channel,
        method: str,
        request_serializer: Any,
        response_deserializer: Any,
    ) -> None:
        self._channel = channel
        self._method = method.encode("ascii")
        self._request_serializer = request_serializer
        self._response_deserializer = response_deserializer
        self._default: _CallSettings | None = None

    def _settings(
        self,
        timeout: float | None,
        metadata: MetadataLike,
        credentials: Any,
        compression: Compression | None,
        wait_for_ready: bool | None = None,
    ) -> _CallSettings:
        channel = self._channel
        channel._check_open()
        if credentials is not None and not channel._secure:
            raise UsageError("Call credentials are only valid on secure channels")
        if (
            timeout is None
            and not metadata
            and credentials is None
            and compression is None
            and not wait_for_ready
        ):
            # The common call: headers built once per multi-callable.
            default = self._default
            if default is None:
                default = self._default = channel._call_settings(None, None, None)
            return default
        try:
            return channel._call_settings(
                timeout, metadata, compression, credentials, wait_for_ready
            )
        except (ValueError, TypeError) as exc:
            raise _invalid_metadata(exc) from None

    def _args(self, settings: _CallSettings) -> tuple[Any, ...]:
        return (
            self._channel,
            self._method,
            self._request_serializer,
            self._response_deserializer,
            settings,
        )


class _Invoking(_MultiCallable):
    __slots__ = ()
    _kind: str
    _call_class: Callable[..., Any]

    def _invoke(
        self,
        request: Any,
        timeout: float | None,
        metadata: MetadataLike,
        credentials: Any,
        wait_for_ready: bool | None,
        compression: Compression | None,
    ) -> Any:
        interceptors = self._channel._interceptors_by_kind[self._kind]
        if interceptors:
            details = ClientCallDetails(
                self._method, timeout, metadata, credentials, wait_for_ready
            )
            return intercept(
                interceptors,
                self._kind,
                details,
                request,
                lambda d, r: self._make_call(d, r, compression),
            )
        settings = self._settings(timeout, metadata, credentials, compression, wait_for_ready)
        return self._call_class(request, *self._args(settings))

    def _make_call(
        self, details: ClientCallDetails, request: Any, compression: Compression | None
    ) -> Any:
        method = details.method
        if isinstance(method, str):
            method = method.encode("ascii")
        settings = self._settings(
            details.timeout,
            details.metadata,
            details.credentials,
            compression,
            details.wait_for_ready,
        )
        return self._call_class(
            request,
            self._channel,
            method,
            self._request_serializer,
            self._response_deserializer,
            settings,
        )


class _UnaryRequest(_Invoking):
    __slots__ = ()

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: MetadataLike = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> Any:
        return self._invoke(request, timeout, metadata, credentials, wait_for_ready, compression)


class _StreamRequest(_Invoking):
    __slots__ = ()

    def __call__(
        self,
        request_iterator: Any = None,
        timeout: float | None = None,
        metadata: MetadataLike = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> Any:
        return self._invoke(
            request_iterator, timeout, metadata, credentials, wait_for_ready, compression
        )


class UnaryUnaryMultiCallable(_UnaryRequest):
    """grpc.aio.UnaryUnaryMultiCallable: calling it returns a :class:`UnaryUnaryCall`."""

    __slots__ = ()
    _kind = "unary_unary"
    _call_class = UnaryUnaryCall


class UnaryStreamMultiCallable(_UnaryRequest):
    """grpc.aio.UnaryStreamMultiCallable: calling it returns a :class:`UnaryStreamCall`."""

    __slots__ = ()
    _kind = "unary_stream"
    _call_class = UnaryStreamCall


class StreamUnaryMultiCallable(_StreamRequest):
    """grpc.aio.StreamUnaryMultiCallable: calling it returns a :class:`StreamUnaryCall`."""

    __slots__ = ()
    _kind = "stream_unary"
    _call_class = StreamUnaryCall


class StreamStreamMultiCallable(_StreamRequest):
    """grpc.aio.StreamStreamMultiCallable: calling it returns a :class:`StreamStreamCall`."""

    __slots__ = ()
    _kind = "stream_stream"
    _call_class = StreamStreamCall


__all__ = [
    "AioRpcError",
    "StreamStreamMultiCallable",
    "StreamUnaryMultiCallable",
    "UnaryStreamMultiCallable",
    "UnaryUnaryMultiCallable",
]
