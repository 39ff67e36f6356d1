"""The asgi_grpc server: gRPC as an ASGI application, served by Hypercorn.

``GrpcApp`` is the ASGI application (mount it, or serve it with ``hypercorn module:app``);
``Server`` / ``server()`` are grpc.aio's server on top of it.
"""

from ._app import GrpcApp
from ._call import ServicerContext
from ._config import ServerConfig
from ._server import Server, server

__all__ = ["GrpcApp", "Server", "ServerConfig", "ServicerContext", "server"]
