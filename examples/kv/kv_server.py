"""The kv example server: gRPC and REST on one Hypercorn port (README: "REST and gRPC").

    python examples/kv/kv_server.py --bind 127.0.0.1:50051

- gRPC ``kv.v1.KeyValue`` (unary Put/Get, server-streaming List, client-streaming Import), plus
  ``grpc.health.v1.Health`` and server reflection (``asgi-grpc list``/``call``, grpcurl);
- REST ``GET /healthz`` and ``GET /metrics`` (Prometheus text format: RPCs by method and status,
  counted by a server interceptor).

One ASGI app: :class:`~asgi_grpc.server.GrpcApp` answers ``application/grpc`` requests and hands
everything else, the lifespan included, to its Starlette ``fallback``. Other ways to serve it::

    asgi-grpc serve kv_server:app --app-dir examples/kv --bind 127.0.0.1:50051
    hypercorn --config deploy/hypercorn.toml --bind 127.0.0.1:50051 kv_server:app  # cwd examples/kv
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import kv_codegen
from hypercorn.asyncio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

import asgi_grpc
import asgi_grpc.aio
from asgi_grpc import health, reflection
from asgi_grpc.server import GrpcApp, grpc_config

kv_pb2, kv_grpc = kv_codegen.load()

SERVICE = "kv.v1.KeyValue"


class KeyValue(kv_grpc.KeyValueServicer):  # type: ignore[misc,name-defined]
    """An in-memory store."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    async def Put(self, request: Any, context: Any) -> Any:
        created = request.key not in self.items
        self.items[request.key] = request.value
        return kv_pb2.PutReply(created=created)

    async def Get(self, request: Any, context: Any) -> Any:
        if request.key not in self.items:
            await context.abort(asgi_grpc.StatusCode.NOT_FOUND, f"no key {request.key!r}")
        return kv_pb2.Item(key=request.key, value=self.items[request.key])

    async def List(self, request: Any, context: Any) -> AsyncIterator[Any]:
        for key in sorted(self.items):
            if key.startswith(request.prefix):
                yield kv_pb2.Item(key=key, value=self.items[key])

    async def Import(self, request_iterator: AsyncIterator[Any], context: Any) -> Any:
        imported = 0
        async for item in request_iterator:
            self.items[item.key] = item.value
            imported += 1
        return kv_pb2.ImportReply(imported=imported)


class Metrics(asgi_grpc.aio.ServerInterceptor):
    """Counts finished RPCs by service, method and status code (go-grpc-prometheus' names)."""

    def __init__(self) -> None:
        self.handled: collections.Counter[tuple[str, str, str]] = collections.Counter()

    def _record(self, method: str, context: Any, error: BaseException | None) -> None:
        code = context.code()
        if code is None:
            if isinstance(error, asyncio.CancelledError):
                code = asgi_grpc.StatusCode.CANCELLED
            else:
                code = asgi_grpc.StatusCode.OK if error is None else asgi_grpc.StatusCode.UNKNOWN
        service, _, name = method.lstrip("/").rpartition("/")
        self.handled[service, name, code.name] += 1

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if handler.response_streaming:
            field = "stream_stream" if handler.request_streaming else "unary_stream"
            behavior = getattr(handler, field)

            async def streaming(request: Any, context: Any) -> AsyncIterator[Any]:
                try:
                    async for response in behavior(request, context):
                        yield response
                except BaseException as error:
                    self._record(method, context, error)
                    raise
                self._record(method, context, None)

            return handler._replace(**{field: streaming})
        field = "stream_unary" if handler.request_streaming else "unary_unary"
        behavior = getattr(handler, field)

        async def unary(request: Any, context: Any) -> Any:
            try:
                response = await behavior(request, context)
            except BaseException as error:
                self._record(method, context, error)
                raise
            self._record(method, context, None)
            return response

        return handler._replace(**{field: unary})

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        lines = [
            "# HELP grpc_server_handled_total Total number of RPCs completed on the server.",
            "# TYPE grpc_server_handled_total counter",
        ]
        for (service, method, code), count in sorted(self.handled.items()):
            labels = f'grpc_service="{service}",grpc_method="{method}",grpc_code="{code}"'
            lines.append(f"grpc_server_handled_total{{{labels}}} {count}")
        return "\n".join(lines) + "\n"


def build_app() -> GrpcApp:
    metrics = Metrics()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "active_rpcs": app.active_rpcs})

    async def metrics_route(request: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    rest = Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics_route)])
    app = GrpcApp(fallback=rest, interceptors=[metrics])
    register(app)
    return app


def register(app: Any) -> None:
    """Add the kv, health and reflection services to ``app`` (a GrpcApp or an aio server)."""
    kv_grpc.add_KeyValueServicer_to_server(KeyValue(), app)
    checker = health.HealthServicer()
    health.add_HealthServicer_to_server(checker, app)
    checker.set(SERVICE, health.SERVING)
    reflection.enable_server_reflection(
        [SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME], app
    )


app = build_app()


async def main(bind: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"kv server on {bind} (gRPC + REST /healthz /metrics)", flush=True)
    await serve(app, grpc_config(bind=[bind]), shutdown_trigger=stop.wait)  # type: ignore[arg-type]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the kv example server")
    parser.add_argument("--bind", default="127.0.0.1:50051", help="Hypercorn bind (host:port)")
    asyncio.run(main(parser.parse_args().bind))
