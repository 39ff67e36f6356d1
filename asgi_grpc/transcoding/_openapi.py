"""An OpenAPI 3.1 document from the route table's descriptors.

Schemas follow protobuf's canonical JSON: properties by JSON name (lowerCamelCase), 64-bit
integers as strings, enums by name, well-known types in their JSON forms (Timestamp as a
date-time string, Duration as ``"1.5s"``, FieldMask as a string, wrappers as their nullable
value, Struct/Value/ListValue as free JSON). Comments come from a FileDescriptorSet built with
``protoc --include_source_info``: the descriptors that generated _pb2 modules register carry no
source info.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor as _FD

from ._request import Descriptor, FieldDescriptor, is_map, is_repeated, resolve
from ._routes import Binding

EnumDescriptor = Any
_STATUS = "google.rpc.Status"
_ANY = "google.protobuf.Any"

_INT32 = (_FD.TYPE_INT32, _FD.TYPE_SINT32, _FD.TYPE_SFIXED32)
_UINT32 = (_FD.TYPE_UINT32, _FD.TYPE_FIXED32)
_INT64 = (_FD.TYPE_INT64, _FD.TYPE_SINT64, _FD.TYPE_SFIXED64)
_UINT64 = (_FD.TYPE_UINT64, _FD.TYPE_FIXED64)

_WKT: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$",
        "examples": ["1.5s"],
    },
    "google.protobuf.FieldMask": {"type": "string", "description": "Comma-separated field paths."},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.DoubleValue": {"type": ["number", "string", "null"], "format": "double"},
    "google.protobuf.FloatValue": {"type": ["number", "string", "null"], "format": "float"},
    "google.protobuf.Int64Value": {"type": ["string", "null"], "format": "int64"},
    "google.protobuf.UInt64Value": {"type": ["string", "null"], "format": "uint64"},
    "google.protobuf.Int32Value": {"type": ["integer", "null"], "format": "int32"},
    "google.protobuf.UInt32Value": {"type": ["integer", "null"], "format": "uint32"},
    "google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    "google.protobuf.StringValue": {"type": ["string", "null"]},
    "google.protobuf.BytesValue": {"type": ["string", "null"], "contentEncoding": "base64"},
}


def comments_from_descriptor_set(data: bytes | None) -> dict[str, str]:
    """Leading (else trailing) comments by full name of message, field, enum, service, method."""
    if not data:
        return {}
    comments: dict[str, str] = {}
    for file in descriptor_pb2.FileDescriptorSet.FromString(data).file:
        names = _location_names(file)
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            text = (location.leading_comments or location.trailing_comments).strip()
            if name and text:
                comments[name] = "\n".join(line.strip() for line in text.splitlines())
    return comments


def _location_names(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    """Source-info paths (field numbers of descriptor.proto down the tree) -> full names."""
    names: dict[tuple[int, ...], str] = {}
    prefix = file.package + "." if file.package else ""
    pending: list[tuple[descriptor_pb2.DescriptorProto, tuple[int, ...], str]] = [
        (msg, (4, i), prefix) for i, msg in enumerate(file.message_type)
    ]
    enums: list[tuple[descriptor_pb2.EnumDescriptorProto, tuple[int, ...], str]] = [
        (enum, (5, i), prefix) for i, enum in enumerate(file.enum_type)
    ]
    while pending:
        msg, path, scope = pending.pop()
        full = scope + msg.name
        names[path] = full
        for j, fld in enumerate(msg.field):
            key = (*path, 2, j)  # (a starred subscript would need Python 3.11)
            names[key] = f"{full}.{fld.name}"
        pending += [(sub, (*path, 3, k), full + ".") for k, sub in enumerate(msg.nested_type)]
        enums += [(enum, (*path, 4, k), full + ".") for k, enum in enumerate(msg.enum_type)]
    for enum, path, scope in enums:
        names[path] = scope + enum.name
        for j, value in enumerate(enum.value):
            key = (*path, 2, j)
            names[key] = f"{scope}{enum.name}.{value.name}"
    for i, service in enumerate(file.service):
        names[(6, i)] = prefix + service.name
        for j, method in enumerate(service.method):
            names[(6, i, 2, j)] = f"{prefix}{service.name}.{method.name}"
    return names


class _Builder:
    def __init__(self, comments: dict[str, str]) -> None:
        self.comments = comments
        self.schemas: dict[str, Any] = {}

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        name = descriptor.full_name
        if name in _WKT:
            return dict(_WKT[name])
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder first: recursive messages
            self.schemas[name] = self.message(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def enum_ref(self, descriptor: EnumDescriptor) -> dict[str, Any]:
        name = descriptor.full_name
        if name == "google.protobuf.NullValue":
            return {"type": "null"}
        if name not in self.schemas:
            schema: dict[str, Any] = {
                "type": "string",
                "enum": [value.name for value in descriptor.values],
            }
            self._describe(schema, name)
            self.schemas[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    def message(self, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.full_name == _ANY:
            return {
                "type": "object",
                "properties": {"@type": {"type": "string"}},
                "required": ["@type"],
                "additionalProperties": True,
                "description": "Any message, with its type URL in '@type'.",
            }
        properties = {f.json_name: self.field(f) for f in descriptor.fields}
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        self._describe(schema, descriptor.full_name)
        rules = []
        for oneof in descriptor.oneofs:
            members = [f.json_name for f in oneof.fields]
            if len(members) > 1 and not (len(members) == 1 or _synthetic(oneof)):
                # At most one member of a oneof may be set.
                rules += [{"required": [a, b]} for a, b in combinations(members, 2)]
        if rules:
            schema["not"] = {"anyOf": rules}
        return schema

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        if is_map(field):
            value = field.message_type.fields_by_name["value"]
            schema: dict[str, Any] = {"type": "object", "additionalProperties": self.single(value)}
        elif is_repeated(field):
            schema = {"type": "array", "items": self.single(field)}
        else:
            schema = self.single(field)
        description = self.comments.get(field.full_name)
        if field.containing_oneof is not None and not _synthetic(field.containing_oneof):
            note = f"Member of the oneof '{field.containing_oneof.name}': at most one is set."
            description = f"{description}\n\n{note}" if description else note
        if description:
            # A $ref with siblings is valid in 3.1 (JSON Schema 2020-12).
            schema["description"] = description
        return schema

    def single(self, field: FieldDescriptor) -> dict[str, Any]:
        kind = field.type
        if kind == _FD.TYPE_MESSAGE:
            return self.ref(field.message_type)
        if kind == _FD.TYPE_ENUM:
            return self.enum_ref(field.enum_type)
        if kind == _FD.TYPE_STRING:
            return {"type": "string"}
        if kind == _FD.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64"}
        if kind == _FD.TYPE_BOOL:
            return {"type": "boolean"}
        if kind in _INT32:
            return {"type": "integer", "format": "int32"}
        if kind in _UINT32:
            return {"type": "integer", "format": "uint32", "minimum": 0}
        if kind in _INT64:
            return {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}
        if kind in _UINT64:
            return {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"}
        fmt = "float" if kind == _FD.TYPE_FLOAT else "double"
        return {"type": ["number", "string"], "format": fmt}  # "NaN", "Infinity" are strings

    def _describe(self, schema: dict[str, Any], name: str) -> None:
        text = self.comments.get(name)
        if text:
            schema["description"] = text

    def status(self) -> dict[str, Any]:
        if _STATUS not in self.schemas:
            self.schemas[_ANY] = self.message(_any_descriptor())
            self.schemas[_STATUS] = {
                "type": "object",
                "description": "The gRPC status of a failed call (google.rpc.Status).",
                "properties": {
                    "code": {
                        "type": "integer",
                        "format": "int32",
                        "description": "google.rpc.Code",
                    },
                    "message": {"type": "string"},
                    "details": {
                        "type": "array",
                        "items": {"$ref": f"#/components/schemas/{_ANY}"},
                    },
                },
            }
        return {"$ref": f"#/components/schemas/{_STATUS}"}


def _synthetic(oneof: Any) -> bool:
    # proto3 `optional` makes a one-member "synthetic" oneof; it is no choice.
    return bool(getattr(oneof, "is_synthetic", False)) or (
        len(oneof.fields) == 1 and oneof.name.startswith("_")
    )


def _any_descriptor() -> Descriptor:
    from google.protobuf import any_pb2

    return any_pb2.Any.DESCRIPTOR


def openapi_document(
    bindings: Iterable[Binding],
    *,
    title: str = "API",
    version: str = "0.1.0",
    descriptor_set: bytes | None = None,
    json_array: bool = False,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``bindings``."""
    builder = _Builder(comments_from_descriptor_set(descriptor_set))
    paths: dict[str, dict[str, Any]] = {}
    tags: dict[str, dict[str, Any]] = {}
    error = {
        "description": "The call failed: its gRPC status, mapped to the HTTP status.",
        "content": {"application/json": {"schema": builder.status()}},
    }
    ordered = sorted(bindings, key=lambda b: (b.rpc.path, b.index))
    for binding in ordered:
        method = binding.rpc.descriptor
        service = method.containing_service.full_name
        tag: dict[str, Any] = {"name": service}
        if service in builder.comments:
            tag["description"] = builder.comments[service]
        tags[service] = tag
        path, patterns = binding.template.openapi_path()
        verb = binding.http_method.lower()
        methods = [verb] if verb != "*" else ["get", "put", "post", "delete", "patch"]
        for one in methods:
            extra = one != methods[0]
            operation = _operation(builder, binding, patterns, error, extra, json_array)
            paths.setdefault(path, {}).setdefault(one, operation)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "tags": list(tags.values()),
        "paths": paths,
        "components": {"schemas": dict(sorted(builder.schemas.items()))},
    }


