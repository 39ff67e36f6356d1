"""Code generation for the ecosystem tests: protoc (grpcio-tools' bundled one) runs the real
``protoc-gen-asgi_grpc`` executable, as users run it; generated modules go to temporary dirs."""

from __future__ import annotations

import contextlib
import importlib
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
from grpc_tools import protoc

import asgi_grpc
from tests import protoc as test_protoc

REPO = Path(__file__).resolve().parents[2]
PROTOS = Path(__file__).parent / "protos"
TEST_PROTOS = REPO / "tests" / "protos"
WKT = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
ECO_FILES = ["eco/common/types.proto", "eco/shop/v1/shop.proto", "eco/ext.proto"]


def plugin_executable(directory: Path) -> Path:
    """A ``protoc-gen-asgi_grpc`` executable running this checkout (what the console script of
    an installed asgi_grpc does)."""
    path = directory / "protoc-gen-asgi_grpc"
    path.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
        "from asgi_grpc.codegen.plugin import main\nsys.exit(main())\n"
    )
    path.chmod(0o755)
    return path


def run_protoc(out: Path, files: list[str], *flags: str, roots: tuple[Path, ...] = ()) -> int:
    """grpc_tools.protoc with our plugin available; returns protoc's exit status."""
    out.mkdir(parents=True, exist_ok=True)
    plugin = plugin_executable(Path(tempfile.mkdtemp(prefix="asgi_grpc_plugin_")))
    includes = [f"-I{root}" for root in (*roots, PROTOS, TEST_PROTOS, WKT)]
    args = ["protoc", *includes, f"--plugin=protoc-gen-asgi_grpc={plugin}", *flags, *files]
    status: int = protoc.main(args)
    return status


_GENERATED: Path | None = None


def generated() -> Path:
    """One directory per session, on sys.path, with:

    - ``echo_pb2_asgi_grpc.py/.pyi`` (``echo_pb2`` itself comes from tests/protoc.py's
      grpcio-tools build, already on sys.path, so both worlds share one message class);
    - the eco protos: ``_pb2`` (+ .pyi), grpcio-tools' ``_pb2_grpc`` and ours.
    """
    global _GENERATED
    if _GENERATED is None:
        test_protoc.load("echo.proto")  # echo_pb2 + echo_pb2_grpc, and its dir on sys.path
        out = Path(tempfile.mkdtemp(prefix="asgi_grpc_codegen_"))
        assert run_protoc(out, ["echo.proto"], f"--asgi_grpc_out={out}") == 0
        flags = [f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}"]
        assert run_protoc(out, ECO_FILES, *flags, f"--asgi_grpc_out={out}") == 0
        sys.path.insert(0, str(out))
        _GENERATED = out
    return _GENERATED


def module(name: str) -> ModuleType:
    generated()
    return importlib.import_module(name)


# ------------------------------------------------------------------------------ servers


@contextlib.asynccontextmanager
async def aio_server(impl: str, register: Callable[[Any], None]) -> AsyncIterator[str]:
    """An aio server (grpcio's or asgi_grpc's) on 127.0.0.1:0; yields its target."""
    server = grpc.aio.server() if impl == "grpcio" else asgi_grpc.aio.server()
    register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@contextlib.contextmanager
def sync_server(impl: str, register: Callable[[Any], None]) -> Iterator[str]:
    """A sync server (grpc.server / asgi_grpc.server) with a small thread pool."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(4)
    server = (grpc if impl == "grpcio" else asgi_grpc).server(pool)
    register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None).wait(10)
        pool.shutdown(wait=False)
