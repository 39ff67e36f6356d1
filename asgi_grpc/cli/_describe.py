"""Descriptors rendered as .proto source, the way grpcurl's ``describe`` prints them.

Rendering works from the ``*DescriptorProto`` forms (``CopyToProto``): labels, ``proto3_optional``,
map entries and oneof indexes are plain fields there, the same in every protobuf backend.
"""

from __future__ import annotations

from google.protobuf import descriptor, descriptor_pb2

from ._reflection import Symbol

_FDP = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    _FDP.TYPE_DOUBLE: "double",
    _FDP.TYPE_FLOAT: "float",
    _FDP.TYPE_INT64: "int64",
    _FDP.TYPE_UINT64: "uint64",
    _FDP.TYPE_INT32: "int32",
    _FDP.TYPE_FIXED64: "fixed64",
    _FDP.TYPE_FIXED32: "fixed32",
    _FDP.TYPE_BOOL: "bool",
    _FDP.TYPE_STRING: "string",
    _FDP.TYPE_BYTES: "bytes",
    _FDP.TYPE_UINT32: "uint32",
    _FDP.TYPE_SFIXED32: "sfixed32",
    _FDP.TYPE_SFIXED64: "sfixed64",
    _FDP.TYPE_SINT32: "sint32",
    _FDP.TYPE_SINT64: "sint64",
}
_INDENT = "  "


def describe(symbol: Symbol) -> str:
    """``<full name> is a <kind>:`` and the symbol's definition."""
    if isinstance(symbol, descriptor.ServiceDescriptor):
        kind, body = "a service", service_source(symbol)
    elif isinstance(symbol, descriptor.MethodDescriptor):
        kind, body = "a method", method_source(symbol)
    elif isinstance(symbol, descriptor.Descriptor):
        kind, body = "a message", message_source(symbol)
    else:
        kind, body = "an enum", enum_source(symbol)
    return f"{symbol.full_name} is {kind}:\n{body}"


def service_source(service: descriptor.ServiceDescriptor) -> str:
    lines = [f"service {service.name} {{"]
    lines += [_INDENT + method_source(method) for method in service.methods]
    lines.append("}")
    return "\n".join(lines)


def method_source(method: descriptor.MethodDescriptor) -> str:
    proto = descriptor_pb2.MethodDescriptorProto()
    method.CopyToProto(proto)
    request = ("stream " if proto.client_streaming else "") + proto.input_type
    response = ("stream " if proto.server_streaming else "") + proto.output_type
    return f"rpc {proto.name} ( {request} ) returns ( {response} );"


def message_source(message: descriptor.Descriptor) -> str:
    proto = descriptor_pb2.DescriptorProto()
    message.CopyToProto(proto)
    file = descriptor_pb2.FileDescriptorProto()
    message.file.CopyToProto(file)
    return "\n".join(_message_lines(proto, file.syntax or "proto2", f".{message.full_name}"))


def enum_source(enum: descriptor.EnumDescriptor) -> str:
    proto = descriptor_pb2.EnumDescriptorProto()
    enum.CopyToProto(proto)
    return "\n".join(_enum_lines(proto))


def _enum_lines(proto: descriptor_pb2.EnumDescriptorProto) -> list[str]:
    lines = [f"enum {proto.name} {{"]
    lines += [f"{_INDENT}{value.name} = {value.number};" for value in proto.value]
    lines.append("}")
    return lines


def _message_lines(proto: descriptor_pb2.DescriptorProto, syntax: str, full_name: str) -> list[str]:
    maps = {
        f"{full_name}.{nested.name}": nested
        for nested in proto.nested_type
        if nested.options.map_entry
    }
    lines = [f"message {proto.name} {{"]
    oneofs: dict[int, list[str]] = {}
    for field in proto.field:
        text = _field(field, syntax, maps)
        if field.HasField("oneof_index") and not field.proto3_optional:
            if field.oneof_index not in oneofs:
                oneofs[field.oneof_index] = []
                # The oneof block sits where its first field is.
                lines.append(f"\0oneof{field.oneof_index}")
            oneofs[field.oneof_index].append(text)
        else:
            lines.append(_INDENT + text)
    out = []
    for line in lines:
        if line.startswith("\0oneof"):
            index = int(line[len("\0oneof") :])
            out.append(f"{_INDENT}oneof {proto.oneof_decl[index].name} {{")
            out += [_INDENT * 2 + text for text in oneofs[index]]
            out.append(_INDENT + "}")
        else:
            out.append(line)
    for nested in proto.nested_type:
        if not nested.options.map_entry:
            out += [
                _INDENT + line
                for line in _message_lines(nested, syntax, f"{full_name}.{nested.name}")
            ]
    for enum in proto.enum_type:
        out += [_INDENT + line for line in _enum_lines(enum)]
    for extension_range in proto.extension_range:
        end = "max" if extension_range.end >= 2**29 else str(extension_range.end - 1)
        out.append(f"{_INDENT}extensions {extension_range.start} to {end};")
    out.append("}")
    return out


def _field(
    field: descriptor_pb2.FieldDescriptorProto,
    syntax: str,
    maps: dict[str, descriptor_pb2.DescriptorProto],
) -> str:
    entry = maps.get(field.type_name)
    if entry is not None:
        key, value = entry.field[0], entry.field[1]
        return f"map<{_type(key)}, {_type(value)}> {field.name} = {field.number};"
    label = ""
    if field.label == _FDP.LABEL_REPEATED:
        label = "repeated "
    elif field.label == _FDP.LABEL_REQUIRED:
        label = "required "
    elif field.proto3_optional or (syntax == "proto2" and not field.HasField("oneof_index")):
        label = "optional "
    return f"{label}{_type(field)} {field.name} = {field.number};"


def _type(field: descriptor_pb2.FieldDescriptorProto) -> str:
    if field.type in (_FDP.TYPE_MESSAGE, _FDP.TYPE_ENUM, _FDP.TYPE_GROUP):
        return field.type_name
    return _SCALARS[field.type]
