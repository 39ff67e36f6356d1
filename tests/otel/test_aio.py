"""asgi_grpc.otel on grpc.aio: our server and our client, over a real Hypercorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.trace import SpanKind
from opentelemetry.trace import StatusCode as SpanStatus

import asgi_grpc
from asgi_grpc import otel

from .conftest import KINDS, SLOW_STARTED, Telemetry, async_handlers, by_kind, method


@pytest.fixture
async def served(telemetry: Telemetry) -> AsyncIterator[tuple[Any, int]]:
    server = asgi_grpc.aio.server(
        interceptors=[
            otel.AioServerInterceptor(
                tracer_provider=telemetry.tracer_provider,
                meter_provider=telemetry.meter_provider,
                message_events=True,
            )
        ]
    )
    server.add_generic_rpc_handlers((async_handlers(asgi_grpc, telemetry.tracer_provider),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    target = f"127.0.0.1:{port}"
    channel = asgi_grpc.aio.insecure_channel(
        target,
        interceptors=[
            otel.AioClientInterceptor(
                target,
                tracer_provider=telemetry.tracer_provider,
                meter_provider=telemetry.meter_provider,
                message_events=True,
            )
        ],
    )
    yield channel, port
    await channel.close()
    await server.stop(None)


async def call(channel: Any, name: str, payload: bytes = b"hi") -> Any:
    if name == "Echo":
        return await channel.unary_unary(method(name))(payload)
    if name == "Expand":
        return [r async for r in channel.unary_stream(method(name))(payload)]
    if name == "Collect":
        return await channel.stream_unary(method(name))(iter([payload] * 3))
    return [r async for r in channel.stream_stream(method(name))(iter([payload] * 3))]


@pytest.mark.parametrize("name", KINDS)
async def test_one_trace_across_client_and_server(
    served: tuple[Any, int], telemetry: Telemetry, name: str
) -> None:
    channel, port = served
    assert await call(channel, name) in (b"hi", b"hihihi", [b"hi"] * 3)
    spans = await telemetry.aspans(3 if name == "Echo" else 2)
    [client] = by_kind(spans, SpanKind.CLIENT)
    [server] = by_kind(spans, SpanKind.SERVER)
    assert client.name == server.name == f"otel.Test/{name}"
    assert client.parent is None
    assert server.parent is not None
    assert server.context.trace_id == client.context.trace_id
    assert server.parent.span_id == client.context.span_id
    assert server.parent.is_remote
    for span in (client, server):
        assert span.attributes is not None
        assert span.attributes["rpc.system"] == "grpc"
        assert span.attributes["rpc.service"] == "otel.Test"
        assert span.attributes["rpc.method"] == name
        assert span.attributes["rpc.grpc.status_code"] == 0
        assert span.attributes["server.address"] == "127.0.0.1"
        assert span.attributes["server.port"] == port
        assert span.attributes["network.transport"] == "tcp"
        assert span.status.status_code is SpanStatus.UNSET
    assert server.attributes is not None
    assert server.attributes["network.peer.address"] == "127.0.0.1"
    assert isinstance(server.attributes["network.peer.port"], int)
    assert server.attributes["network.type"] == "ipv4"
    # One event per message, numbered per direction.
    events = [(e.name, dict(e.attributes or {})) for e in server.events]
    received = 3 if name in ("Collect", "Chat") else 1
    sent = 3 if name in ("Expand", "Chat") else 1
    assert events.count(("rpc.message", {"rpc.message.type": "RECEIVED", "rpc.message.id": 1})) == 1
    assert [a["rpc.message.id"] for n, a in events if a["rpc.message.type"] == "RECEIVED"] == list(
        range(1, received + 1)
    )
    assert [a["rpc.message.id"] for n, a in events if a["rpc.message.type"] == "SENT"] == list(
        range(1, sent + 1)
    )
    client_events = [(e.attributes or {}).get("rpc.message.type") for e in client.events]
    assert (
        client_events
        == {
            "Echo": ["SENT", "RECEIVED"],
            "Expand": ["SENT"],
            "Collect": ["RECEIVED"],
            "Chat": [],
        }[name]
    )
    if name == "Echo":  # the servicer's own span is a child of the server span
        [work] = by_kind(spans, SpanKind.INTERNAL)
        assert work.parent is not None
        assert work.parent.span_id == server.context.span_id

    for metric in ("rpc.server.duration", "rpc.client.duration"):
        [point] = telemetry.points(metric)
        assert point.count == 1
        assert point.sum > 0
        assert point.attributes == {
            "rpc.system": "grpc",
            "rpc.service": "otel.Test",
            "rpc.method": name,
            "rpc.grpc.status_code": 0,
            "server.address": "127.0.0.1",
            "server.port": port,
            "network.transport": "tcp",
            "network.type": "ipv4",
        }


@pytest.mark.parametrize(
    ("payload", "code", "server_error"),
    [
        # NOT_FOUND is the client's problem: an ERROR on the client span, not on the server's.
        (b"not-found", asgi_grpc.StatusCode.NOT_FOUND, False),
        (b"internal", asgi_grpc.StatusCode.INTERNAL, True),
        (b"boom", asgi_grpc.StatusCode.UNKNOWN, True),
    ],
)
@pytest.mark.parametrize("name", ["Echo", "Expand"])
async def test_errors(
    served: tuple[Any, int],
    telemetry: Telemetry,
    payload: bytes,
    code: asgi_grpc.StatusCode,
    server_error: bool,
    name: str,
) -> None:
    channel, _ = served
    with pytest.raises(asgi_grpc.aio.AioRpcError) as raised:
        await call(channel, name, payload)
    assert raised.value.code() is code
    spans = await telemetry.aspans(2)
    [client] = by_kind(spans, SpanKind.CLIENT)
    [server] = by_kind(spans, SpanKind.SERVER)
    for span in (client, server):
        assert span.attributes is not None
        assert span.attributes["rpc.grpc.status_code"] == code.value[0]
    assert client.status.status_code is SpanStatus.ERROR
    assert server.status.status_code is (SpanStatus.ERROR if server_error else SpanStatus.UNSET)
    # The unexpected exception is recorded on the server span; deliberate aborts are not.
    exceptions = [e for e in server.events if e.name == "exception"]
    assert len(exceptions) == (1 if payload == b"boom" else 0)
    [point] = telemetry.points("rpc.server.duration")
    assert point.attributes["rpc.grpc.status_code"] == code.value[0]


async def test_client_span_is_child_of_current_span(
    served: tuple[Any, int], telemetry: Telemetry
) -> None:
    channel, _ = served
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request handling") as outer:
        await call(channel, "Echo")
    spans = await telemetry.aspans(4)
    [client] = by_kind(spans, SpanKind.CLIENT)
    [server] = by_kind(spans, SpanKind.SERVER)
    assert client.parent is not None
    assert client.parent.span_id == outer.get_span_context().span_id
    assert server.context.trace_id == outer.get_span_context().trace_id


async def test_deadline_exceeded(served: tuple[Any, int], telemetry: Telemetry) -> None:
    channel, _ = served
    with pytest.raises(asgi_grpc.aio.AioRpcError) as raised:
        await channel.unary_unary(method("Echo"))(b"slow", timeout=0.3)
    assert raised.value.code() is asgi_grpc.StatusCode.DEADLINE_EXCEEDED
    spans = await telemetry.aspans(2)
    [client] = by_kind(spans, SpanKind.CLIENT)
    [server] = by_kind(spans, SpanKind.SERVER)
    assert client.attributes is not None
    assert client.attributes["rpc.grpc.status_code"] == 4
    assert client.status.status_code is SpanStatus.ERROR
    # The servicer was cancelled: by the server's own deadline, or a moment earlier by the
    # client's RST_STREAM at the same deadline (then CANCELLED). Either way the span ended.
    assert server.attributes is not None
    assert server.attributes["rpc.grpc.status_code"] in (1, 4)


@pytest.mark.parametrize("family", ["ipv6", "unix"])
async def test_addresses_of_other_transports(
    telemetry: Telemetry, family: str, tmp_path: Any
) -> None:
    server = asgi_grpc.aio.server(
        interceptors=[otel.AioServerInterceptor(tracer_provider=telemetry.tracer_provider)]
    )
    server.add_generic_rpc_handlers((async_handlers(asgi_grpc),))
    if family == "ipv6":
        port = server.add_insecure_port("[::1]:0")
        target = f"[::1]:{port}"
    else:
        target = f"unix:{tmp_path}/otel.sock"
        server.add_insecure_port(target)
    await server.start()
    try:
        async with asgi_grpc.aio.insecure_channel(
            target,
            interceptors=[
                otel.AioClientInterceptor(target, tracer_provider=telemetry.tracer_provider)
            ],
        ) as channel:
            assert await call(channel, "Echo") == b"hi"
        spans = await telemetry.aspans(2)
    finally:
        await server.stop(None)
    [client] = by_kind(spans, SpanKind.CLIENT)
    [server_span] = by_kind(spans, SpanKind.SERVER)
    assert client.attributes is not None
    assert server_span.attributes is not None
    if family == "ipv6":
        expected = {"server.address": "::1", "server.port": port, "network.type": "ipv6"}
        assert server_span.attributes["network.peer.address"] == "::1"
        for span in (client, server_span):
            assert {k: span.attributes.get(k) for k in expected} == expected
    else:
        assert client.attributes["server.address"] == f"{tmp_path}/otel.sock"
        for span in (client, server_span):
            assert span.attributes["network.transport"] == "unix"
            assert "server.port" not in span.attributes
            assert "network.type" not in span.attributes


async def test_cancelled_call_ends_both_spans(
    served: tuple[Any, int], telemetry: Telemetry
) -> None:
    channel, _ = served
    SLOW_STARTED.clear()
    call = channel.unary_unary(method("Echo"))(b"slow")
    for _ in range(500):  # until the servicer is sleeping
        if SLOW_STARTED:
            break
        await asyncio.sleep(0.01)
    assert call.cancel()
    spans = await telemetry.aspans(2)
    [client] = by_kind(spans, SpanKind.CLIENT)
    [server] = by_kind(spans, SpanKind.SERVER)
    for span in (client, server):
        assert span.attributes is not None
        assert span.attributes["rpc.grpc.status_code"] == 1
    assert client.status.status_code is SpanStatus.ERROR
    assert server.status.status_code is SpanStatus.UNSET  # CANCELLED is not the server's fault
