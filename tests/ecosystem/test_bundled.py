"""The health and reflection modules asgi_grpc ships are our plugin's current output for the
.proto files beside them (never hand-edited, never grpcio-tools output)."""

from __future__ import annotations

import importlib

import pytest

from asgi_grpc.codegen import bundled, runtime


@pytest.mark.parametrize("item", bundled.BUNDLED, ids=lambda item: item.proto)
def test_bundled_module_is_fresh(item: bundled.Bundled) -> None:
    for path, content in bundled.render(item).items():
        assert path.read_text() == content, (
            f"{path.name} is stale: run python -m asgi_grpc.codegen.bundled"
        )


def test_bundled_messages_live_in_asgi_grpcs_own_pool() -> None:
    """So they coexist with grpcio-health-checking / grpcio-reflection in one process."""
    from grpc_health.v1 import health_pb2

    from asgi_grpc import health

    assert health.HealthCheckRequest.DESCRIPTOR.file.pool is runtime.POOL
    assert health.HealthCheckRequest is not health_pb2.HealthCheckRequest
    wire = health.HealthCheckRequest(service="x").SerializeToString()
    assert health_pb2.HealthCheckRequest.FromString(wire).service == "x"
    # Importing the generated module again registers nothing twice.
    module = importlib.import_module("asgi_grpc.health._health_pb2_asgi_grpc")
    assert importlib.reload(module).DESCRIPTOR is health.HealthCheckRequest.DESCRIPTOR.file
