"""OpenTelemetry tracing and metrics for asgi_grpc servers and clients (``pip install
asgi_grpc[otel]``).

Interceptors, one per API style, all following OpenTelemetry's RPC semantic conventions as
opentelemetry-instrumentation-grpc emits them (the v1.37 attribute set: ``rpc.system``,
``rpc.service``, ``rpc.method``, ``rpc.grpc.status_code``; durations in milliseconds)::

    AioServerInterceptor    grpc.aio.server(interceptors=[...]); also grpc.server's
    ServerInterceptor       grpc.server(...) in a chain of grpc-style (sync) interceptors
    AioClientInterceptor    aio.insecure_channel(target, interceptors=[...]), all four kinds
    ClientInterceptor       grpc.intercept_channel(channel, ...), all four kinds

Each call gets a span (kind SERVER / CLIENT, named ``package.Service/Method``) and one
measurement of ``rpc.server.duration`` / ``rpc.client.duration``; ``message_events=True`` adds an
``rpc.message`` event per message (off by default: each costs about what the span does). W3C
trace context goes through the metadata with the global propagator (``opentelemetry.propagate``),
so traces continue across grpcio, grpc-go, grpc-java... instrumented by OpenTelemetry. Tracer and
meter come from the global providers unless given.
"""

# First: without the OpenTelemetry API installed, _common's ImportError says how to get it.
from . import _common  # noqa: F401
from ._client import AioClientInterceptor, ClientInterceptor
from ._server import AioServerInterceptor, ServerInterceptor

__all__ = ["AioClientInterceptor", "AioServerInterceptor", "ClientInterceptor", "ServerInterceptor"]
