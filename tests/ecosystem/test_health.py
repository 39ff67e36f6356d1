"""asgi_grpc.health against grpcio-health-checking's client (the stubs probes and load balancers
use), a plain empty-service Check as grpc_health_probe sends it, and asgi_grpc's own stub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

import asgi_grpc
from asgi_grpc import health

from .support import aio_server


def wire_shape(file: Any) -> descriptor_pb2.FileDescriptorProto:
    """What a file says about the wire: its descriptor without file name, options and JSON
    names (protoc fills ``json_name`` in for plugins; it never reaches the binary wire)."""
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)
    for cleared in ("name", "options", "source_code_info"):
        proto.ClearField(cleared)
    pending = list(proto.message_type)
    while pending:
        message = pending.pop()
        pending.extend(message.nested_type)
        for field in message.field:
            field.ClearField("json_name")
    return proto


@pytest.fixture
async def served() -> AsyncIterator[tuple[health.HealthServicer, str]]:
    servicer = health.HealthServicer()
    async with aio_server(
        "asgi_grpc", lambda s: health.add_HealthServicer_to_server(servicer, s)
    ) as target:
        yield servicer, target


def test_wire_identical_to_grpcio_health() -> None:
    """Same package, messages, fields (names, numbers, types), enum values and methods."""

    assert wire_shape(health.HealthCheckRequest.DESCRIPTOR.file) == wire_shape(
        health_pb2.DESCRIPTOR
    )


async def test_probe_style_check_of_the_whole_server(served: tuple[Any, str]) -> None:
    """grpc_health_probe sends Check with an empty service name and wants SERVING."""
    _, target = served
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest())
        assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_per_service_status_and_not_found(served: tuple[Any, str]) -> None:
    servicer, target = served
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stub.Check(health_pb2.HealthCheckRequest(service="pkg.Svc"))
        assert failure.value.code() == grpc.StatusCode.NOT_FOUND

        servicer.set("pkg.Svc", health_pb2.HealthCheckResponse.NOT_SERVING)  # grpcio's constants
        response = await stub.Check(health_pb2.HealthCheckRequest(service="pkg.Svc"))
        assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING
        servicer.set("pkg.Svc", health.SERVING)
        response = await stub.Check(health_pb2.HealthCheckRequest(service="pkg.Svc"))
        assert response.status == health_pb2.HealthCheckResponse.SERVING

        listed = await stub.List(health_pb2.HealthListRequest())
        assert {name: s.status for name, s in listed.statuses.items()} == {
            "": health.SERVING,
            "pkg.Svc": health.SERVING,
        }


async def test_watch_follows_changes_from_another_thread(served: tuple[Any, str]) -> None:
    servicer, target = served
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        call = stub.Watch(health_pb2.HealthCheckRequest(service="later"))
        first = await asyncio.wait_for(call.read(), 5)
        assert first.status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN

        # set() from a thread other than the server's loop (as a sync app would).
        await asyncio.to_thread(servicer.set, "later", health.SERVING)
        assert (await asyncio.wait_for(call.read(), 5)).status == health.SERVING
        await asyncio.to_thread(servicer.set, "later", health.SERVING)  # no change: no message
        await asyncio.to_thread(servicer.set, "later", health.NOT_SERVING)
        assert (await asyncio.wait_for(call.read(), 5)).status == health.NOT_SERVING
        call.cancel()
    # The cancelled watcher is forgotten (no leak, no sends to a dead call).
    for _ in range(100):
        if not servicer._watchers:
            break
        await asyncio.sleep(0.01)
    assert not servicer._watchers


async def test_graceful_shutdown_marks_everything_not_serving(served: tuple[Any, str]) -> None:
    servicer, target = served
    servicer.set("a", health.SERVING)
    async with asgi_grpc.aio.insecure_channel(target) as channel:
        stub = health.HealthStub(channel)  # asgi_grpc's own generated stub
        watch = stub.Watch(health.HealthCheckRequest(service="a"))
        assert (await asyncio.wait_for(watch.read(), 5)).status == health.SERVING
        servicer.enter_graceful_shutdown()
        assert (await asyncio.wait_for(watch.read(), 5)).status == health.NOT_SERVING
        servicer.set("a", health.SERVING)  # ignored from now on
        for service in ("", "a"):
            response = await stub.Check(health.HealthCheckRequest(service=service))
            assert response.status == health.NOT_SERVING
        watch.cancel()


def test_sync_client_and_sync_server() -> None:
    """On asgi_grpc's thread-pool server, with grpcio's blocking stub."""
    from .support import sync_server

    servicer = health.HealthServicer()
    with sync_server(
        "asgi_grpc", lambda s: health.add_HealthServicer_to_server(servicer, s)
    ) as target:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health.SERVING
