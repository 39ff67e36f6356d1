"""What server and client instrumentation share: instruments, attributes, span status."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterable
from typing import Any

try:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import Span, Status
    from opentelemetry.trace import StatusCode as SpanStatus
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "asgi_grpc.otel needs the OpenTelemetry API: pip install 'asgi_grpc[otel]'"
    ) from exc

from .._core import StatusCode

SCOPE = "asgi_grpc.otel"
VERSION = "0.1.0"

# Codes a server reports as its own failure (the semantic conventions for gRPC server spans);
# the others (NOT_FOUND, INVALID_ARGUMENT...) are the client's problem and leave the span unset.
SERVER_ERRORS = frozenset(
    {
        StatusCode.UNKNOWN,
        StatusCode.DEADLINE_EXCEEDED,
        StatusCode.UNIMPLEMENTED,
        StatusCode.INTERNAL,
        StatusCode.UNAVAILABLE,
        StatusCode.DATA_LOSS,
    }
)

Attributes = dict[str, Any]


class Instruments:
    """A tracer and the duration histogram of one side (``server`` or ``client``)."""

    __slots__ = ("duration", "events", "tracer")

    def __init__(
        self, side: str, tracer_provider: Any, meter_provider: Any, events: bool = False
    ) -> None:
        # Message events are opt-in: a span event costs about as much as the span (SDK 1.45).
        self.events = events
        self.tracer = trace.get_tracer(SCOPE, VERSION, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, VERSION, meter_provider=meter_provider)
        self.duration = meter.create_histogram(
            f"rpc.{side}.duration",
            unit="ms",
            description=f"Duration of inbound RPCs ({side} side)"
            if side == "server"
            else "Duration of outbound RPCs (client side)",
        )


def method_attributes(full_method: str) -> tuple[str, Attributes]:
    """``/pkg.Service/Method`` -> span name ``pkg.Service/Method`` and the rpc.* attributes."""
    name = full_method[1:] if full_method.startswith("/") else full_method
    service, _, method = name.rpartition("/")
    attributes: Attributes = {"rpc.system": "grpc"}
    if service:
        attributes["rpc.service"] = service
    if method:
        attributes["rpc.method"] = method
    return name or "grpc", attributes


def address_attributes(prefix: str, host: str, port: int | None) -> Attributes:
    """``server.*`` or ``network.peer.*`` attributes of a host and port (a path for unix)."""
    if host.startswith("/") or not port:
        return {f"{prefix}.address": host, "network.transport": "unix"}
    if host.startswith("["):
        host = host[1:-1]
    return {
        f"{prefix}.address": host,
        f"{prefix}.port": port,
        "network.transport": "tcp",
        "network.type": "ipv6" if ":" in host else "ipv4",
    }


def parse_peer(peer: str) -> Attributes:
    """grpcio's peer string (``ipv4:1.2.3.4:5``, ``ipv6:[::1]:5``, ``unix:/path``)."""
    kind, _, rest = peer.partition(":")
    if kind == "unix":
        # Unix sockets seldom name the client end: often just "unix:".
        return (
            {"network.peer.address": rest, "network.transport": "unix"}
            if rest
            else {"network.transport": "unix"}
        )
    host, _, port = rest.rpartition(":")
    if kind not in ("ipv4", "ipv6") or not port.isdigit():
        return {}
    return address_attributes("network.peer", host, int(port))


def parse_authority(authority: str) -> Attributes:
    """``server.*`` and ``network.*`` of a channel target (``host:port``, ``unix:path``...)."""
    if authority.startswith("unix:"):
        path = authority[5:]
        path = "/" + path.lstrip("/") if path.startswith("/") else path
        return {"server.address": path, "network.transport": "unix"}
    for scheme in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if authority.startswith(scheme):
            authority = authority[len(scheme) :].split(",", 1)[0]
            break
    host, sep, port = authority.rpartition(":")
    if not sep or not port.isdigit() or (":" in host and not host.startswith("[")):
        host, port = authority, ""  # no port (the default), or a bare IPv6 address
    host = host.strip("[]")
    attributes: Attributes = {"server.address": host}
    if port:
        attributes["server.port"] = int(port)
    attributes["network.transport"] = "tcp"
    # A host name leaves network.type out: the address family is the resolver's choice.
    with contextlib.suppress(ValueError):
        attributes["network.type"] = f"ipv{ipaddress.ip_address(host).version}"
    return attributes


def finish(
    span: Span,
    instruments: Instruments,
    metric_attributes: Attributes,
    started: float,
    ended: float,
    code: StatusCode,
    details: str | None,
    errors: Iterable[StatusCode] | None,
) -> None:
    """End a call's span with its gRPC status and record its duration (milliseconds).
    ``errors``: the codes that mark the span ERROR (None: every code but OK)."""
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code is not StatusCode.OK and (errors is None or code in errors):
        span.set_status(Status(SpanStatus.ERROR, f"{code.name}: {details or ''}".rstrip(": ")))
    span.end()
    metric_attributes["rpc.grpc.status_code"] = code.value[0]
    instruments.duration.record((ended - started) * 1000.0, metric_attributes)


def message_event(span: Span, kind: str, number: int) -> None:
    """An ``rpc.message`` event: ``kind`` SENT or RECEIVED, ``number`` counting from 1."""
    span.add_event("rpc.message", {"rpc.message.type": kind, "rpc.message.id": number})
