"""asgi_grpc: gRPC for the ASGI world, mirroring the top-level ``grpc`` module.

``import asgi_grpc as grpc`` gives grpcio's names; ``asgi_grpc.aio`` mirrors ``grpc.aio``.
"""

from . import aio
from ._connectivity import ChannelConnectivity
from ._core import Compression, StatusCode
from ._credentials import (
    AuthMetadataContext,
    CallCredentials,
    ChannelCredentials,
    ServerCredentials,
    access_token_call_credentials,
    composite_call_credentials,
    composite_channel_credentials,
    metadata_call_credentials,
    ssl_channel_credentials,
    ssl_server_credentials,
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

__version__ = "0.1.0"

__all__ = [
    "AuthMetadataContext",
    "CallCredentials",
    "ChannelConnectivity",
    "ChannelCredentials",
    "Compression",
    "GenericRpcHandler",
    "HandlerCallDetails",
    "RpcError",
    "RpcMethodHandler",
    "ServerCredentials",
    "ServerInterceptor",
    "ServiceRpcHandler",
    "StatusCode",
    "access_token_call_credentials",
    "aio",
    "composite_call_credentials",
    "composite_channel_credentials",
    "metadata_call_credentials",
    "method_handlers_generic_handler",
    "ssl_channel_credentials",
    "ssl_server_credentials",
    "stream_stream_rpc_method_handler",
    "stream_unary_rpc_method_handler",
    "unary_stream_rpc_method_handler",
    "unary_unary_rpc_method_handler",
]
