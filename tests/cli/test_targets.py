"""How ``asgi-grpc serve`` turns ``module:attribute`` into an app (in-process): each kind of
target, servicers of each code generator, the services found for reflection and health, and
the errors that explain the convention."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from starlette.applications import Starlette

from asgi_grpc import health
from asgi_grpc.cli._serve import TargetError, import_target, resolve, service_names
from asgi_grpc.codegen import services_from_pb2
from asgi_grpc.server import GrpcApp
from tests.cli import echo_app
from tests.cli.echo_app import KITCHEN, SERVICE, Echo, Kitchen, pb2, pb2_grpc


def test_an_asgi_app_is_served_as_it_is() -> None:
    assert resolve(echo_app.app) is echo_app.app
    assert resolve(echo_app.starlette_app) is echo_app.starlette_app
    assert service_names(echo_app.starlette_app) == [SERVICE]  # found through the Mount


@pytest.mark.parametrize(
    "target", [echo_app.register, Echo, echo_app.servicer, echo_app.servicers, echo_app.make_app]
)
def test_servicers_and_functions_give_a_grpc_app(target: Any) -> None:
    app = resolve(target)
    assert isinstance(app, GrpcApp)
    assert service_names(app) == [SERVICE]


def test_one_servicer_class_for_two_services() -> None:
    class Both(Echo, Kitchen):
        pass

    assert service_names(resolve(Both())) == sorted([SERVICE, KITCHEN])


def test_servicers_of_every_generator() -> None:
    """grpcio-tools' module (above), asgi_grpc's plugin (the bundled health module), and a module
    built at run time (services_from_pb2: not in sys.modules, found through its functions)."""
    assert service_names(resolve(health.HealthServicer())) == [health.SERVICE_NAME]
    runtime = services_from_pb2(pb2)

    class RuntimeEcho(runtime.EchoServicer):  # type: ignore[misc,name-defined]
        pass

    assert RuntimeEcho.__module__ == __name__
    assert sys.modules.get(runtime.__name__) is not runtime  # (a generated file may use the name)
    assert service_names(resolve(RuntimeEcho())) == [SERVICE]


def test_import_target() -> None:
    assert import_target("tests.cli.echo_app:pb2_grpc.EchoServicer") is pb2_grpc.EchoServicer


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (object(), "object object is not an ASGI app, a servicer"),
        (int, "int is a class but no XServicer base"),
        (lambda a, b: None, "a registration function takes one argument"),
        (lambda: lambda: None, "a registration function takes one argument"),  # no 2nd factory
        ([object()], "object has no XServicer base"),
    ],
)
def test_errors_explain_the_convention(target: Any, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        resolve(target)


def test_a_starlette_app_without_grpc_has_no_services() -> None:
    assert service_names(Starlette()) == []
