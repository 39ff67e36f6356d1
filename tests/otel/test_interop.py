"""Traces across libraries: grpcio instrumented by opentelemetry-instrumentation-grpc on one side,
asgi_grpc instrumented by asgi_grpc.otel on the other, over a real socket on 127.0.0.1."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import grpc.aio
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
    aio_server_interceptor,
    client_interceptor,
    grpcext,
    server_interceptor,
)
from opentelemetry.trace import SpanKind

import asgi_grpc
from asgi_grpc import otel

from .conftest import Telemetry, async_handlers, by_kind, method, sync_handlers


def assert_continued(spans: list[Any], client_library: str, server_library: str) -> None:
    [client] = by_kind(spans, SpanKind.CLIENT)
    [server] = by_kind(spans, SpanKind.SERVER)
    assert client.instrumentation_scope.name == client_library
    assert server.instrumentation_scope.name == server_library
    assert server.parent is not None
    assert server.context.trace_id == client.context.trace_id
    assert server.parent.span_id == client.context.span_id
    assert server.parent.is_remote
    for span in (client, server):
        assert span.attributes is not None
        assert span.attributes["rpc.system"] == "grpc"
        assert span.attributes["rpc.service"] == "otel.Test"
        assert span.attributes["rpc.method"] == "Echo"
        assert span.attributes["rpc.grpc.status_code"] == 0
        if span.instrumentation_scope.name == "asgi_grpc.otel":
            assert not span.events  # message events are opt-in


async def ours_serving(telemetry: Telemetry) -> tuple[Any, int]:
    server = asgi_grpc.aio.server(
        interceptors=[
            otel.AioServerInterceptor(
                tracer_provider=telemetry.tracer_provider,
                meter_provider=telemetry.meter_provider,
            )
        ]
    )
    server.add_generic_rpc_handlers((async_handlers(asgi_grpc),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def test_grpcio_client_to_asgi_grpc_server(telemetry: Telemetry) -> None:
    server, port = await ours_serving(telemetry)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as plain:
            # What GrpcInstrumentorClient does to every channel it instruments.
            channel = grpcext.intercept_channel(
                plain, client_interceptor(tracer_provider=telemetry.tracer_provider)
            )
            # A blocking call from a worker thread, so our server keeps the loop.
            with ThreadPoolExecutor(1) as pool:
                reply = await asyncio.wrap_future(
                    pool.submit(channel.unary_unary(method("Echo")), b"hi", timeout=10)
                )
        assert reply == b"hi"
        spans = await telemetry.aspans(2)
    finally:
        await server.stop(None)
    assert_continued(spans, "opentelemetry.instrumentation.grpc", "asgi_grpc.otel")


async def test_grpcio_aio_client_to_asgi_grpc_server(telemetry: Telemetry) -> None:
    server, port = await ours_serving(telemetry)
    try:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{port}",
            interceptors=aio_client_interceptors(tracer_provider=telemetry.tracer_provider),
        ) as channel:
            assert await channel.unary_unary(method("Echo"))(b"hi", timeout=10) == b"hi"
        spans = await telemetry.aspans(2)
    finally:
        await server.stop(None)
    assert_continued(spans, "opentelemetry.instrumentation.grpc", "asgi_grpc.otel")


async def test_asgi_grpc_client_to_grpcio_aio_server(telemetry: Telemetry) -> None:
    server = grpc.aio.server(
        interceptors=[aio_server_interceptor(tracer_provider=telemetry.tracer_provider)]
    )
    server.add_generic_rpc_handlers((async_handlers(grpc),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    target = f"127.0.0.1:{port}"
    try:
        async with asgi_grpc.aio.insecure_channel(
            target,
            interceptors=[
                otel.AioClientInterceptor(target, tracer_provider=telemetry.tracer_provider)
            ],
        ) as channel:
            assert await channel.unary_unary(method("Echo"))(b"hi", timeout=10) == b"hi"
        spans = await telemetry.aspans(2)
    finally:
        await server.stop(None)
    assert_continued(spans, "asgi_grpc.otel", "opentelemetry.instrumentation.grpc")


def test_asgi_grpc_blocking_client_to_grpcio_server(telemetry: Telemetry) -> None:
    with ThreadPoolExecutor(2) as pool:
        server = grpc.server(
            pool, interceptors=[server_interceptor(tracer_provider=telemetry.tracer_provider)]
        )
        server.add_generic_rpc_handlers((sync_handlers(grpc),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        target = f"127.0.0.1:{port}"
        try:
            with asgi_grpc.insecure_channel(target) as plain:
                channel = asgi_grpc.intercept_channel(
                    plain,
                    otel.ClientInterceptor(target, tracer_provider=telemetry.tracer_provider),
                )
                assert channel.unary_unary(method("Echo"))(b"hi", timeout=10) == b"hi"
            spans = telemetry.spans(2)
        finally:
            server.stop(None).wait()
    assert_continued(spans, "asgi_grpc.otel", "opentelemetry.instrumentation.grpc")
