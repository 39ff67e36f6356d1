"""The ``embed_messages`` variant: a ``_pb2_asgi_grpc`` module that carries its own messages.

asgi_grpc ships the health and reflection protos. grpcio's packages define the same message names
in protobuf's default pool, so asgi_grpc's copies live in :data:`asgi_grpc.codegen.runtime.POOL`,
and the module that defines their classes must be ours too: it embeds the serialized file
descriptor and builds the classes from it. Its ``.pyi`` declares the messages as well (fields,
constructor keywords, enum values), since there is no ``_pb2.pyi`` beside it.
"""

from __future__ import annotations

import keyword

from google.protobuf import descriptor_pb2

from ._model import MessageRef, ProtoFile, message_index
from ._render import HEADER, _add_function, _servicer, _static, _stub, render_stub

_FDP = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    _FDP.TYPE_DOUBLE: "float",
    _FDP.TYPE_FLOAT: "float",
    _FDP.TYPE_INT64: "int",
    _FDP.TYPE_UINT64: "int",
    _FDP.TYPE_INT32: "int",
    _FDP.TYPE_FIXED64: "int",
    _FDP.TYPE_FIXED32: "int",
    _FDP.TYPE_BOOL: "bool",
    _FDP.TYPE_STRING: "str",
    _FDP.TYPE_BYTES: "bytes",
    _FDP.TYPE_UINT32: "int",
    _FDP.TYPE_ENUM: "int",
    _FDP.TYPE_SFIXED32: "int",
    _FDP.TYPE_SFIXED64: "int",
    _FDP.TYPE_SINT32: "int",
    _FDP.TYPE_SINT64: "int",
}


def _local(message: MessageRef) -> str:
    return message.local_name


def _bytes_literal(data: bytes, indent: str, width: int = 72) -> str:
    """``data`` as implicitly concatenated bytes literals, one per line, each short enough for
    a 100-column limit once indented (so the output is stable under ruff format)."""
    lines = []
    current = ""
    for byte in data:
        piece = repr(bytes([byte]))[2:-1]
        if byte in (0x22, 0x27):
            # Hex escapes for quotes: no quote character, so no formatter swaps quote styles.
            piece = f"\\x{byte:02x}"
        if len(current) + len(piece) > width:
            lines.append(current)
            current = ""
        current += piece
    lines.append(current)
    return "".join(f'{indent}b"{line}"\n' for line in lines)


def render_embedded_module(file: ProtoFile, proto: descriptor_pb2.FileDescriptorProto) -> str:
    # Source info (comments, spans) is for tools, not for the pool: keep the module small.
    stripped = descriptor_pb2.FileDescriptorProto()
    stripped.CopyFrom(proto)
    stripped.ClearField("source_code_info")
    out = [HEADER.format(source=file.name)]
    out.append('"""Messages, client and server classes of one .proto file (see above)."""\n\n')
    out.append("import asgi_grpc\nfrom asgi_grpc.codegen import runtime as _runtime\n\n")
    out.append("DESCRIPTOR = _runtime.add_serialized_file(\n")
    out.append(_bytes_literal(stripped.SerializeToString(deterministic=True), "    "))
    out.append(")\n")
    out.extend(
        f'{message.name} = _runtime.message_class(DESCRIPTOR, "{message.name}")\n'
        for message in proto.message_type
    )
    for enum in proto.enum_type:
        out.append(f'{enum.name} = _runtime.enum_type(DESCRIPTOR, "{enum.name}")\n')
        out.extend(f"{value.name} = {value.number}\n" for value in enum.value)
    for service in file.services:
        out.append(_stub(service, _local))
        out.append(_servicer(service))
        out.append(_add_function(service, _local))
        out.append(_static(service, _local))
    return "".join(out)


