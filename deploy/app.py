"""The production ASGI entry point: ``hypercorn --config deploy/hypercorn.toml deploy.app:app``.

It builds one :class:`asgi_grpc.server.GrpcApp` from the environment:

``ASGI_GRPC_SERVICERS``
    Comma-separated ``module:function`` names. Each function is called with the app and
    registers servicers on it, typically one line per service::

        def register(app):
            helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(), app)

``ASGI_GRPC_FALLBACK``
    Optional ``module:attribute`` naming an ASGI app (Starlette, FastAPI...) that gets every
    request that is not gRPC, and the lifespan: REST and gRPC on one port.

The app always serves the standard health service (``grpc.health.v1.Health/Check``) that
Kubernetes ``grpc:`` probes call: ``SERVING`` for ``""`` and for every registered service,
``NOT_FOUND`` for other names. (``Watch`` is not served; probes do not use it.)

Building a GrpcApp also installs asgi_grpc's HTTP/2 protocol into Hypercorn (each worker process
imports this module before serving).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

import asgi_grpc
from asgi_grpc.server import GrpcApp

HEALTH_SERVICE = "grpc.health.v1.Health"
SERVING, NOT_SERVING = 1, 2


def _health_messages() -> tuple[Any, Any]:
    """HealthCheckRequest / HealthCheckResponse of grpc/health/v1/health.proto, built from a
    descriptor in a private pool: no generated code, no clash with grpcio-health-checking."""
    file = descriptor_pb2.FileDescriptorProto(
        name="asgi_grpc/deploy/health.proto", package="grpc.health.v1", syntax="proto3"
    )
    request = file.message_type.add(name="HealthCheckRequest")
    request.field.add(
        name="service",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    response = file.message_type.add(name="HealthCheckResponse")
    status = response.enum_type.add(name="ServingStatus")
    for name, number in [
        ("UNKNOWN", 0),
        ("SERVING", 1),
        ("NOT_SERVING", 2),
        ("SERVICE_UNKNOWN", 3),
    ]:
        status.value.add(name=name, number=number)
    response.field.add(
        name="status",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_ENUM,
        type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus",
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return (
        message_factory.GetMessageClass(
            pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest")
        ),
        message_factory.GetMessageClass(
            pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse")
        ),
    )


HealthCheckRequest, HealthCheckResponse = _health_messages()


class Health:
    """The ``Check`` method of grpc.health.v1.Health."""

    def __init__(self, services: Iterable[str]) -> None:
        self.services = set(services)
        self.status = SERVING

    async def Check(self, request: Any, context: Any) -> Any:
        if request.service and request.service not in self.services:
            await context.abort(
                asgi_grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}"
            )
        return HealthCheckResponse(status=self.status)


class _Registry:
    """What a ``register(app)`` function gets: the app, with the names of the services
    registered through it remembered for the health service."""

    def __init__(self, app: GrpcApp) -> None:
        self._app = app
        self.services: list[str] = []

    def add_registered_method_handlers(
        self, service_name: str, handlers: Mapping[str, Any]
    ) -> None:
        self.services.append(service_name)
        self._app.add_registered_method_handlers(service_name, handlers)

    def add_generic_rpc_handlers(self, handlers: Iterable[Any]) -> None:
        handlers = tuple(handlers)
        for handler in handlers:
            name = getattr(handler, "service_name", None)  # grpc.ServiceRpcHandler
            if callable(name):
                self.services.append(name())
        self._app.add_generic_rpc_handlers(handlers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)


def _load(spec: str, what: str) -> Any:
    module_name, _, attribute = spec.strip().partition(":")
    if not module_name or not attribute:
        raise RuntimeError(f"{what}: expected 'module:attribute', got {spec!r}")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def build_app(servicers: str = "", fallback: str = "") -> GrpcApp:
    """The app for ``ASGI_GRPC_SERVICERS`` / ``ASGI_GRPC_FALLBACK``-style settings."""
    app = GrpcApp(fallback=_load(fallback, "ASGI_GRPC_FALLBACK") if fallback.strip() else None)
    registry = _Registry(app)
    for spec in filter(str.strip, servicers.split(",")):
        register: Callable[[Any], None] = _load(spec, "ASGI_GRPC_SERVICERS")
        register(registry)
    health = Health(registry.services)
    app.add_generic_rpc_handlers(
        [
            asgi_grpc.method_handlers_generic_handler(
                HEALTH_SERVICE,
                {
                    "Check": asgi_grpc.unary_unary_rpc_method_handler(
                        health.Check,
                        request_deserializer=HealthCheckRequest.FromString,
                        response_serializer=HealthCheckResponse.SerializeToString,
                    )
                },
            )
        ]
    )
    return app


def _let_workers_drain(backstop: float) -> None:
    """In a Hypercorn worker process: survive the supervisor's SIGTERM until the drain is over.

    Hypercorn 0.18's supervisor, on shutdown, waits for the first worker to exit and then
    terminates all the others, cutting their graceful drain short: RPCs in flight there fail
    UNAVAILABLE (tests/integration/test_deploy.py reproduces it with 2 workers). Workers already
    ignore SIGINT for the same reason; shutdown reaches them through Hypercorn's own event and
    they exit once drained (bounded by graceful_timeout). SIGTERM here only arms a backstop.
    """
    if multiprocessing.parent_process() is None:
        return  # not a worker process: Hypercorn with workers = 0, or not Hypercorn at all
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        # The server in this worker handles SIGTERM itself (uvicorn installs its handler before
        # it imports the app): that handler is how it learns to drain; keep it.
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        timer = threading.Timer(backstop, os._exit, args=(1,))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, on_sigterm)


_let_workers_drain(float(os.environ.get("ASGI_GRPC_WORKER_SIGTERM_BACKSTOP", "30")))
app = build_app(os.environ.get("ASGI_GRPC_SERVICERS", ""), os.environ.get("ASGI_GRPC_FALLBACK", ""))
