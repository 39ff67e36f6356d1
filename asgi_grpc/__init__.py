"""asgi_grpc: gRPC for the ASGI world, mirroring the top-level ``grpc`` module.

``import asgi_grpc as grpc`` gives grpcio's names; ``asgi_grpc.aio`` mirrors ``grpc.aio``.
"""

import importlib
import logging
from typing import TYPE_CHECKING, Any

from . import aio as aio  # grpc.aio is an attribute, not in __all__ (as grpcio)
from ._connectivity import ChannelConnectivity
from ._core import Compression, StatusCode
from ._credentials import (
    AuthMetadataContext,
    CallCredentials,
    ChannelCredentials,
    LocalConnectionType,
    ServerCertificateConfiguration,
    ServerCredentials,
    access_token_call_credentials,
    alts_channel_credentials,
    alts_server_credentials,
    composite_call_credentials,
    composite_channel_credentials,
    compute_engine_channel_credentials,
    dynamic_ssl_server_credentials,
    insecure_server_credentials,
    local_channel_credentials,
    local_server_credentials,
    metadata_call_credentials,
    ssl_channel_credentials,
    ssl_server_certificate_configuration,
    ssl_server_credentials,
    xds_channel_credentials,
    xds_server_credentials,
)
from ._errors import RpcError
from ._handlers import (
    GenericRpcHandler,
    HandlerCallDetails,
    RpcMethodHandler,
    ServiceRpcHandler,
    method_handlers_generic_handler,
    stream_stream_rpc_method_handler,
    stream_unary_rpc_method_handler,
    unary_stream_rpc_method_handler,
    unary_unary_rpc_method_handler,
)
from ._interceptors import ServerInterceptor

# The blocking API's channels and servers (and grpc.protos, which needs protobuf's descriptor
# machinery) are imported on first use: a process that only serves (``asgi_grpc.aio.server()``)
# then never loads the HTTP client, httpx or the blocking API's loop (about 7 MiB of RSS; see
# bench/README.md, "what bought what").
_LAZY = {
    **dict.fromkeys(("protos", "protos_and_services", "services"), "._protos"),
    **dict.fromkeys(
        (
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
        ),
        "._sync",
    ),
}

if TYPE_CHECKING:
    from ._protos import protos, protos_and_services, services
    from ._sync import (
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
        channel_ready_future,
        insecure_channel,
        intercept_channel,
        secure_channel,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def server(*args: Any, **kwargs: Any) -> "Server":
    """grpc.server: a Server whose handlers run on ``thread_pool`` (see ``asgi_grpc._sync``).

    A function here rather than a lazy name: ``asgi_grpc.server`` is also a subpackage, which
    Python binds as this module's attribute when it is imported (here, by ``aio``)."""
    from ._sync import server as blocking_server

    return blocking_server(*args, **kwargs)


__version__ = "0.1.0"

# A library logs, the application decides where records go (as grpcio does for "grpc"): without
# this, Python's last-resort handler would print warnings to stderr in apps that never configured
# logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "AuthMetadataContext",
    "AuthMetadataPlugin",
    "AuthMetadataPluginCallback",
    "Call",
    "CallCredentials",
    "Channel",
    "ChannelConnectivity",
    "ChannelCredentials",
    "ClientCallDetails",
    "Compression",
    "Future",
    "FutureCancelledError",
    "FutureTimeoutError",
    "GenericRpcHandler",
    "HandlerCallDetails",
    "LocalConnectionType",
    "RpcContext",
    "RpcError",
    "RpcMethodHandler",
    "Server",
    "ServerCertificateConfiguration",
    "ServerCredentials",
    "ServerInterceptor",
    "ServiceRpcHandler",
    "ServicerContext",
    "Status",
    "StatusCode",
    "StreamStreamClientInterceptor",
    "StreamStreamMultiCallable",
    "StreamUnaryClientInterceptor",
    "StreamUnaryMultiCallable",
    "UnaryStreamClientInterceptor",
    "UnaryStreamMultiCallable",
    "UnaryUnaryClientInterceptor",
    "UnaryUnaryMultiCallable",
    "access_token_call_credentials",
    "alts_channel_credentials",
    "alts_server_credentials",
    "channel_ready_future",
    "composite_call_credentials",
    "composite_channel_credentials",
    "compute_engine_channel_credentials",
    "dynamic_ssl_server_credentials",
    "insecure_channel",
    "insecure_server_credentials",
    "intercept_channel",
    "local_channel_credentials",
    "local_server_credentials",
    "metadata_call_credentials",
    "method_handlers_generic_handler",
    "protos",
    "protos_and_services",
    "secure_channel",
    "server",
    "services",
    "ssl_channel_credentials",
    "ssl_server_certificate_configuration",
    "ssl_server_credentials",
    "stream_stream_rpc_method_handler",
    "stream_unary_rpc_method_handler",
    "unary_stream_rpc_method_handler",
    "unary_unary_rpc_method_handler",
    "xds_channel_credentials",
    "xds_server_credentials",
]
