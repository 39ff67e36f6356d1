"""grpcio as the oracle: each scenario here is written once and run against both libraries.

The ``grpc`` fixture is the module under test: grpcio's ``grpc`` or ``asgi_grpc`` (imported as a
drop-in, exactly as a user swaps ``import grpc`` for ``import asgi_grpc as grpc``). A test asserts
what grpcio does; the grpcio run of the same test proves that it is what grpcio does, so both
libraries are held to one outcome. Servers and clients in a run are of the same library unless a
test says otherwise.

Methods are raw bytes in and out (no protobuf), under ``/conformance.Test/<Name>``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from concurrent import futures
from types import ModuleType
from typing import Any

import pytest

IMPLEMENTATIONS = ["grpcio", "asgi_grpc"]
SERVICE = "conformance.Test"


@pytest.fixture(params=IMPLEMENTATIONS)
def grpc(request: pytest.FixtureRequest) -> ModuleType:
    """The library under test, as a user would name it: ``grpc``."""
    return importlib.import_module("grpc" if request.param == "grpcio" else "asgi_grpc")


@pytest.fixture
def impl_name(grpc: ModuleType) -> str:
    return "grpcio" if grpc.__name__ == "grpc" else "asgi_grpc"


def method(name: str) -> str:
    return f"/{SERVICE}/{name}"


def generic_handler(grpc: ModuleType, handlers: Mapping[str, Any]) -> Any:
    """``handlers`` maps method names to ``grpc.*_rpc_method_handler(...)`` objects."""
    return grpc.method_handlers_generic_handler(SERVICE, dict(handlers))


def unary_unary(grpc: ModuleType, fn: Callable[..., Any]) -> Any:
    return grpc.unary_unary_rpc_method_handler(fn)


def unary_stream(grpc: ModuleType, fn: Callable[..., Any]) -> Any:
    return grpc.unary_stream_rpc_method_handler(fn)


def stream_unary(grpc: ModuleType, fn: Callable[..., Any]) -> Any:
    return grpc.stream_unary_rpc_method_handler(fn)


def stream_stream(grpc: ModuleType, fn: Callable[..., Any]) -> Any:
    return grpc.stream_stream_rpc_method_handler(fn)


def serve_blocking(
    grpc: ModuleType,
    handlers: Mapping[str, Any],
    pool: futures.Executor | None = None,
    options: Any = None,
) -> tuple[Any, str]:
    """A started blocking server of ``grpc`` with ``handlers`` (name -> method handler) on
    127.0.0.1, port 0, and its target; ``pool`` defaults to four threads."""
    pool = pool if pool is not None else futures.ThreadPoolExecutor(4)
    server = grpc.server(pool, options=options)
    server.add_generic_rpc_handlers((generic_handler(grpc, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"
