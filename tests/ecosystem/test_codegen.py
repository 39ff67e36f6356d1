"""protoc-gen-asgi_grpc: what it writes, and the generated code against real servers and clients
(asgi_grpc's and grpcio's, aio and sync), for every call shape."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2
from google.protobuf.compiler import plugin_pb2

import asgi_grpc
from asgi_grpc.codegen.plugin import generate

from .servicers import (
    ITEMS,
    SyncEcho,
    echo_asgi,
    echo_pb2,
    register_echo,
    register_shop,
    shop_asgi,
    shop_pb2,
    types_pb2,
)
from .support import ECO_FILES, aio_server, generated, run_protoc, sync_server

IMPLS = ["asgi_grpc", "grpcio"]


def aio_channel(impl: str, target: str) -> Any:
    return (grpc if impl == "grpcio" else asgi_grpc).aio.insecure_channel(target)


# ------------------------------------------------------------------------------ what is written


def test_writes_one_module_and_stub_per_file_with_services(tmp_path: Path) -> None:
    assert run_protoc(tmp_path, ECO_FILES, f"--asgi_grpc_out={tmp_path}") == 0
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.py*"))
    # types.proto declares no service: nothing for it, as with grpcio-tools.
    assert written == [
        "eco/ext_pb2_asgi_grpc.py",
        "eco/ext_pb2_asgi_grpc.pyi",
        "eco/shop/v1/shop_pb2_asgi_grpc.py",
        "eco/shop/v1/shop_pb2_asgi_grpc.pyi",
    ]
    source = (tmp_path / "eco/shop/v1/shop_pb2_asgi_grpc.py").read_text()
    tree = ast.parse(source)
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported == {
        "asgi_grpc",
        "asgi_grpc.codegen",
        "eco.common",
        "eco.shop.v1",
        "google.protobuf",
    }
    names = {node.name for node in tree.body if isinstance(node, ast.ClassDef | ast.FunctionDef)}
    for service in ("Inventory", "Orders", "Nothing"):
        assert {
            f"{service}Stub",
            f"{service}Servicer",
            f"add_{service}Servicer_to_server",
            service,
        } <= names
    # Comments in the .proto become docstrings.
    assert '"""Looks things up.' in source
    assert '"""One item by tag."""' in source


def test_no_pyi_option_and_unknown_options(tmp_path: Path) -> None:
    assert run_protoc(tmp_path, ["echo.proto"], f"--asgi_grpc_out=no_pyi:{tmp_path}") == 0
    assert [p.name for p in tmp_path.iterdir() if p.suffix.startswith(".py")] == [
        "echo_pb2_asgi_grpc.py"
    ]
    assert run_protoc(tmp_path, ["echo.proto"], f"--asgi_grpc_out=bogus:{tmp_path}") != 0


def test_embed_messages_refuses_files_with_imports() -> None:
    request = plugin_pb2.CodeGeneratorRequest(parameter="embed_messages")
    request.file_to_generate.append("a.proto")
    a = request.proto_file.add(name="a.proto", package="a", dependency=["b.proto"])
    a.message_type.add(name="M")
    a.service.add(name="S").method.add(name="M", input_type=".a.M", output_type=".a.M")
    response = generate(request)
    assert "embed_messages needs a file without imports" in response.error


