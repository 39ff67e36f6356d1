"""The four multi-callables of grpc.aio: what ``channel.unary_unary(...)`` returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._core import Compression, Metadata, MetadataLike, StatusCode
from ._call import (
    AioRpcError,
    StreamStreamCall,
    StreamUnaryCall,
    UnaryStreamCall,
    UnaryUnaryCall,
)

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
    ) -> _CallSettings:
        channel = self._channel
        channel._check_open()
        if timeout is None and not metadata and credentials is None and compression is None:
            # The common call: headers built once per multi-callable.
            default = self._default
            if default is None:
                default = self._default = channel._call_settings(None, None, None)
            return default
        try:
            return channel._call_settings(timeout, metadata, compression, credentials)
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


class UnaryUnaryMultiCallable(_MultiCallable):
    """grpc.aio.UnaryUnaryMultiCallable."""

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
    ) -> UnaryUnaryCall[Any, Any]:
        settings = self._settings(timeout, metadata, credentials, compression)
        return UnaryUnaryCall(request, *self._args(settings))


class UnaryStreamMultiCallable(_MultiCallable):
    """grpc.aio.UnaryStreamMultiCallable."""

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
    ) -> UnaryStreamCall[Any, Any]:
        settings = self._settings(timeout, metadata, credentials, compression)
        return UnaryStreamCall(request, *self._args(settings))


class StreamUnaryMultiCallable(_MultiCallable):
    """grpc.aio.StreamUnaryMultiCallable."""

    __slots__ = ()

    def __call__(
        self,
        request_iterator: Any = None,
        timeout: float | None = None,
        metadata: MetadataLike = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> StreamUnaryCall[Any, Any]:
        settings = self._settings(timeout, metadata, credentials, compression)
        return StreamUnaryCall(request_iterator, *self._args(settings))


class StreamStreamMultiCallable(_MultiCallable):
    """grpc.aio.StreamStreamMultiCallable."""

    __slots__ = ()

    def __call__(
        self,
        request_iterator: Any = None,
        timeout: float | None = None,
        metadata: MetadataLike = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> StreamStreamCall[Any, Any]:
        settings = self._settings(timeout, metadata, credentials, compression)
        return StreamStreamCall(request_iterator, *self._args(settings))


__all__ = [
    "AioRpcError",
    "StreamStreamMultiCallable",
    "StreamUnaryMultiCallable",
    "UnaryStreamMultiCallable",
    "UnaryUnaryMultiCallable",
]
