"""grpc.aio, name for name: the asynchronous API."""

import importlib
from typing import TYPE_CHECKING, Any

from .._core import Metadata
from .._errors import EOF, AbortError, BaseError, InternalError, UsageError
from .._interceptors import AioServerInterceptor as ServerInterceptor
from ..server import Server, ServicerContext, server

# The client's names are imported on first use, so that a process that only serves never loads
# the HTTP client and httpx (see asgi_grpc/__init__.py).
_LAZY = {
    "AioRpcError": "asgi_grpc.client",
    "Call": "asgi_grpc.client",
    "Channel": "asgi_grpc.client",
    "ClientCallDetails": "asgi_grpc.client._interceptors",
    "ClientInterceptor": "asgi_grpc.client._interceptors",
    "InterceptedUnaryUnaryCall": "asgi_grpc.client._intercepted",
    "RpcContext": "asgi_grpc.client",
    "StreamStreamCall": "asgi_grpc.client",
    "StreamStreamClientInterceptor": "asgi_grpc.client._interceptors",
    "StreamStreamMultiCallable": "asgi_grpc.client",
    "StreamUnaryCall": "asgi_grpc.client",
    "StreamUnaryClientInterceptor": "asgi_grpc.client._interceptors",
    "StreamUnaryMultiCallable": "asgi_grpc.client",
    "UnaryStreamCall": "asgi_grpc.client",
    "UnaryStreamClientInterceptor": "asgi_grpc.client._interceptors",
    "UnaryStreamMultiCallable": "asgi_grpc.client",
    "UnaryUnaryCall": "asgi_grpc.client",
    "UnaryUnaryClientInterceptor": "asgi_grpc.client._interceptors",
    "UnaryUnaryMultiCallable": "asgi_grpc.client",
    "insecure_channel": "asgi_grpc.client",
    "secure_channel": "asgi_grpc.client",
}

if TYPE_CHECKING:
    from ..client import (
        AioRpcError,
        Call,
        Channel,
        RpcContext,
        StreamStreamCall,
        StreamStreamMultiCallable,
        StreamUnaryCall,
        StreamUnaryMultiCallable,
        UnaryStreamCall,
        UnaryStreamMultiCallable,
        UnaryUnaryCall,
        UnaryUnaryMultiCallable,
        insecure_channel,
        secure_channel,
    )
    from ..client._intercepted import InterceptedUnaryUnaryCall
    from ..client._interceptors import (
        ClientCallDetails,
        ClientInterceptor,
        StreamStreamClientInterceptor,
        StreamUnaryClientInterceptor,
        UnaryStreamClientInterceptor,
        UnaryUnaryClientInterceptor,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def init_grpc_aio() -> None:
    """grpc.aio.init_grpc_aio: nothing to set up here (no C core); kept for compatibility."""


def shutdown_grpc_aio() -> None:
    """grpc.aio.shutdown_grpc_aio: nothing to tear down; kept for compatibility."""


__all__ = [
    "EOF",
    "AbortError",
    "AioRpcError",
    "BaseError",
    "Call",
    "Channel",
    "ClientCallDetails",
    "ClientInterceptor",
    "InterceptedUnaryUnaryCall",
    "InternalError",
    "Metadata",
    "RpcContext",
    "Server",
    "ServerInterceptor",
    "ServicerContext",
    "StreamStreamCall",
    "StreamStreamClientInterceptor",
    "StreamStreamMultiCallable",
    "StreamUnaryCall",
    "StreamUnaryClientInterceptor",
    "StreamUnaryMultiCallable",
    "UnaryStreamCall",
    "UnaryStreamClientInterceptor",
    "UnaryStreamMultiCallable",
    "UnaryUnaryCall",
    "UnaryUnaryClientInterceptor",
    "UnaryUnaryMultiCallable",
    "UsageError",
    "init_grpc_aio",
    "insecure_channel",
    "secure_channel",
    "server",
    "shutdown_grpc_aio",
]
