"""Testing gRPC ASGI apps: in-memory channels, and a real server on a free port.

- :func:`channel_for` (:class:`InMemoryChannel`): a ``grpc.aio`` channel that drives an ASGI app
  (a ``GrpcApp``, or a Starlette/FastAPI app that mounts one) in the same event loop, with no
  sockets and no server: the client's own call machinery over an in-memory HTTP/2-shaped
  transport (full duplex, trailers, trailers-only, deadlines, cancellation as
  ``http.disconnect``, metadata, compression, interceptors).
- :func:`blocking_channel_for`: the same as a blocking ``grpc.Channel``.
- :func:`serve` (:class:`LiveServer`): the app served by Hypercorn on 127.0.0.1, port 0.
- A pytest plugin (loaded when asgi_grpc is installed) with the fixtures ``grpc_app`` (override
  it), ``grpc_channel``, ``grpc_blocking_channel``, ``grpc_server`` and ``grpc_server_channel``.
"""

from ._app_server import LifespanError
from ._channel import InMemoryChannel, blocking_channel_for, channel_for
from ._live import LiveServer, serve

__all__ = [
    "InMemoryChannel",
    "LifespanError",
    "LiveServer",
    "blocking_channel_for",
    "channel_for",
    "serve",
]
