"""Compile bench/echo.proto at run time into a temp dir (generated code is never committed)."""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from types import ModuleType

PROTO = Path(__file__).with_name("echo.proto")


def compile_proto(out_dir: Path | None = None) -> Path:
    """Generate echo_pb2, echo_pb2_grpc (grpcio), echo_pb2_asgi_grpc (asgi_grpc's plugin: the
    same names, importing asgi_grpc instead of grpc) and echo_grpc (grpclib) into ``out_dir``."""
    from grpc_tools import protoc

    out = out_dir or Path(tempfile.mkdtemp(prefix="asgi_grpc_bench_"))
    out.mkdir(parents=True, exist_ok=True)
    # The plugin sits next to the interpreter; PATH may not include the venv. sys.executable is
    # not resolved on purpose: a venv's python is a symlink out of the venv's bin/.
    plugin = Path(sys.executable).parent / "protoc-gen-grpclib_python"
    if not plugin.exists():
        raise RuntimeError(f"grpclib's protoc plugin not found at {plugin}: pip install grpclib")
    ours = Path(sys.executable).parent / "protoc-gen-asgi_grpc"
    if not ours.exists():
        raise RuntimeError(f"asgi_grpc's protoc plugin not found at {ours}: pip install -e .")
    args = [
        "protoc",
        f"-I{PROTO.parent}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-grpclib_python={plugin}",
        f"--grpclib_python_out={out}",
        f"--plugin=protoc-gen-asgi_grpc={ours}",
        f"--asgi_grpc_out={out}",
        str(PROTO),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO}")
    return out


def load(gen_dir: Path, *names: str) -> tuple[ModuleType, ...]:
    """Import generated modules (``"echo_pb2"``, ``"echo_pb2_grpc"``, ``"echo_grpc"``)."""
    if str(gen_dir) not in sys.path:
        sys.path.insert(0, str(gen_dir))
    return tuple(importlib.import_module(name) for name in names)


def stubs_for(grpc: ModuleType) -> str:
    """The stub module the drivers of ``grpc`` (grpcio's module or asgi_grpc) use: what its users
    generate. asgi_grpc's plugin writes grpcio-tools' names importing asgi_grpc instead of grpc,
    so grpcio is neither loaded nor counted in the RSS of asgi_grpc's processes (grpcio's stubs
    work with asgi_grpc as well: tests/ecosystem)."""
    return "echo_pb2_asgi_grpc" if grpc.__name__.split(".")[0] == "asgi_grpc" else "echo_pb2_grpc"
