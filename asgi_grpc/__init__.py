"""asgi_grpc: gRPC for the ASGI world, mirroring the top-level ``grpc`` module.

``import asgi_grpc as grpc`` gives grpcio's names; ``asgi_grpc.aio`` mirrors ``grpc.aio``.
"""

from . import aio
from ._core import Compression, StatusCode
from ._credentials import ServerCredentials, ssl_server_credentials
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
    "Compression",
    "GenericRpcHandler",
    "HandlerCallDetails",
    "RpcError",
    "RpcMethodHandler",
    "ServerCredentials",
    "ServerInterceptor",
    "ServiceRpcHandler",
    "StatusCode",
    "aio",
    "method_handlers_generic_handler",
    "ssl_server_credentials",
    "stream_stream_rpc_method_handler",
    "stream_unary_rpc_method_handler",
    "unary_stream_rpc_method_handler",
    "unary_unary_rpc_method_handler",
]