def _operation(
    builder: _Builder,
    binding: Binding,
    patterns: dict[str, str],
    error: dict[str, Any],
    extra: bool,
    json_array: bool,
) -> dict[str, Any]:
    method = binding.rpc.descriptor
    request = method.input_type
    operation_id = f"{method.containing_service.name}_{method.name}"
    if binding.index:
        operation_id += f"_{binding.index}"
    if extra:
        operation_id += f"_{binding.http_method.lower()}"
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "tags": [method.containing_service.full_name],
        "summary": method.name,
    }
    description = builder.comments.get(method.full_name)
    if description:
        operation["description"] = description
    parameters: list[dict[str, Any]] = []
    bound: set[tuple[str, ...]] = set()
    for variable in binding.template.variables:
        fields = resolve(request, variable.field_path)
        bound.add(tuple(f.name for f in fields))
        name = ".".join(variable.field_path)
        schema = builder.single(fields[-1])
        if name in patterns:
            schema = {"type": "string", "pattern": patterns[name]}
        parameters.append(_param(builder, name, "path", schema, fields[-1], required=True))
    path_text, _ = binding.template.openapi_path()
    wildcards = path_text.count("{_wildcard")
    parameters += [
        {"name": f"_wildcard{i}", "in": "path", "required": True, "schema": {"type": "string"}}
        for i in range(wildcards)
    ]
    if binding.body != "*":
        skip = binding.body
        for name, field in _query_fields(request, (), (), bound, skip, set()):
            schema = builder.field(field) if is_repeated(field) else builder.single(field)
            schema.pop("description", None)
            parameters.append(_param(builder, name, "query", schema, field, required=False))
    if parameters:
        operation["parameters"] = parameters
    if binding.body:
        if binding.body == "*":
            schema = builder.ref(request)
        else:
            schema = builder.field(request.fields_by_name[binding.body])
        if binding.rpc.client_streaming:
            schema = {"type": "array", "items": schema}  # or the messages as NDJSON
        media = {"application/json": {"schema": schema}}
        if binding.raw_request:  # google.api.HttpBody: any bytes, any content type
            media = {"*/*": {"schema": {}}}
        operation["requestBody"] = {"required": True, "content": media}
    response = method.output_type
    if binding.response_body:
        body_schema = builder.field(response.fields_by_name[binding.response_body])
    else:
        body_schema = builder.ref(response)
    if binding.raw_response:
        content: dict[str, Any] = {"*/*": {"schema": {}}}
        description = "The body's bytes, with its content type (google.api.HttpBody)."
    elif binding.rpc.server_streaming and json_array:
        content = {"application/json": {"schema": {"type": "array", "items": body_schema}}}
        description = "The stream's messages, as one JSON array written as they come."
    elif binding.rpc.server_streaming:
        content = {
            "application/x-ndjson": {
                "schema": {
                    "type": "object",
                    "description": "One line per message; a failure mid-stream as a last line.",
                    "properties": {"result": body_schema, "error": builder.status()},
                }
            }
        }
        description = "A stream of messages, one JSON object per line."
    else:
        content = {"application/json": {"schema": body_schema}}
        description = "OK"
    operation["responses"] = {
        "200": {"description": description, "content": content},
        "default": error,
    }
    return operation


