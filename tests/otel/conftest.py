"""OpenTelemetry SDK wiring for the otel tests: in-memory spans and metrics, per test.

Providers are passed to every interceptor (ours and opentelemetry-instrumentation-grpc's), never
set globally, so tests do not leak into each other. Services are raw bytes in and out under
``/otel.Test/<Name>``, so grpcio and asgi_grpc serve the same handlers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SERVICE = "otel.Test"
KINDS = ["Echo", "Expand", "Collect", "Chat"]
SLOW_STARTED: list[bool] = []  # one entry per "slow" call that reached the servicer


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self, count: int, timeout: float = 5.0) -> list[ReadableSpan]:
        """The finished spans once there are ``count`` of them (servers and clients end theirs
        after the response is on its way, so the test may see the response first)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = list(self.exporter.get_finished_spans())
            if len(spans) >= count or time.monotonic() > deadline:
                assert len(spans) == count, [s.name for s in spans]
                return spans
            time.sleep(0.01)

    async def aspans(self, count: int, timeout: float = 5.0) -> list[ReadableSpan]:
        deadline = time.monotonic() + timeout
        while True:
            spans = list(self.exporter.get_finished_spans())
            if len(spans) >= count or time.monotonic() > deadline:
                assert len(spans) == count, [s.name for s in spans]
                return spans
            await asyncio.sleep(0.01)

    def points(self, name: str) -> list[Any]:
        """The histogram data points of metric ``name``."""
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        assert metric.unit == "ms"
                        found.extend(metric.data.data_points)
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(tracer_provider, meter_provider, exporter, reader)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def method(name: str) -> str:
    return f"/{SERVICE}/{name}"


def by_kind(spans: list[ReadableSpan], kind: Any) -> list[ReadableSpan]:
    return [s for s in spans if s.kind == kind]


# -- handlers: the same behaviour async (grpc.aio servers) and sync (thread-pool servers) -------


async def _abort_for(request: bytes, context: Any) -> None:
    if request == b"not-found":
        await context.abort(_status(context, "NOT_FOUND"), "no such thing")
    if request == b"internal":
        await context.abort(_status(context, "INTERNAL"), "it broke")
    if request == b"boom":
        raise RuntimeError("boom")


def _status(context: Any, name: str) -> Any:
    # grpcio's aio context wants grpcio's StatusCode, ours takes either (same names).
    module = type(context).__module__
    if module.startswith("grpc"):
        import grpc

        return grpc.StatusCode[name]
    import asgi_grpc

    return asgi_grpc.StatusCode[name]


def async_handlers(grpc: Any, tracer_provider: TracerProvider | None = None) -> Any:
    tracer = tracer_provider.get_tracer("servicer") if tracer_provider else None

    async def echo(request: bytes, context: Any) -> bytes:
        await _abort_for(request, context)
        if request == b"slow":
            SLOW_STARTED.append(True)
            await asyncio.sleep(10)
        if tracer is not None:
            with tracer.start_as_current_span("servicer work"):
                pass
        return request

    async def expand(request: bytes, context: Any) -> AsyncIterator[bytes]:
        await _abort_for(request, context)
        for _ in range(3):
            yield request

    async def collect(requests: AsyncIterator[bytes], context: Any) -> bytes:
        return b"".join([r async for r in requests])

    async def chat(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for request in requests:
            yield request

    return _generic(grpc, echo, expand, collect, chat)


def sync_handlers(grpc: Any) -> Any:
    def echo(request: bytes, context: Any) -> bytes:
        if request == b"not-found":
            context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        if request == b"boom":
            raise RuntimeError("boom")
        return request

    def expand(request: bytes, context: Any) -> Iterator[bytes]:
        for _ in range(3):
            yield request

    def collect(requests: Iterator[bytes], context: Any) -> bytes:
        return b"".join(requests)

    def chat(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        yield from requests

    return _generic(grpc, echo, expand, collect, chat)


def _generic(grpc: Any, echo: Any, expand: Any, collect: Any, chat: Any) -> Any:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Expand": grpc.unary_stream_rpc_method_handler(expand),
            "Collect": grpc.stream_unary_rpc_method_handler(collect),
            "Chat": grpc.stream_stream_rpc_method_handler(chat),
        },
    )
