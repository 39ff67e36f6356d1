"""grpc.protos / grpc.services / grpc.protos_and_services: modules from .proto files at import time.

As in grpcio, compiling .proto files at run time is grpcio-tools' job (its import hooks find the
file on ``sys.path`` and compile it and its imports). The ``_pb2`` module it builds is plain
protobuf; the services module is asgi_grpc's own, built from that module's service descriptors
(:func:`asgi_grpc.codegen.services_from_pb2`), so it never imports grpc.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


def services_from_pb2(module: ModuleType) -> ModuleType:
    # codegen (and protobuf's descriptor_pb2 under it) is imported only by the processes that
    # build services at run time, not by every importer of asgi_grpc.
    from .codegen import services_from_pb2 as build

    return build(module)


def _grpc_tools_protoc(function: str) -> Any:
    try:
        protoc = importlib.import_module("grpc_tools.protoc")
    except ImportError as error:
        # A transitive ImportError from inside grpc_tools is a real bug: let it through.
        if error.name is not None and not error.name.startswith("grpc_tools"):
            raise
        raise NotImplementedError(
            f"asgi_grpc.{function}() compiles .proto files at run time with grpcio-tools: "
            "pip install grpcio-tools, or generate the modules ahead of time with "
            "protoc-gen-asgi_grpc (python -m grpc_tools.protoc --asgi_grpc_out=...)"
        ) from None
    if not hasattr(protoc, "_protos"):
        raise NotImplementedError(
            f"asgi_grpc.{function}() needs grpcio-tools 1.32 or newer (it has no runtime import "
            "hooks, or GRPC_PYTHON_DISABLE_DYNAMIC_STUBS turned them off)"
        )
    return protoc


def protos(protobuf_path: str) -> ModuleType:
    """The ``_pb2`` module for ``protobuf_path`` (a path relative to an entry of ``sys.path``,
    as are all the files it imports), compiled on first use."""
    module: ModuleType = _grpc_tools_protoc("protos")._protos(protobuf_path)
    return module


def services(protobuf_path: str) -> ModuleType:
    """The ``_pb2_asgi_grpc`` module for ``protobuf_path``: ``XStub``, ``XServicer``,
    ``add_XServicer_to_server`` and ``X`` for each service in the file."""
    return services_from_pb2(_grpc_tools_protoc("services")._protos(protobuf_path))


def protos_and_services(protobuf_path: str) -> tuple[ModuleType, ModuleType]:
    """``(protos(protobuf_path), services(protobuf_path))``."""
    messages = protos(protobuf_path)
    return messages, services_from_pb2(messages)
