"""Compile .proto files for tests with grpcio-tools, once per session, and import the modules."""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from grpc_tools import protoc

PROTOS = Path(__file__).parent / "protos"
_OUT = Path(tempfile.mkdtemp(prefix="asgi_grpc_protos_"))
_done: set[tuple[Path, str]] = set()


def load(proto: str, *, root: Path = PROTOS, grpclib: bool = False) -> tuple[ModuleType, ...]:
    """Compile ``root/proto`` (if not yet) and return its ``_pb2`` and ``_pb2_grpc`` modules
    (and ``_grpc`` for grpclib when asked)."""
    key = (root, proto)
    if key not in _done:
        args = [
            "protoc",
            f"-I{root}",
            f"-I{Path(protoc.__file__).parent / '_proto'}",
            f"--python_out={_OUT}",
            f"--pyi_out={_OUT}",
            f"--grpc_python_out={_OUT}",
        ]
        if grpclib:
            plugin = Path(sys.executable).parent / "protoc-gen-grpclib_python"
            args += [f"--plugin=protoc-gen-grpclib_python={plugin}", f"--grpclib_python_out={_OUT}"]
        if protoc.main([*args, str(root / proto)]) != 0:
            raise RuntimeError(f"protoc failed on {root / proto}")
        _done.add(key)
    if str(_OUT) not in sys.path:
        sys.path.insert(0, str(_OUT))
    stem = proto.removesuffix(".proto").replace("/", ".")
    names = [f"{stem}_pb2", f"{stem}_pb2_grpc"] + ([f"{stem}_grpc"] if grpclib else [])
    return tuple(importlib.import_module(name) for name in names)
