"""Build a ``_pb2_asgi_grpc`` module at run time from a compiled ``_pb2`` module.

The source is the plugin's own output for that file (same renderer, same model), executed with the
message classes bound directly, so a runtime-built module and a generated file behave alike.
"""

from __future__ import annotations

import threading
import types
from typing import Any

from google.protobuf import descriptor, descriptor_pb2, message_factory

from ._model import from_file_proto, message_index
from ._render import SUFFIX, render_module

_cache: dict[str, types.ModuleType] = {}
_lock = threading.Lock()


def services_from_pb2(pb2: types.ModuleType) -> types.ModuleType:
    """The ``_pb2_asgi_grpc`` module for a compiled ``_pb2`` module, built from its service
    descriptors: ``XStub``, ``XServicer``, ``add_XServicer_to_server`` and ``X`` for each service.

    Use it when only the ``_pb2`` module is at hand (grpcio-tools' output without the
    ``_pb2_grpc`` file, a vendored package). Built once per ``_pb2`` module.
    """
    file = getattr(pb2, "DESCRIPTOR", None)
    if not isinstance(file, descriptor.FileDescriptor):
        raise TypeError(f"{pb2!r} is not a compiled _pb2 module (it has no file DESCRIPTOR)")
    with _lock:
        built = _cache.get(pb2.__name__)
        if built is None or getattr(built, "DESCRIPTOR", None) is not file:
            built = _cache[pb2.__name__] = _build(pb2.__name__, file)
        return built


def _build(pb2_name: str, file: descriptor.FileDescriptor) -> types.ModuleType:
    classes: dict[str, Any] = {}
    protos = {file.name: _to_proto(file)}
    for service in file.services_by_name.values():
        for method in service.methods:
            for message in (method.input_type, method.output_type):
                classes[message.full_name] = message_factory.GetMessageClass(message)
                if message.file.name not in protos:
                    protos[message.file.name] = _to_proto(message.file)
    model = from_file_proto(protos[file.name], message_index(protos.values()))
    source = render_module(model, ref=lambda ref: f"_messages[{ref.full_name!r}]", imports=False)
    name = pb2_name.removesuffix("_pb2") + SUFFIX
    module = types.ModuleType(name, f"asgi_grpc services for {file.name}, built at run time.")
    module.__dict__["_messages"] = classes
    module.__dict__["DESCRIPTOR"] = file
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def _to_proto(file: descriptor.FileDescriptor) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)
    return proto
