"""The issue's "done when": a grpcio-tools-generated project and a protoc-gen-asgi_grpc-generated
project, each in its own directory and process, call the same asgi_grpc server."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from .servicers import register_echo
from .support import REPO, aio_server, run_protoc

GRPCIO_CLIENT = """
import sys
import grpc
import echo_pb2, echo_pb2_grpc

with grpc.insecure_channel(sys.argv[1]) as channel:
    stub = echo_pb2_grpc.EchoStub(channel)
    assert stub.Unary(echo_pb2.EchoRequest(message="grpcio")).message == "grpcio"
    assert [r.index for r in stub.ServerStream(echo_pb2.EchoRequest(count=3))] == [0, 1, 2]
    words = iter([echo_pb2.EchoRequest(message=w) for w in "ab"])
    assert stub.ClientStream(words).message == "a,b"
    words = iter([echo_pb2.EchoRequest(message=w) for w in "ab"])
    assert [r.message for r in stub.BidiStream(words)] == ["A", "B"]
print("grpcio project ok")
"""

ASGI_GRPC_CLIENT = """
import asyncio
import sys
import asgi_grpc
import asgi_grpc.aio
import echo_pb2, echo_pb2_asgi_grpc

async def main(target):
    async with asgi_grpc.aio.insecure_channel(target) as channel:
        stub = echo_pb2_asgi_grpc.EchoStub(channel)
        assert (await stub.Unary(echo_pb2.EchoRequest(message="aio"))).message == "aio"
        call = stub.ServerStream(echo_pb2.EchoRequest(count=3))
        assert [r.index async for r in call] == [0, 1, 2]
        words = [echo_pb2.EchoRequest(message=w) for w in "ab"]
        assert (await stub.ClientStream(iter(words))).message == "a,b"
        assert [r.message async for r in stub.BidiStream(iter(words))] == ["A", "B"]

asyncio.run(main(sys.argv[1]))
with asgi_grpc.insecure_channel(sys.argv[1]) as channel:
    stub = echo_pb2_asgi_grpc.EchoStub(channel)
    assert stub.Unary(echo_pb2.EchoRequest(message="sync")).message == "sync"
    words = iter([echo_pb2.EchoRequest(message=w) for w in "ab"])
    assert [r.message for r in stub.BidiStream(words)] == ["A", "B"]
grpc = [name for name in sys.modules if name == "grpc" or name.startswith("grpc.")]
assert not grpc, grpc
print("asgi_grpc project ok")
"""


def make_project(root: Path, flags: list[str], client: str) -> Path:
    assert run_protoc(root, ["echo.proto"], *flags) == 0
    (root / "client.py").write_text(client)
    return root


async def run_client(project: Path, target: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(project), str(REPO)]))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(project / "client.py"),
        target,
        cwd=project,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode().strip()


async def test_grpcio_tools_and_asgi_grpc_projects_call_one_server(tmp_path: Path) -> None:
    grpcio_project = make_project(
        tmp_path / "grpcio_project",
        [
            f"--python_out={tmp_path / 'grpcio_project'}",
            f"--grpc_python_out={tmp_path / 'grpcio_project'}",
        ],
        GRPCIO_CLIENT,
    )
    ours = tmp_path / "asgi_grpc_project"
    asgi_project = make_project(
        ours,
        [f"--python_out={ours}", f"--pyi_out={ours}", f"--asgi_grpc_out={ours}"],
        ASGI_GRPC_CLIENT,
    )
    assert not list(asgi_project.glob("*_pb2_grpc.py"))
    assert not list(grpcio_project.glob("*_asgi_grpc.py"))
    async with aio_server("asgi_grpc", register_echo) as target:
        results = await asyncio.gather(
            run_client(grpcio_project, target), run_client(asgi_project, target)
        )
    assert results == ["grpcio project ok", "asgi_grpc project ok"]
