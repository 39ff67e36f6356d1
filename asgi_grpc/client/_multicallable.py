"""The four multi-callables of grpc.aio: what ``channel.unary_unary(...)`` returns."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._core import (
    Compression,
    Metadata,
    MetadataLike,
    StatusCode,
    checked_metadata,
    to_metadata,
)
from .._errors import UsageError
from ._base import CallSettings, ChannelHost
from ._call_kinds import StreamStreamCall, StreamUnaryCall, UnaryStreamCall, UnaryUnaryCall
from ._intercepted import INTERCEPTED
from ._interceptors import ClientCallDetails
from ._rpc_error import AioRpcError


class _MultiCallable:
    __slots__ = (
        "_channel",
        "_default",
        "_method",
        "_request_serializer",
        "_response_deserializer",
    )
    _kind: str
    _call_class: Callable[..., Any]

    def __init__(
        self,
        channel: ChannelHost,
        method: str,
        request_serializer: Any,
        response_deserializer: Any,
    ) -> None:
        self._channel = channel
        self._method = method.encode("ascii")
        self._request_serializer = request_serializer
        self._response_deserializer = response_deserializer
        self._default: CallSettings | None = None

    def _settings(
        self,
        timeout: float | None,
        metadata: MetadataLike,
        credentials: Any,
        compression: Compression | None,
        wait_for_ready: bool | None = None,
        method: bytes | None = None,
    ) -> CallSettings:
        channel = self._channel
        if credentials is not None and not channel._secure:
            raise UsageError("Call credentials are only valid on secure channels")
        if method is None:
            method = self._method
        if (
            method == self._method
            and timeout is None
            and not metadata
            and credentials is None
            and compression is None
            and wait_for_ready is None  # an explicit False overrides a config's waitForReady
        ):
            # The common call: headers built once per multi-callable.
            default = self._default
            if default is None:
                default = self._default = channel._call_settings(None, None, None, method=method)
            return default
        try:
            return channel._call_settings(
                timeout, metadata, compression, credentials, wait_for_ready, method
            )
        except ValueError as exc:
            # A key or value the wire does not allow (grpcio fails the call, INTERNAL).
            raise AioRpcError(
                StatusCode.INTERNAL, Metadata(), Metadata(), f"Invalid metadata: {exc}"
            ) from None

    def _invoke(
        self,
        request: Any,
        timeout: float | None,
        metadata: MetadataLike,
        credentials: Any,
        wait_for_ready: bool | None,
        compression: Compression | None,
    ) -> Any:
        channel = self._channel
        channel._check_open()
        interceptors = channel._interceptors_by_kind[self._kind]
        if interceptors:
            # Interceptors always see a Metadata (as grpc.aio); wrong types raise here.
            details = ClientCallDetails(
                self._method, timeout, to_metadata(metadata), credentials, wait_for_ready
            )

            def make_call(details: ClientCallDetails, request: Any) -> Any:
                return self._make_call(details, request, compression)

            return INTERCEPTED[self._kind](interceptors, details, request, make_call)
        # Wrong types raise TypeError here, at the call site, as in grpcio.
        metadata = checked_metadata(metadata)
        settings = self._settings(timeout, metadata, credentials, compression, wait_for_ready)
        return self._call_class(
            request,
            channel,
            self._method,
            self._request_serializer,
            self._response_deserializer,
            settings,
        )

    def _make_call(
        self, details: ClientCallDetails, request: Any, compression: Compression | None
    ) -> Any:
        """The real call at the end of an interceptor chain, with the details it was given."""
        method = details.method
        if isinstance(method, str):
            method = method.encode("ascii")
        settings = self._settings(
            details.timeout,
            to_metadata(details.metadata),
            details.credentials,
            compression,
            details.wait_for_ready,
            method,
        )
        return self._call_class(
            request,
            self._channel,
            method,
            self._request_serializer,
            self._response_deserializer,
            settings,
        )


class _UnaryRequest(_MultiCallable):
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


class _StreamRequest(_MultiCallable):
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
    "StreamStreamMultiCallable",
    "StreamUnaryMultiCallable",
    "UnaryStreamMultiCallable",
    "UnaryUnaryMultiCallable",
]
