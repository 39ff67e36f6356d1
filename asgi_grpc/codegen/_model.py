"""What the code generator needs to know about a .proto file, independent of where it came from.

Both entry points build this model: the protoc plugin from the ``FileDescriptorProto`` objects
protoc hands it, the runtime path (:func:`~asgi_grpc.codegen.services_from_pb2`) from a compiled
``_pb2`` module's descriptor. Everything downstream (rendering) reads only this model, so generated
files and runtime-built modules cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from google.protobuf import descriptor_pb2

# Field numbers in descriptor.proto, used to find comments in SourceCodeInfo paths.
_FILE_SERVICE = 6  # FileDescriptorProto.service
_SERVICE_METHOD = 2  # ServiceDescriptorProto.method


@dataclass(frozen=True, kw_only=True)
class MessageRef:
    """A message type as generated code reaches it: ``<module>.<Outer>.<Inner>``."""

    full_name: str  # "pkg.Outer.Inner", no leading dot
    proto_file: str  # the .proto file that defines it, e.g. "pkg/types.proto"
    local_name: str  # "Outer.Inner": the attribute path inside that file's _pb2 module


@dataclass(frozen=True, kw_only=True)
class Method:
    name: str
    path: str  # "/pkg.Service/Method": the HTTP/2 :path of the call
    request: MessageRef
    response: MessageRef
    request_streaming: bool
    response_streaming: bool
    comment: str = ""

    @property
    def cardinality(self) -> str:
        """grpcio's name for the call shape: unary_unary, unary_stream, stream_unary, ..."""
        first = "stream" if self.request_streaming else "unary"
        second = "stream" if self.response_streaming else "unary"
        return f"{first}_{second}"


@dataclass(frozen=True, kw_only=True)
class Service:
    name: str
    full_name: str
    methods: tuple[Method, ...]
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class ProtoFile:
    name: str  # as protoc names it: "pkg/echo.proto"
    package: str
    services: tuple[Service, ...]

    def referenced_files(self) -> list[str]:
        """The .proto files whose messages the services use, in first-use order."""
        seen: dict[str, None] = {}
        for service in self.services:
            for method in service.methods:
                seen.setdefault(method.request.proto_file)
                seen.setdefault(method.response.proto_file)
        return list(seen)


def message_index(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> dict[str, MessageRef]:
    """Every message type in ``files`` by full name (nested ones included)."""
    index: dict[str, MessageRef] = {}

    def walk(
        messages: Iterable[descriptor_pb2.DescriptorProto], file: str, scope: str, local: str
    ) -> None:
        for message in messages:
            full = f"{scope}.{message.name}" if scope else message.name
            path = f"{local}.{message.name}" if local else message.name
            index[full] = MessageRef(full_name=full, proto_file=file, local_name=path)
            walk(message.nested_type, file, full, path)

    for file in files:
        walk(file.message_type, file.name, file.package, "")
    return index


def from_file_proto(
    file: descriptor_pb2.FileDescriptorProto, messages: Mapping[str, MessageRef]
) -> ProtoFile:
    """The model of one file; ``messages`` must cover the file and its dependencies."""
    comments = _comments(file)
    services = []
    for s_index, service in enumerate(file.service):
        full = f"{file.package}.{service.name}" if file.package else service.name
        methods = tuple(
            Method(
                name=method.name,
                path=f"/{full}/{method.name}",
                request=messages[method.input_type.lstrip(".")],
                response=messages[method.output_type.lstrip(".")],
                request_streaming=method.client_streaming,
                response_streaming=method.server_streaming,
                comment=comments.get((_FILE_SERVICE, s_index, _SERVICE_METHOD, m_index), ""),
            )
            for m_index, method in enumerate(service.method)
        )
        services.append(
            Service(
                name=service.name,
                full_name=full,
                methods=methods,
                comment=comments.get((_FILE_SERVICE, s_index), ""),
            )
        )
    return ProtoFile(name=file.name, package=file.package, services=tuple(services))


def _comments(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    """Leading comments (else trailing ones) by SourceCodeInfo path; empty without source info."""
    found: dict[tuple[int, ...], str] = {}
    for location in file.source_code_info.location:
        text = location.leading_comments or location.trailing_comments
        if text.strip():
            found[tuple(location.path)] = _dedent(text)
    return found


def _dedent(comment: str) -> str:
    # protoc keeps the single space after "//" on every line; docstrings read better without it.
    lines = [line[1:] if line.startswith(" ") else line for line in comment.strip("\n").split("\n")]
    return "\n".join(lines).strip()
