"""The route table: every ``google.api.http`` binding of the methods a GrpcApp serves.

Methods are found by their full name in protobuf's default descriptor pool, where the generated
``*_pb2`` modules register their files (with the ``google.api.http`` options, when the module
imported ``google/api/annotations.proto``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped, unused-ignore]
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from ._request import is_map, is_repeated, resolve
from ._template import PathTemplate, TemplateError, parse_template

logger = logging.getLogger("asgi_grpc.transcoding")


@dataclass(frozen=True, slots=True)
class Rpc:
    path: str  # "/package.Service/Method", the gRPC request path
    descriptor: MethodDescriptor
    request_class: type[Message]
    response_class: type[Message]

    @property
    def server_streaming(self) -> bool:
        return bool(self.descriptor.server_streaming)

    @property
    def client_streaming(self) -> bool:
        return bool(self.descriptor.client_streaming)


@dataclass(frozen=True, slots=True)
class Binding:
    http_method: str  # "GET", ...; "*" for a custom rule that leaves it open
    template: PathTemplate
    body: str  # "", "*" or a top-level request field name
    response_body: str  # "" or a top-level response field name
    rpc: Rpc
    index: int  # 0 for the main rule, 1.. for additional_bindings
    # google.api.HttpBody where the body goes: the raw HTTP body and its content type, not JSON.
    raw_request: bool = False
    raw_response: bool = False


@dataclass(frozen=True, slots=True)
class NotAllowed:
    allowed: tuple[str, ...]


def find_method(full_method: str) -> MethodDescriptor | None:
    """``/pkg.Service/Method`` -> its descriptor in the default pool, if a _pb2 registered it."""
    service_name, _, method_name = full_method.lstrip("/").partition("/")
    try:
        service = descriptor_pool.Default().FindServiceByName(service_name)
    except KeyError:
        return None
    method: MethodDescriptor | None = service.methods_by_name.get(method_name)
    return method


def service_methods(service_name: str) -> list[str]:
    service = descriptor_pool.Default().FindServiceByName(service_name)
    return [f"/{service_name}/{m.name}" for m in service.methods]


def bindings_of(method: MethodDescriptor) -> list[Binding]:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return []
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    rpc = Rpc(
        path=f"/{method.containing_service.full_name}/{method.name}",
        descriptor=method,
        request_class=message_factory.GetMessageClass(method.input_type),
        response_class=message_factory.GetMessageClass(method.output_type),
    )
    rules = [rule, *rule.additional_bindings]
    try:
        return [_binding(one, rpc, index) for index, one in enumerate(rules)]
    except (TemplateError, ValueError) as exc:
        raise ValueError(f"{method.full_name}: bad google.api.http rule: {exc}") from None


def _binding(rule: http_pb2.HttpRule, rpc: Rpc, index: int) -> Binding:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise ValueError("no HTTP method pattern")
    if kind == "custom":
        http_method, text = rule.custom.kind.upper(), rule.custom.path
    else:
        http_method, text = kind.upper(), getattr(rule, kind)
    template = parse_template(text)
    request = rpc.descriptor.input_type
    for variable in template.variables:
        try:
            fields = resolve(request, variable.field_path)
        except KeyError as exc:
            raise ValueError(f"path variable {'.'.join(variable.field_path)}: no field {exc}")
        leaf = fields[-1]
        if is_repeated(leaf) or is_map(leaf):
            raise ValueError(f"path variable {leaf.name} must not be repeated")
    if rule.body not in ("", "*") and rule.body not in request.fields_by_name:
        raise ValueError(f"body {rule.body!r} is not a field of {request.full_name}")
    response = rpc.descriptor.output_type
    if rule.response_body and rule.response_body not in response.fields_by_name:
        raise ValueError(
            f"response_body {rule.response_body!r} is not a field of {response.full_name}"
        )
    if rule.body == "*":
        raw_request = request.full_name == HTTP_BODY
    else:
        raw_request = bool(rule.body) and _type_name(request.fields_by_name[rule.body]) == HTTP_BODY
    if rule.response_body:
        raw_response = _type_name(response.fields_by_name[rule.response_body]) == HTTP_BODY
    else:
        raw_response = response.full_name == HTTP_BODY
    return Binding(
        http_method,
        template,
        rule.body,
        rule.response_body,
        rpc,
        index,
        raw_request=raw_request and not rpc.client_streaming,
        raw_response=raw_response,
    )


HTTP_BODY = "google.api.HttpBody"


def _type_name(field: Any) -> str | None:
    if is_repeated(field) or field.message_type is None:
        return None
    return str(field.message_type.full_name)


class RouteTable:
    """Bindings tried most specific first (more literal segments, then no ``**``), then in the
    order the methods were registered."""

    def __init__(self, bindings: Iterable[Binding]) -> None:
        self.bindings = sorted(
            bindings,
            key=lambda b: (-b.template.literal_count, "**" in b.template.segments),
        )
        # Per HTTP method (custom "*" rules in every list), so a request is matched against its
        # own method's templates first; the others are tried only to tell 405 from 404.
        self._by_method: dict[str, list[Binding]] = {}
        for binding in self.bindings:
            if binding.http_method != "*":
                self._by_method.setdefault(binding.http_method, [])
        for binding in self.bindings:
            for method, listed in self._by_method.items():
                if binding.http_method in (method, "*"):
                    listed.append(binding)
        self._any = [b for b in self.bindings if b.http_method == "*"]

    @classmethod
    def from_methods(cls, methods: Iterable[str]) -> RouteTable:
        found: list[Binding] = []
        seen: set[str] = set()
        for full in methods:
            if full in seen:
                continue
            seen.add(full)
            descriptor = find_method(full)
            if descriptor is None:
                continue
            try:
                found += bindings_of(descriptor)
            except ValueError as exc:  # PERF203: once per method, when the table is built
                # One bad annotation costs that method its HTTP bindings, not the others theirs.
                logger.error("not transcoded: %s", exc)
        return cls(found)

    def match(
        self, http_method: str, path: str
    ) -> tuple[Binding, dict[tuple[str, ...], str]] | NotAllowed | None:
        for binding in self._by_method.get(http_method, self._any):
            values = binding.template.match(path)
            if values is not None:
                return binding, values
        allowed = [
            b.http_method
            for b in self.bindings
            if b.http_method != http_method and b.template.match(path) is not None
        ]
        if allowed:
            return NotAllowed(tuple(dict.fromkeys(allowed)))
        return None
