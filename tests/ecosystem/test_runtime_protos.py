"""asgi_grpc.protos / services / protos_and_services (compiled at import time by grpcio-tools)
and services_from_pb2 (stubs and registration from a compiled _pb2 module alone)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import grpc
import pytest

import asgi_grpc
from asgi_grpc.codegen import services_from_pb2
from tests import protoc as test_protoc

from .servicers import AsyncEcho
from .support import aio_server

CALC = """
syntax = "proto3";
package asgi_grpc.runtime_test;
message Pair { int32 a = 1; int32 b = 2; }
message Total { int32 value = 1; }
service Calc {
  rpc Add(Pair) returns (Total);
  rpc Count(Total) returns (stream Total);
}
"""


@pytest.fixture
def proto_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    # One directory per session: protobuf's default pool is process-wide, and the same file
    # name must always carry the same content.
    root = tmp_path_factory.getbasetemp() / "runtime_protos"
    root.mkdir(exist_ok=True)
    (root / "asgi_grpc_runtime_calc.proto").write_text(CALC)
    monkeypatch.syspath_prepend(str(root))
    return root


async def test_protos_and_services_round_trip(proto_dir: Path) -> None:
    protos, services = asgi_grpc.protos_and_services("asgi_grpc_runtime_calc.proto")
    assert asgi_grpc.protos("asgi_grpc_runtime_calc.proto") is protos
    assert asgi_grpc.services("asgi_grpc_runtime_calc.proto") is services  # built once
    assert services.__name__ == "asgi_grpc_runtime_calc_pb2_asgi_grpc"

    class Calc(services.CalcServicer):  # type: ignore[name-defined,misc]
        async def Add(self, request, context):  # type: ignore[no-untyped-def]
            return protos.Total(value=request.a + request.b)

        async def Count(self, request, context):  # type: ignore[no-untyped-def]
            for value in range(request.value):
                yield protos.Total(value=value)

    async with aio_server(
        "asgi_grpc", lambda s: services.add_CalcServicer_to_server(Calc(), s)
    ) as target:
        async with asgi_grpc.aio.insecure_channel(target) as channel:
            stub = services.CalcStub(channel)
            assert (await stub.Add(protos.Pair(a=2, b=3))).value == 5
            assert [t.value async for t in stub.Count(protos.Total(value=3))] == [0, 1, 2]


@pytest.mark.parametrize("server", ["asgi_grpc", "grpcio"])
async def test_services_from_pb2_of_grpcio_tools_output(server: str) -> None:
    pb2, pb2_grpc = test_protoc.load("echo.proto")
    services = services_from_pb2(pb2)
    assert services_from_pb2(pb2) is services

    def register(target_server: object) -> None:
        if server == "grpcio":  # grpcio-tools' own registration on a grpcio server
            pb2_grpc.add_EchoServicer_to_server(AsyncEcho(), target_server)
        else:
            services.add_EchoServicer_to_server(AsyncEcho(), target_server)

    async with aio_server(server, register) as target:
        async with asgi_grpc.aio.insecure_channel(target) as channel:
            stub = services.EchoStub(channel)
            assert (await stub.Unary(pb2.EchoRequest(message="rt"))).message == "rt"
            words = [pb2.EchoRequest(message=w) for w in "xy"]
            assert [r.message async for r in stub.BidiStream(iter(words))] == ["X", "Y"]
        async with grpc.aio.insecure_channel(target) as channel:
            stub = services.EchoStub(channel)  # grpcio's channel works with it too
            assert (await stub.Unary(pb2.EchoRequest(message="g"))).message == "g"


def test_services_from_pb2_refuses_other_modules() -> None:
    with pytest.raises(TypeError, match="not a compiled _pb2 module"):
        services_from_pb2(types.ModuleType("not_pb2"))


def test_missing_grpcio_tools_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "grpc_tools.protoc", None)
    with pytest.raises(NotImplementedError, match="pip install grpcio-tools"):
        asgi_grpc.services("anything.proto")
