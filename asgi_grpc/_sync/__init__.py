"""The synchronous API (grpc's top-level module): blocking channels and servers on one background
event loop per process. Public names are re-exported by ``asgi_grpc``."""

from typing import TYPE_CHECKING

from .._lazy import attributes
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
from ._interceptors import intercept_channel
from ._server import server

if TYPE_CHECKING:
    from ._channel import channel_ready_future, insecure_channel, secure_channel

# The blocking channels (and with them the client) are imported on first use: see _lazy.
__getattr__, __dir__ = attributes(
    __name__,
    globals(),
    dict.fromkeys(
        ("channel_ready_future", "insecure_channel", "secure_channel"), __name__ + "._channel"
    ),
)

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
