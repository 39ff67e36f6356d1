"""asgi_grpc: gRPC for the ASGI world, mirroring the top-level ``grpc`` module.

``import asgi_grpc as grpc`` gives grpcio's names; ``asgi_grpc.aio`` mirrors ``grpc.aio``.
"""

import logging
from typing import TYPE_CHECKING

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
from ._lazy import attributes
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
    intercept_channel,
    server,
)

if TYPE_CHECKING:
    from ._sync import channel_ready_future, insecure_channel, secure_channel

# The blocking channels, and the client under them, load on first use (see _lazy).
__getattr__, __dir__ = attributes(
    __name__,
    globals(),
    dict.fromkeys(("channel_ready_future", "insecure_channel", "secure_channel"), "._sync"),
)

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
