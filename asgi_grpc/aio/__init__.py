"""grpc.aio, name for name: the asynchronous API."""

from typing import TYPE_CHECKING

from .._core import Metadata
from .._errors import EOF, AbortError, BaseError, InternalError, UsageError
from .._interceptors import AioServerInterceptor as ServerInterceptor
from .._lazy import attributes
from ..server import Server, ServicerContext, server

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

# The client is imported when one of its names is first used (see asgi_grpc._lazy).
_CLIENT = "asgi_grpc.client"
__getattr__, __dir__ = attributes(
    __name__,
    globals(),
    {
        **dict.fromkeys(
            (
                "AioRpcError",
                "Call",
                "Channel",
                "RpcContext",
                "StreamStreamCall",
                "StreamStreamMultiCallable",
                "StreamUnaryCall",
                "StreamUnaryMultiCallable",
                "UnaryStreamCall",
                "UnaryStreamMultiCallable",
                "UnaryUnaryCall",
                "UnaryUnaryMultiCallable",
                "insecure_channel",
                "secure_channel",
            ),
            _CLIENT,
        ),
        "InterceptedUnaryUnaryCall": _CLIENT + "._intercepted",
        **dict.fromkeys(
            (
                "ClientCallDetails",
                "ClientInterceptor",
                "StreamStreamClientInterceptor",
                "StreamUnaryClientInterceptor",
                "UnaryStreamClientInterceptor",
                "UnaryUnaryClientInterceptor",
            ),
            _CLIENT + "._interceptors",
        ),
    },
)


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