def _param(
    builder: _Builder,
    name: str,
    where: str,
    schema: dict[str, Any],
    field: FieldDescriptor,
    *,
    required: bool,
) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": schema}
    description = builder.comments.get(field.full_name)
    if description:
        param["description"] = description
    if where == "query" and is_map(field):
        param["style"] = "deepObject"
        param["explode"] = True
    elif where == "query" and is_repeated(field):
        param["style"] = "form"
        param["explode"] = True
    return param


def _query_fields(
    descriptor: Descriptor,
    prefix: tuple[str, ...],
    json_prefix: tuple[str, ...],
    bound: set[tuple[str, ...]],
    body: str,
    visiting: set[str],
) -> Iterable[tuple[str, FieldDescriptor]]:
    """Leaf fields that query parameters may set (dotted JSON names), nested messages expanded
    (each message type once per branch: recursive types stop)."""
    if descriptor.full_name in visiting:
        return
    visiting = visiting | {descriptor.full_name}
    for field in descriptor.fields:
        names = (*prefix, field.name)
        if names in bound or (not prefix and field.name == body):
            continue
        dotted = ".".join((*json_prefix, field.json_name))
        if is_map(field):
            value = field.message_type.fields_by_name["value"]
            if value.type != _FD.TYPE_MESSAGE or value.message_type.full_name in _WKT:
                yield dotted, field  # as a deepObject: name[key]=value
            continue
        if is_repeated(field) and field.type == _FD.TYPE_MESSAGE:
            continue
        if field.type == _FD.TYPE_MESSAGE and field.message_type.full_name not in _WKT:
            yield from _query_fields(
                field.message_type, names, (*json_prefix, field.json_name), bound, body, visiting
            )
            continue
        if field.type == _FD.TYPE_MESSAGE and field.message_type.full_name in (
            "google.protobuf.Struct",
            "google.protobuf.ListValue",
            "google.protobuf.Empty",
        ):
            continue
        yield dotted, field
