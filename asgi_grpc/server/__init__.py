"""The asgi_grpc server: gRPC as an ASGI application, served by Hypercorn.

``GrpcApp`` is the ASGI application (mount it, or serve it with ``hypercorn module:app``);
``Server`` / ``server()`` are grpc.aio's server on top of it. ``grpc_config()`` is a Hypercorn
configuration tuned for gRPC, and ``install()`` puts asgi_grpc's HTTP/2 fixes into Hypercorn
(``GrpcApp`` does it on construction). ``GrpcWebConfig`` sets up gRPC-Web and its CORS.
"""

from ._app import GrpcApp
from ._call import ServicerContext
from ._config import ServerConfig
from ._guard import check_app
from ._hypercorn import grpc_config
from ._hypercorn_install import install
from ._server import Server, server
from ._web import GrpcWebConfig

__all__ = [
    "GrpcApp",
    "GrpcWebConfig",
    "Server",
    "ServerConfig",
    "ServicerContext",
    "check_app",
    "grpc_config",
    "install",
    "server",
]
