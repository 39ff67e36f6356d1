"""The synchronous API (grpc's top-level module): blocking channels and servers on one background
event loop per process. Public names are re-exported by ``asgi_grpc``."""

from ._abc import (
    AuthMetadataPlugin,
    AuthMetadataPluginCallback,
    Call,
    Channel,
    ClientCallDetails,
    Future,
    FutureCancelledError,
    FutureTimeoutError,
    RpcContext,
    Server,
    ServicerContext,
    Status,
    StreamStreamClientInterceptor,
    StreamStreamMultiCallable,
    StreamUnaryClientInterceptor,
    StreamUnaryMultiCallable,
    UnaryStreamClientInterceptor,
    UnaryStreamMultiCallable,
    UnaryUnaryClientInterceptor,
    UnaryUnaryMultiCallable,
)
from ._channel import channel_ready_future, insecure_channel, secure_channel
from ._interceptors import intercept_channel
from ._server import server

__all__ = [
    "AuthMetadataPlugin",
    "AuthMetadataPluginCallback",
    "Call",
    "Channel",
    "ClientCallDetails",
    "Future",
    "FutureCancelledError",
    "FutureTimeoutError",
    "RpcContext",
    "Server",
    "ServicerContext",
    "Status",
    "StreamStreamClientInterceptor",
    "StreamStreamMultiCallable",
    "StreamUnaryClientInterceptor",
    "StreamUnaryMultiCallable",
    "UnaryStreamClientInterceptor",
    "UnaryStreamMultiCallable",
    "UnaryUnaryClientInterceptor",
    "UnaryUnaryMultiCallable",
    "channel_ready_future",
    "insecure_channel",
    "intercept_channel",
    "secure_channel",
    "server",
]
