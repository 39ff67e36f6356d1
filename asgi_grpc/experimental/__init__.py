"""grpc.experimental: grpcio's experimental helpers that code written for grpcio relies on.

Not imported by ``import asgi_grpc`` (``import asgi_grpc.experimental``, as with grpcio).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from .._credentials import INSECURE_CHANNEL_CREDENTIALS, ChannelCredentials
from .._errors import UsageError
from .._handlers import RpcMethodHandler
from ..codegen import runtime as _runtime

F = TypeVar("F", bound=Callable[..., Any])

_warned: set[str] = set()


class ChannelOptions:
    """grpc.experimental.ChannelOptions: gRPC Python's own channel options (accepted, unused)."""

    SingleThreadedUnaryStream = "SingleThreadedUnaryStream"


class ExperimentalApiWarning(Warning):
    """A warning that an API is experimental."""


def experimental_api(f: F) -> F:
    """Mark ``f`` experimental: its first call warns with :class:`ExperimentalApiWarning`."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if f.__name__ not in _warned:
            _warned.add(f.__name__)
            warnings.warn(
                f"'{f.__name__}' is an experimental API. It is subject to change or removal "
                "between minor releases. Proceed with caution.",
                ExperimentalApiWarning,
                stacklevel=2,
            )
        return f(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def insecure_channel_credentials() -> ChannelCredentials:
    """grpc.experimental.insecure_channel_credentials: cleartext credentials for
    ``secure_channel``, mainly as the fallback of ``xds_channel_credentials``. Call credentials
    composed into them fail every call UNAUTHENTICATED, as on any insecure channel."""
    return INSECURE_CHANNEL_CREDENTIALS


def wrap_server_method_handler(
    wrapper: Callable[[Callable[..., Any]], Callable[..., Any]],
    handler: RpcMethodHandler | None,
) -> RpcMethodHandler | None:
    """A copy of ``handler`` whose behaviour is ``wrapper(behaviour)``; None stays None.

    For server interceptors that wrap what they got from ``continuation``. As grpcio's, this
    needs a handler with ``_replace`` (what the ``*_rpc_method_handler`` factories return).
    """
    if not handler:
        return None
    # The one behaviour field that the handler's cardinality uses.
    if handler.request_streaming:
        field = "stream_stream" if handler.response_streaming else "stream_unary"
    else:
        field = "unary_stream" if handler.response_streaming else "unary_unary"
    replaced: RpcMethodHandler = handler._replace(  # type: ignore[attr-defined]
        **{field: wrapper(getattr(handler, field))}
    )
    return replaced


# The one-off calls of grpcio-generated stubs' static methods (``Service.Method(request, target,
# ...)``); grpcio-tools passes ``_registered_method=True``, which changes nothing here.


def unary_unary(request: Any, target: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """grpc.experimental.unary_unary: one call on a cached channel to ``target``."""
    kwargs.pop("_registered_method", None)
    return _runtime._static_call("unary_unary", request, target, method, *args, **kwargs)


def unary_stream(request: Any, target: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """grpc.experimental.unary_stream: the response iterator of one call."""
    kwargs.pop("_registered_method", None)
    return _runtime._static_call("unary_stream", request, target, method, *args, **kwargs)


def stream_unary(request_iterator: Any, target: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """grpc.experimental.stream_unary: the response of one call."""
    kwargs.pop("_registered_method", None)
    return _runtime._static_call("stream_unary", request_iterator, target, method, *args, **kwargs)


def stream_stream(
    request_iterator: Any, target: str, method: str, *args: Any, **kwargs: Any
) -> Any:
    """grpc.experimental.stream_stream: the response iterator of one call."""
    kwargs.pop("_registered_method", None)
    return _runtime._static_call("stream_stream", request_iterator, target, method, *args, **kwargs)


__all__ = [
    "ChannelOptions",
    "ExperimentalApiWarning",
    "UsageError",
    "insecure_channel_credentials",
    "stream_stream",
    "stream_unary",
    "unary_stream",
    "unary_unary",
    "wrap_server_method_handler",
]
