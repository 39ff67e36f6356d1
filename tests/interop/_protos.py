"""The interop protos, compiled once per session by tests.protoc."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from tests.protoc import load

ROOT = Path(__file__).parent / "protos"


@dataclass(frozen=True)
class Protos:
    """The generated modules a case or servicer needs."""

    empty: ModuleType  # interop_empty_pb2: Empty
    messages: ModuleType  # interop_messages_pb2: SimpleRequest, Payload, ...
    services: ModuleType  # interop_test_pb2_grpc: TestServiceStub, add_TestServiceServicer_...
    grpclib_services: ModuleType  # interop_test_grpc: grpclib's TestServiceStub


@functools.cache
def load_protos() -> Protos:
    # Imports come first: the generated interop_test_pb2 imports the other two by module name.
    (empty, _) = load("interop_empty.proto", root=ROOT)
    (messages, _) = load("interop_messages.proto", root=ROOT)
    (_, services, grpclib_services) = load("interop_test.proto", root=ROOT, grpclib=True)
    return Protos(
        empty=empty, messages=messages, services=services, grpclib_services=grpclib_services
    )
