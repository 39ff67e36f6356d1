"""Build the gRPC request message from an HTTP request: path variables, query parameters and the
JSON body, as google/api/http.proto maps them (sans-IO).

Everything is gathered into one JSON-shaped dict, then handed to protobuf's own JSON parser
(``json_format.ParseDict``): strings become int64, enums are read by name or number, well-known
types (Timestamp, Duration, FieldMask, wrappers) from their JSON strings, with protobuf's own
error messages. Precedence, lowest first: body, query parameters, path variables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor as _FD
from google.protobuf.message import Message

from .._core import StatusCode

# protobuf's stubs type every descriptor link as Optional and do not know the upb classes the
# runtime hands out, so descriptors are untyped here (checked by the tests instead).
Descriptor: TypeAlias = Any
FieldDescriptor: TypeAlias = Any
_STRING_WKT = frozenset(
    {
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
    }
)
_WRAPPERS = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)


_MAP_ENTRY = re.compile(r"([^\[]+)\[(.*)\]\Z", re.S)  # the key may hold brackets


class TranscodeError(Exception):
    """The HTTP request cannot become the gRPC request; carries the status for the reply."""

    def __init__(self, code: StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> TranscodeError:
    return TranscodeError(StatusCode.INVALID_ARGUMENT, message)


def is_repeated(field: FieldDescriptor) -> bool:
    # protobuf 7 dropped ``label``; ``is_repeated`` is newer than the protobuf 5 we allow.
    flag = getattr(field, "is_repeated", None)
    if flag is None:
        return bool(getattr(field, "label", None) == _FD.LABEL_REPEATED)
    return bool(flag)


def is_map(field: FieldDescriptor) -> bool:
    message = field.message_type
    return bool(is_repeated(field) and message is not None and message.GetOptions().map_entry)


def resolve(descriptor: Descriptor, path: Iterable[str]) -> tuple[FieldDescriptor, ...]:
    """The fields along a dotted path; each step by proto name or JSON name. Every step but the
    last must be a singular message field. Raises KeyError naming the missing step."""
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = descriptor
    for name in path:
        if current is None:
            raise KeyError(name)
        field = current.fields_by_name.get(name) or _by_json_name(current, name)
        if field is None:
            raise KeyError(name)
        if fields and (is_repeated(fields[-1]) or fields[-1].message_type is None):
            raise KeyError(name)
        fields.append(field)
        current = field.message_type
    return tuple(fields)


def _by_json_name(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    for field in descriptor.fields:
        if field.json_name == name:
            return field
    return None


def scalar_json(field: FieldDescriptor, raw: str) -> Any:
    """A URL string as the JSON value protobuf's parser wants for ``field`` (one element of it,
    for a repeated field). int64/float values may stay strings; protobuf parses those."""
    kind = field.type
    if kind == _FD.TYPE_BOOL:
        return _bool(raw)
    if kind == _FD.TYPE_ENUM:
        return int(raw) if raw.lstrip("-").isdigit() else raw
    if kind == _FD.TYPE_MESSAGE:
        name = field.message_type.full_name
        if name in _STRING_WKT or name == "google.protobuf.Value":
            return raw
        if name in _WRAPPERS:
            return scalar_json(field.message_type.fields_by_name["value"], raw)
        raise invalid(f"{field.name} is a message: set its fields as {field.name}.<field>")
    return raw


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise invalid(f"invalid boolean {raw!r}")


def _put(tree: dict[str, Any], fields: tuple[FieldDescriptor, ...], value: Any) -> None:
    node = tree
    for field in fields[:-1]:
        child = node.get(field.name)
        if not isinstance(child, dict):
            child = node[field.name] = {}
        node = child
    node[fields[-1].name] = value


NO_BODY: Any = object()


def parse_json_body(body: bytes) -> Any:
    """The request body as JSON (an empty body is ``{}``)."""
    try:
        text = body.decode("utf-8", "strict")
        return json.loads(text) if text.strip() else {}
    except (ValueError, RecursionError) as exc:  # (UnicodeDecodeError is a ValueError)
        raise invalid(f"request body is not valid JSON: {exc}")


def parse_json_stream(body: bytes) -> list[Any]:
    """A client stream's messages: a JSON array (Envoy) or JSON values one after another, such
    as newline-delimited JSON (grpc-gateway)."""
    try:
        text = body.decode("utf-8", "strict")
        decoder = json.JSONDecoder()
        values: list[Any] = []
        index = _skip_space(text, 0)
        while index < len(text):
            value, index = decoder.raw_decode(text, index)
            values.append(value)
            index = _skip_space(text, index)
    except (ValueError, RecursionError) as exc:  # (UnicodeDecodeError is a ValueError)
        raise invalid(f"request body is not valid JSON: {exc}")
    if len(values) == 1 and isinstance(values[0], list):
        return list(values[0])
    return values


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def build_request(
    message_class: type[Message],
    *,
    path_values: Mapping[tuple[str, ...], str],
    query: Iterable[tuple[str, str]],
    body_field: str,
    body: Any = NO_BODY,
    ignore_unknown_fields: bool = True,
    ignore_unknown_query_parameters: bool = False,
) -> Message:
    """The request message of one HTTP request. ``body_field`` is http.proto's ``body``: "" (no
    body), "*" (the whole message) or a top-level field name; ``body`` the parsed JSON.

    Three layers, each merged over the one before by protobuf's JSON parser: query parameters,
    then the body, then path variables (grpc-gateway's order: what the path says wins).
    """
    descriptor = message_class.DESCRIPTOR
    request = message_class()
    path_fields = {path: _resolve_or_fail(descriptor, path) for path in path_values}
    query_tree: dict[str, Any] = {}
    _apply_query(
        descriptor, query_tree, query, body_field, path_fields, ignore_unknown_query_parameters
    )
    body_tree: dict[str, Any] = {}
    if body_field == "*" and body is not NO_BODY:
        if not isinstance(body, dict):
            raise invalid("request body must be a JSON object")
        body_tree = body
    elif body_field and body is not NO_BODY:
        body_tree = {body_field: body}
    path_tree: dict[str, Any] = {}
    for path, raw in path_values.items():
        fields = path_fields[path]
        _put(path_tree, fields, scalar_json(fields[-1], raw))
    try:
        if query_tree:
            json_format.ParseDict(query_tree, request)
        if body_tree:
            if ignore_unknown_fields:
                # Dropped here rather than by json_format's ignore_unknown_fields, which also
                # lets a string pass for a message (it looks up the string's characters).
                body_tree = _known(body_tree, descriptor)
            json_format.ParseDict(body_tree, request)
        if path_tree:
            json_format.ParseDict(path_tree, request)
    except json_format.ParseError as exc:
        raise invalid(str(exc))
    except RecursionError:  # JSON nested deeper than Python recurses (a Struct, say)
        raise invalid("request body nested too deeply")
    return request


def _known(value: dict[str, Any], descriptor: Descriptor) -> dict[str, Any]:
    """A JSON object for ``descriptor`` without the members that name no field, at every depth
    of ordinary messages (well-known types and Any keep their JSON as it is)."""
    out: dict[str, Any] = {}
    for name, member in value.items():
        field = descriptor.fields_by_name.get(name) or _by_json_name(descriptor, name)
        if field is None:
            continue
        out[name] = member
        message = field.message_type
        if message is None or message.full_name.startswith("google.protobuf."):
            continue
        if is_map(field):
            inner = message.fields_by_name["value"].message_type
            if inner is not None and isinstance(member, dict):
                out[name] = {k: _known_any(v, inner) for k, v in member.items()}
        elif is_repeated(field) and isinstance(member, list):
            out[name] = [_known_any(item, message) for item in member]
        else:
            out[name] = _known_any(member, message)
    return out


def _known_any(value: Any, descriptor: Descriptor) -> Any:
    if isinstance(value, dict) and not descriptor.full_name.startswith("google.protobuf."):
        return _known(value, descriptor)
    return value  # not an object: protobuf's parser says what is wrong with it


def _resolve_or_fail(descriptor: Descriptor, path: tuple[str, ...]) -> tuple[FieldDescriptor, ...]:
    try:
        return resolve(descriptor, path)
    except KeyError:  # checked when the route table was built; a changed descriptor lands here
        raise TranscodeError(StatusCode.INTERNAL, f"no field {'.'.join(path)}")


def _apply_query(
    descriptor: Descriptor,
    tree: dict[str, Any],
    query: Iterable[tuple[str, str]],
    body_field: str,
    path_fields: Mapping[tuple[str, ...], tuple[FieldDescriptor, ...]],
    ignore_unknown: bool,
) -> None:
    repeated: dict[tuple[str, ...], list[Any]] = {}
    single: set[tuple[str, ...]] = set()
    path_names = {tuple(f.name for f in fields) for fields in path_fields.values()}
    for key, raw in query:
        # `labels[k]=v` sets one entry of a map field (grpc-gateway's form; OpenAPI's
        # deepObject style).
        entry = _MAP_ENTRY.match(key)
        path = entry.group(1) if entry else key
        try:
            fields = resolve(descriptor, path.split("."))
            if body_field and fields[0].name == body_field:
                raise KeyError(key)  # that field comes from the body
            if entry and not is_map(fields[-1]):
                raise KeyError(key)
        except KeyError:
            if ignore_unknown:
                continue
            raise invalid(f"unknown query parameter {key!r}")
        names = tuple(f.name for f in fields)
        if names in path_names:
            continue  # the path sets it
        leaf = fields[-1]
        if entry:
            value_field = leaf.message_type.fields_by_name["value"]
            node = tree
            for field in fields:
                node = node.setdefault(field.name, {})
            node[entry.group(2)] = scalar_json(value_field, raw)
            continue
        if is_map(leaf):
            raise invalid(f"query parameter {key!r} names a map: set entries as {key}[key]=value")
        if is_repeated(leaf) and leaf.type == _FD.TYPE_MESSAGE:
            raise invalid(f"query parameter {key!r} names a repeated message field")
        if is_repeated(leaf):
            values = repeated.setdefault(names, [])
            values.append(scalar_json(leaf, raw))
            _put(tree, fields, values)
        elif names in single:
            raise invalid(f"query parameter {key!r} given more than once")
        else:
            single.add(names)
            _put(tree, fields, scalar_json(leaf, raw))
