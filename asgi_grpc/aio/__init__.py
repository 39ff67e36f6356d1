"""grpc.aio, name for name: the asynchronous API."""

from .._core import Metadata
from .._errors import EOF, AbortError, BaseError, InternalError, UsageError
from .._interceptors import AioServerInterceptor as ServerInterceptor
from ..server import Server, ServicerContext, server


def init_grpc_aio() -> None:
    """grpc.aio.init_grpc_aio: nothing to set up here (no C core); kept for compatibility."""


def shutdown_grpc_aio() -> None:
    """grpc.aio.shutdown_grpc_aio: nothing to tear down; kept for compatibility."""


__all__ = [
    "EOF",
    "AbortError",
    "BaseError",
    "InternalError",
    "Metadata",
    "Server",
    "ServerInterceptor",
    "ServicerContext",
    "UsageError",
    "init_grpc_aio",
    "server",
    "shutdown_grpc_aio",
]
