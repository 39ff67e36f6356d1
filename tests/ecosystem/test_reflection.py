"""asgi_grpc.reflection discovered by grpcio-reflection's ProtoReflectionDescriptorDatabase
(v1alpha, on a grpcio channel), then used to call a service it knew nothing about; and the v1
protocol through asgi_grpc's own generated stub."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from grpc_reflection.v1alpha import reflection_pb2 as grpcio_reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

import asgi_grpc
from asgi_grpc import health, reflection
from asgi_grpc.reflection import _v1_pb2_asgi_grpc as v1
from asgi_grpc.reflection import _v1alpha_pb2_asgi_grpc as v1alpha

from .servicers import register_echo, register_shop
from .support import module, sync_server
from .test_health import wire_shape

ext_pb2 = module("eco.ext_pb2")
ext_asgi = module("eco.ext_pb2_asgi_grpc")

NAMES = [
    "asgi_grpc.test.Echo",
    "eco.shop.v1.Inventory",
    "eco.shop.v1.Orders",
    "eco.ext.Extended",
    health.SERVICE_NAME,
    reflection.SERVICE_NAME,
]


class Extended(ext_asgi.ExtendedServicer):  # type: ignore[misc]
    def Echo(self, request: Any, context: Any) -> Any:
        return request


def register(server: Any) -> None:
    register_echo(server)
    register_shop(server)
    ext_asgi.add_ExtendedServicer_to_server(Extended(), server)
    health.add_HealthServicer_to_server(health.HealthServicer(), server)
    reflection.enable_server_reflection(NAMES, server)


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with sync_server("asgi_grpc", register) as address:
        yield address


def test_wire_identical_to_grpcio_reflection() -> None:
    ours = wire_shape(v1alpha.ServerReflectionRequest.DESCRIPTOR.file)
    assert ours == wire_shape(grpcio_reflection_pb2.DESCRIPTOR)
    # v1 and v1alpha differ only in their package name.
    v1_text = text_format.MessageToString(wire_shape(v1.ServerReflectionRequest.DESCRIPTOR.file))
    assert v1_text == text_format.MessageToString(ours).replace("v1alpha", "v1")


def test_discover_then_call_an_unknown_service(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        assert sorted(database.get_services()) == sorted([*NAMES, reflection.V1_SERVICE_NAME])
        pool = descriptor_pool.DescriptorPool(database)
        service = pool.FindServiceByName("asgi_grpc.test.Echo")
        method = service.methods_by_name["Unary"]
        # Classes built from the fetched descriptors: this client never imported echo_pb2's.
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        call = channel.unary_unary(
            f"/{service.full_name}/{method.name}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        assert call(request_class(message="found you"), timeout=5).message == "found you"


def test_files_dependencies_symbols_and_extensions(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = descriptor_pool.DescriptorPool(database)
        # By file name: dependencies (an import and a well-known type) come along.
        shop = pool.FindFileByName("eco/shop/v1/shop.proto")
        assert [d.name for d in shop.dependencies] == [
            "eco/common/types.proto",
            "google/protobuf/empty.proto",
        ]
        # By symbol: a nested message, a method (pools do not index methods by name).
        assert database.FindFileContainingSymbol("eco.common.Item.Tag").name == (
            "eco/common/types.proto"
        )
        assert database.FindFileContainingSymbol("eco.shop.v1.Orders.Chat").name == (
            "eco/shop/v1/shop.proto"
        )
        # Extensions.
        assert sorted(database.FindAllExtensionNumbers("eco.ext.Extendable")) == [100, 150]
        # (protobuf's DescriptorDatabase does not implement extension lookup, so grpcio-reflection
        # returns None here after fetching; test_v1_with_asgi_grpc_stub checks the answer.)
        database.FindFileContainingExtension("eco.ext.Extendable", 150)
        with pytest.raises(KeyError):
            database.FindAllExtensionNumbers("no.such.Message")
        # Misses surface as KeyError (NOT_FOUND error responses underneath).
        with pytest.raises(KeyError):
            database.FindFileContainingSymbol("no.such.Symbol")
        with pytest.raises(KeyError):
            database.FindFileByName("no/such.proto")
        # The health service asgi_grpc ships is discoverable too (from its own pool).
        assert pool.FindServiceByName("grpc.health.v1.Health").methods_by_name["Check"]


def test_v1_with_asgi_grpc_stub(target: str) -> None:
    with asgi_grpc.insecure_channel(target) as channel:
        stub = v1.ServerReflectionStub(channel)
        requests = [
            v1.ServerReflectionRequest(list_services=""),
            v1.ServerReflectionRequest(file_containing_symbol="eco.shop.v1.Inventory"),
            v1.ServerReflectionRequest(file_containing_symbol="no.Such"),
            v1.ServerReflectionRequest(host="only a host"),
            v1.ServerReflectionRequest(
                file_containing_extension=v1.ExtensionRequest(
                    containing_type="eco.ext.Extendable", extension_number=150
                )
            ),
            v1.ServerReflectionRequest(all_extension_numbers_of_type="eco.ext.Extendable"),
        ]
        answers = list(stub.ServerReflectionInfo(iter(requests), timeout=5))
    assert [a.WhichOneof("message_response") for a in answers] == [
        "list_services_response",
        "file_descriptor_response",
        "error_response",
        "error_response",
        "file_descriptor_response",
        "all_extension_numbers_response",
    ]
    assert reflection.V1_SERVICE_NAME in [s.name for s in answers[0].list_services_response.service]
    first = descriptor_pb2.FileDescriptorProto.FromString(
        answers[1].file_descriptor_response.file_descriptor_proto[0]
    )
    assert first.name == "eco/shop/v1/shop.proto"
    assert answers[2].error_response.error_code == asgi_grpc.StatusCode.NOT_FOUND.value[0]
    assert answers[3].error_response.error_code == asgi_grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert answers[1].original_request == requests[1]
    extension_file = answers[4].file_descriptor_response.file_descriptor_proto[0]
    assert descriptor_pb2.FileDescriptorProto.FromString(extension_file).name == "eco/ext.proto"
    numbers = answers[5].all_extension_numbers_response
    assert (numbers.base_type_name, sorted(numbers.extension_number)) == (
        "eco.ext.Extendable",
        [100, 150],
    )
