"""Messages beyond flat scalars: imports, well-known types (JSON forms of Timestamp, Struct,
Any), maps, oneofs, proto3 optional, nested types, enums, through ``describe`` and ``call``; and a
reflection server that, like grpc-go's, does not send a file's dependencies along."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

import asgi_grpc
from asgi_grpc.reflection import _v1_pb2_asgi_grpc as v1
from tests.cli.conftest import BackgroundLoop, Server, cli
from tests.cli.echo_app import KITCHEN, Kitchen, sink_pb2_grpc

EVERYTHING = "asgi_grpc.cli_test.Everything"
REQUEST = {
    "name": "n",
    "maybe": 0,  # set, although the default: proto3 optional has presence
    "parts": [{"id": "a", "weight": 1.5}],
    "byName": {"x": {"id": "x"}},
    "inner": {"values": ["1", "-2"]},  # int64 as strings
    "mood": "HAPPY",
    "when": "2024-05-06T07:08:09.500Z",
    "extra": {"k": [1, "two", None, {"z": True}]},
    "anything": {"@type": "type.googleapis.com/asgi_grpc.cli_test.Part", "id": "any", "weight": 2},
}
DESCRIPTION = """\
asgi_grpc.cli_test.Everything is a message:
message Everything {
  string name = 1;
  optional int32 maybe = 2;
  repeated .asgi_grpc.cli_test.Part parts = 3;
  map<string, .asgi_grpc.cli_test.Part> by_name = 4;
  oneof choice {
    string text = 5;
    .asgi_grpc.cli_test.Everything.Inner inner = 6;
  }
  .asgi_grpc.cli_test.Everything.Mood mood = 7;
  .google.protobuf.Timestamp when = 8;
  .google.protobuf.Struct extra = 9;
  .google.protobuf.Any anything = 10;
  message Inner {
    repeated int64 values = 1;
  }
  enum Mood {
    MOOD_UNSPECIFIED = 0;
    HAPPY = 1;
  }
}
"""


def test_describe_every_shape(server: Server) -> None:
    result = cli("describe", server.target, "--plaintext", EVERYTHING)
    assert result.status == 0, result.err
    assert result.out == DESCRIPTION
    enum = cli("describe", server.target, "--plaintext", f"{EVERYTHING}.Mood")
    assert enum.out == (
        f"{EVERYTHING}.Mood is an enum:\nenum Mood {{\n  MOOD_UNSPECIFIED = 0;\n  HAPPY = 1;\n}}\n"
    )


def test_json_round_trip_of_every_shape(server: Server) -> None:
    result = cli("call", server.target, "--plaintext", f"{KITCHEN}/Sink", "-d", json.dumps(REQUEST))
    assert result.status == 0, result.err
    assert json.loads(result.out) == REQUEST
    # An Any whose type the server does not know is a local error, before any call.
    unknown = {"anything": {"@type": "type.googleapis.com/no.Such", "x": 1}}
    failed = cli("call", server.target, "--plaintext", f"{KITCHEN}/Sink", "-d", json.dumps(unknown))
    assert failed.status == 1
    assert "request 1: " in failed.err


def test_any_of_types_the_method_does_not_import(server: Server) -> None:
    """Types inside Any are looked up by reflection when JSON needs them, requests and
    responses alike; one nobody knows is a local error."""
    echo_any = {"@type": "type.googleapis.com/asgi_grpc.test.EchoRequest", "message": "in"}
    request = cli(
        "call", server.target, "--plaintext", f"{KITCHEN}/Sink",
        "-d", json.dumps({"anything": echo_any}),
    )  # fmt: skip
    assert request.status == 0, request.err
    assert json.loads(request.out) == {"anything": echo_any}
    response = cli(
        "call", server.target, "--plaintext", f"{KITCHEN}/Sink", "-d", '{"name": "pack-echo"}'
    )
    assert response.status == 0, response.err
    assert json.loads(response.out) == {
        "name": "pack-echo",
        "anything": {
            "@type": "type.googleapis.com/asgi_grpc.test.EchoResponse",
            "message": "packed",
            "index": 7,
        },
    }


class StingyReflection(v1.ServerReflectionServicer):  # type: ignore[misc]
    """Answers with the one file asked about, never its dependencies (grpc-go leaves out the
    files it sent earlier on the stream): the client must ask for each import by name."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def ServerReflectionInfo(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        pool = descriptor_pool.Default()
        async for request in request_iterator:
            kind = request.WhichOneof("message_request")
            value = getattr(request, kind)
            self.asked.append((kind, value))
            if kind == "list_services":
                yield v1.ServerReflectionResponse(
                    list_services_response=v1.ListServiceResponse(
                        service=[v1.ServiceResponse(name=KITCHEN)]
                    )
                )
                continue
            if kind == "file_by_filename":
                file = pool.FindFileByName(value)
            else:
                file = pool.FindFileContainingSymbol(value)
            proto = descriptor_pb2.FileDescriptorProto()
            file.CopyToProto(proto)
            yield v1.ServerReflectionResponse(
                file_descriptor_response=v1.FileDescriptorResponse(
                    file_descriptor_proto=[proto.SerializeToString()]
                )
            )


@pytest.fixture
def stingy(background: BackgroundLoop) -> Any:
    servicer = StingyReflection()

    async def start() -> tuple[Any, int]:
        server = asgi_grpc.aio.server()
        sink_pb2_grpc.add_KitchenServicer_to_server(Kitchen(), server)
        v1.add_ServerReflectionServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        return server, port

    server, port = background.run(start())
    yield servicer, f"127.0.0.1:{port}"
    background.run(server.stop(None))


def test_dependencies_fetched_by_file_name(stingy: Any) -> None:
    servicer, target = stingy
    result = cli("call", target, "--plaintext", f"{KITCHEN}/Sink", "-d", json.dumps(REQUEST))
    assert result.status == 0, result.err
    assert json.loads(result.out) == REQUEST
    assert servicer.asked[0] == ("file_containing_symbol", KITCHEN)
    assert sorted(servicer.asked[1:]) == [
        ("file_by_filename", "cli_test/part.proto"),
        ("file_by_filename", "google/protobuf/any.proto"),
        ("file_by_filename", "google/protobuf/struct.proto"),
        ("file_by_filename", "google/protobuf/timestamp.proto"),
    ]
    described = cli("describe", target, "--plaintext", EVERYTHING)
    assert described.out == DESCRIPTION