def render_embedded_stub(file: ProtoFile, proto: descriptor_pb2.FileDescriptorProto) -> str:
    index = message_index([proto])
    maps = {
        full: message
        for full, message in _all_messages(proto.message_type, proto.package)
        if message.options.map_entry
    }
    preamble = ["\nDESCRIPTOR: _descriptor.FileDescriptor\n"]
    for enum in proto.enum_type:
        preamble.append(f"{enum.name}: _enum_type_wrapper.EnumTypeWrapper\n")
        preamble.extend(f"{value.name}: int\n" for value in enum.value)
    preamble.extend(
        _message_pyi(message, proto.package, index, maps, "") for message in proto.message_type
    )
    third_party = [
        "from google.protobuf import descriptor as _descriptor",
        "from google.protobuf import message as _message",
        "from google.protobuf.internal import containers as _containers",
        "from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper",
    ]
    return render_stub(
        file, ref=_local, imports=False, third_party=third_party, preamble="".join(preamble)
    )


def _all_messages(messages: object, scope: str) -> list[tuple[str, descriptor_pb2.DescriptorProto]]:
    found = []
    for message in messages:  # type: ignore[attr-defined]
        full = f"{scope}.{message.name}" if scope else message.name
        found.append((full, message))
        found.extend(_all_messages(message.nested_type, full))
    return found


def _field_type(field: descriptor_pb2.FieldDescriptorProto, index: dict[str, MessageRef]) -> str:
    if field.type in (_FDP.TYPE_MESSAGE, _FDP.TYPE_GROUP):
        return index[field.type_name.lstrip(".")].local_name
    return _SCALARS[field.type]


def _message_pyi(
    message: descriptor_pb2.DescriptorProto,
    scope: str,
    index: dict[str, MessageRef],
    maps: dict[str, descriptor_pb2.DescriptorProto],
    indent: str,
) -> str:
    full = f"{scope}.{message.name}" if scope else message.name
    out = [f"\n{indent}class {message.name}(_message.Message):\n"]
    inner = indent + "    "
    for enum in message.enum_type:
        out.append(f"{inner}{enum.name}: ClassVar[_enum_type_wrapper.EnumTypeWrapper]\n")
        out.extend(f"{inner}{value.name}: ClassVar[int]\n" for value in enum.value)
    out.extend(
        _message_pyi(nested, full, index, maps, inner)
        for nested in message.nested_type
        if not nested.options.map_entry
    )
    params = []
    for field in message.field:
        if keyword.iskeyword(field.name):
            continue  # not reachable as an attribute; getattr() still works
        entry = maps.get(field.type_name.lstrip(".")) if field.type == _FDP.TYPE_MESSAGE else None
        if entry is not None:
            key, value = entry.field[0], entry.field[1]
            key_type, value_type = _field_type(key, index), _field_type(value, index)
            if value.type == _FDP.TYPE_MESSAGE:
                attr = f"_containers.MessageMap[{key_type}, {value_type}]"
            else:
                attr = f"_containers.ScalarMap[{key_type}, {value_type}]"
            init = f"Mapping[{key_type}, {value_type}]"
        elif field.label == _FDP.LABEL_REPEATED:
            item = _field_type(field, index)
            container = (
                "RepeatedCompositeFieldContainer"
                if field.type in (_FDP.TYPE_MESSAGE, _FDP.TYPE_GROUP)
                else "RepeatedScalarFieldContainer"
            )
            attr = f"_containers.{container}[{item}]"
            init = f"Iterable[{item}]"
        else:
            attr = init = _field_type(field, index)
        out.append(f"{inner}{field.name}: {attr}\n")
        params.append(f"{inner}    {field.name}: {init} | None = ...,\n")
    if params:
        out.append(f"{inner}def __init__(\n{inner}    self,\n{inner}    *,\n")
        out.extend(params)
        out.append(f"{inner}) -> None: ...\n")
    elif not message.enum_type and not message.nested_type:
        out.append(f"{inner}pass\n")
    return "".join(out)
