"""asgi_grpc.otel on the blocking API: a thread-pool server with sync servicers and a blocking
channel, over a real socket on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry.trace import SpanKind
from opentelemetry.trace import StatusCode as SpanStatus

import asgi_grpc
from asgi_grpc import otel

from .conftest import KINDS, Telemetry, by_kind, method, sync_handlers


@pytest.fixture(params=["ServerInterceptor", "AioServerInterceptor"])
def served(request: pytest.FixtureRequest, telemetry: Telemetry) -> Iterator[tuple[Any, int]]:
    """grpc.server takes both: grpc-style (sync) interceptors and grpc.aio ones."""
    interceptor = getattr(otel, request.param)(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        message_events=True,
    )
    with ThreadPoolExecutor(4) as pool:
        server = asgi_grpc.server(pool, interceptors=[interceptor])
        server.add_generic_rpc_handlers((sync_handlers(asgi_grpc),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        target = f"127.0.0.1:{port}"
        channel = asgi_grpc.intercept_channel(
            asgi_grpc.insecure_channel(target),
            otel.ClientInterceptor(
                target,
                tracer_provider=telemetry.tracer_provider,
                meter_provider=telemetry.meter_provider,
            ),
        )
        try:
            yield channel, port
        finally:
            channel.close()
            server.stop(None).wait()


def call(channel: Any, name: str, payload: bytes = b"hi") -> Any:
    if name == "Echo":
        return channel.unary_unary(method(name))(payload)
    if name == "Expand":
        return list(channel.unary_stream(method(name))(payload))
    if name == "Collect":
        return channel.stream_unary(method(name))(iter([payload] * 3))
    return list(channel.stream_stream(method(name))(iter([payload] * 3)))


@pytest.mark.parametrize("name", KINDS)
def test_one_trace(served: tuple[Any, int], telemetry: Telemetry, name: str) -> None:
    channel, port = served
    assert call(channel, name) in (b"hi", b"hihihi", [b"hi"] * 3)
    spans = telemetry.spans(2)
    [client] = by_kind(spans, SpanKind.CLIENT)
    [server] = by_kind(spans, SpanKind.SERVER)
    assert client.name == server.name == f"otel.Test/{name}"
    assert server.parent is not None
    assert server.context.trace_id == client.context.trace_id
    assert server.parent.span_id == client.context.span_id
    for span in (client, server):
        assert span.attributes is not None
        assert span.attributes["rpc.method"] == name
        assert span.attributes["rpc.grpc.status_code"] == 0
        assert span.attributes["server.port"] == port
    received = 3 if name in ("Collect", "Chat") else 1
    sent = 3 if name in ("Expand", "Chat") else 1
    types = [(e.attributes or {}).get("rpc.message.type") for e in server.events]
    assert (types.count("RECEIVED"), types.count("SENT")) == (received, sent)
    for metric in ("rpc.server.duration", "rpc.client.duration"):
        [point] = telemetry.points(metric)
        assert point.count == 1
        assert point.attributes["rpc.method"] == name


@pytest.mark.parametrize(
    ("payload", "code", "server_error"),
    [
        (b"not-found", asgi_grpc.StatusCode.NOT_FOUND, False),
        (b"boom", asgi_grpc.StatusCode.UNKNOWN, True),
    ],
)
def test_errors(
    served: tuple[Any, int],
    telemetry: Telemetry,
    payload: bytes,
    code: asgi_grpc.StatusCode,
    server_error: bool,
) -> None:
    channel, _ = served
    with pytest.raises(asgi_grpc.RpcError) as raised:
        call(channel, "Echo", payload)
    assert raised.value.code() is code  # type: ignore[attr-defined]
    spans = telemetry.spans(2)
    [client] = by_kind(spans, SpanKind.CLIENT)
    [server] = by_kind(spans, SpanKind.SERVER)
    for span in (client, server):
        assert span.attributes is not None
        assert span.attributes["rpc.grpc.status_code"] == code.value[0]
    assert client.status.status_code is SpanStatus.ERROR
    assert server.status.status_code is (SpanStatus.ERROR if server_error else SpanStatus.UNSET)