def test_generated_output_is_ruff_clean(tmp_path: Path) -> None:
    assert run_protoc(tmp_path, ["echo.proto", *ECO_FILES], f"--asgi_grpc_out={tmp_path}") == 0
    ruff = Path(sys.executable).parent / "ruff"
    config = Path(__file__).resolve().parents[2] / "pyproject.toml"
    result = subprocess.run(
        [str(ruff), "format", "--check", "--config", str(config), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("client", IMPLS)
@pytest.mark.parametrize("server", IMPLS)
async def test_echo_all_call_shapes_aio(server: str, client: str) -> None:
    """Generated stub + servicer registration, every call shape, grpcio and asgi_grpc on
    either side (the same stub class wraps grpcio's channel too)."""
    async with aio_server(server, register_echo) as target:
        async with aio_channel(client, target) as channel:
            stub = echo_asgi.EchoStub(channel)
            reply = await stub.Unary(echo_pb2.EchoRequest(message="hi", payload=b"\x00\x01"))
            assert (reply.message, reply.payload) == ("hi", b"\x00\x01")

            call = stub.ServerStream(echo_pb2.EchoRequest(message="s", count=3))
            assert [r.index async for r in call] == [0, 1, 2]

            requests = [echo_pb2.EchoRequest(message=w) for w in ("a", "b", "c")]
            reply = await stub.ClientStream(iter(requests))
            assert (reply.message, reply.index) == ("a,b,c", 3)

            call = stub.BidiStream()
            for word in ("x", "y"):
                await call.write(echo_pb2.EchoRequest(message=word))
                assert (await call.read()).message == word.upper()
            await call.done_writing()
            assert await call.code() == (
                grpc.StatusCode.OK if client == "grpcio" else asgi_grpc.StatusCode.OK
            )


@pytest.mark.parametrize("server", IMPLS)
def test_echo_all_call_shapes_sync(server: str) -> None:
    """asgi_grpc's sync channel with the same generated stub, against sync servers running
    plain-function servicers."""
    with sync_server(server, lambda s: register_echo(s, SyncEcho())) as target:
        with asgi_grpc.insecure_channel(target) as channel:
            stub = echo_asgi.EchoStub(channel)
            assert stub.Unary(echo_pb2.EchoRequest(message="hi")).message == "hi"
            response, call = stub.Unary.with_call(echo_pb2.EchoRequest(message="w"))
            assert response.message == "w"
            assert call.code() == asgi_grpc.StatusCode.OK
            assert [r.index for r in stub.ServerStream(echo_pb2.EchoRequest(count=2))] == [0, 1]
            requests = iter([echo_pb2.EchoRequest(message=w) for w in "ab"])
            assert stub.ClientStream(requests).message == "a,b"
            requests = iter([echo_pb2.EchoRequest(message=w) for w in "ab"])
            assert [r.message for r in stub.BidiStream(requests)] == ["A", "B"]


@pytest.mark.parametrize("server", IMPLS)
async def test_several_services_nested_packages_and_imports(server: str) -> None:
    async with aio_server(server, register_shop) as target:
        async with asgi_grpc.aio.insecure_channel(target) as channel:
            inventory = shop_asgi.InventoryStub(channel)
            # A nested message type from an imported file as the request.
            assert await inventory.Get(types_pb2.Item.Tag(key="nut")) == ITEMS["nut"]
            # A well-known type (google/protobuf/empty.proto) as the request.
            names = [item.name async for item in inventory.List(empty_pb2.Empty())]
            assert names == ["bolt", "nut"]

            orders = shop_asgi.OrdersStub(channel)
            call = orders.Chat(iter([types_pb2.Item(name="abc", count=2)]))
            assert [(i.name, i.count) async for i in call] == [("cba", 4)]

            # The generated servicer's default: UNIMPLEMENTED, with grpcio-tools' message.
            with pytest.raises(asgi_grpc.aio.AioRpcError) as failure:
                await orders.Upload(iter([types_pb2.Item(name="x")]))
            assert failure.value.code() == asgi_grpc.StatusCode.UNIMPLEMENTED
            assert "Method not implemented!" in (failure.value.details() or "")
            # A summary type from the file itself is referenced as well.
            assert shop_asgi.OrdersStub.__init__.__doc__
            assert shop_pb2.Summary


async def test_generated_servicer_with_grpcio_tools_stub() -> None:
    """Our registration serves grpcio-tools' stubs on a grpcio channel (wire compatibility).

    (Not with shop.proto: grpcio-tools copies its backslash comment into a docstring unescaped,
    and the module then fails to compile under warnings-as-errors; ours escapes it.)"""
    from tests import protoc as test_protoc

    _, echo_grpc = test_protoc.load("echo.proto")
    async with aio_server("asgi_grpc", register_echo) as target:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = echo_grpc.EchoStub(channel)
            assert (await stub.Unary(echo_pb2.EchoRequest(message="m"))).message == "m"
            call = stub.BidiStream(iter([echo_pb2.EchoRequest(message="q")]))
            assert [r.message async for r in call] == ["Q"]


def test_static_calls_through_the_sync_api() -> None:
    with sync_server("asgi_grpc", lambda s: register_echo(s, SyncEcho())) as target:
        reply = echo_asgi.Echo.Unary(echo_pb2.EchoRequest(message="one-off"), target, insecure=True)
        assert reply.message == "one-off"
        responses = echo_asgi.Echo.ServerStream(
            echo_pb2.EchoRequest(count=2), target, insecure=True, timeout=10
        )
        assert [r.index for r in responses] == [0, 1]
        requests = iter([echo_pb2.EchoRequest(message=w) for w in "xy"])
        assert echo_asgi.Echo.ClientStream(requests, target, insecure=True).message == "x,y"


def test_generated_code_imports_asgi_grpc_never_grpc() -> None:
    """In a fresh interpreter, importing and using a generated module loads no grpcio."""
    directory = generated()
    code = (
        "import sys\n"
        "import eco.shop.v1.shop_pb2_asgi_grpc as m\n"
        "import echo_pb2_asgi_grpc\n"
        "assert hasattr(m, 'InventoryStub')\n"
        "assert not [n for n in sys.modules if n == 'grpc' or n.startswith('grpc.')], "
        "sorted(n for n in sys.modules if n.startswith('grpc'))\n"
    )
    from tests import protoc as test_protoc

    path = [str(directory), str(test_protoc._OUT), str(Path(__file__).resolve().parents[2])]
    env = {"PYTHONPATH": ":".join(path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_editions_files_are_accepted(tmp_path: Path) -> None:
    """The plugin declares editions support (protoc refuses plugins that do not)."""
    (tmp_path / "asgi_grpc_editions.proto").write_text(
        'edition = "2023";\npackage ed;\nmessage Ping { string text = 1; }\n'
        "service Pinger { rpc Send(Ping) returns (Ping); }\n"
    )
    out = tmp_path / "out"
    flags = [f"--asgi_grpc_out={out}"]
    assert run_protoc(out, ["asgi_grpc_editions.proto"], *flags, roots=(tmp_path,)) == 0
    assert '"/ed.Pinger/Send"' in (out / "asgi_grpc_editions_pb2_asgi_grpc.py").read_text()


def test_python_dash_m_runs_the_plugin() -> None:
    """``python -m asgi_grpc.codegen`` speaks the plugin protocol on stdin/stdout."""
    request = plugin_pb2.CodeGeneratorRequest(file_to_generate=["a.proto"])
    a = request.proto_file.add(name="a.proto", package="a")
    a.message_type.add(name="M")
    a.service.add(name="S").method.add(name="Call", input_type=".a.M", output_type=".a.M")
    result = subprocess.run(
        [sys.executable, "-m", "asgi_grpc.codegen"],
        input=request.SerializeToString(),
        capture_output=True,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    response = plugin_pb2.CodeGeneratorResponse.FromString(result.stdout)
    assert not response.error
    assert [f.name for f in response.file] == ["a_pb2_asgi_grpc.py", "a_pb2_asgi_grpc.pyi"]
    assert "import a_pb2 as a__pb2" in response.file[0].content


def test_keyword_method_names_are_reported_not_crashed_on() -> None:
    request = plugin_pb2.CodeGeneratorRequest(file_to_generate=["k.proto"])
    k = request.proto_file.add(name="k.proto", package="k")
    k.message_type.add(name="M")
    k.service.add(name="S").method.add(name="import", input_type=".k.M", output_type=".k.M")
    assert generate(request).error == "k.proto: method name 'import' is a Python keyword"
