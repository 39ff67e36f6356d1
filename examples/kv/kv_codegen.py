"""Generate the kv service's Python code with protoc-gen-asgi_grpc (README: "Code generation").

    python examples/kv/kv_codegen.py --out generated/

runs, with grpcio-tools' bundled protoc, the equivalent of::

    python -m grpc_tools.protoc -I examples/kv --python_out=generated --pyi_out=generated \\
        --asgi_grpc_out=generated examples/kv/kv.proto

which writes ``kv_pb2.py`` (messages) and ``kv_pb2_asgi_grpc.py`` + ``.pyi`` (``KeyValueStub``,
``KeyValueServicer``, ``add_KeyValueServicer_to_server``: grpcio-tools' names, importing only
asgi_grpc). The server and client call :func:`load`, which does the same into a temporary
directory at start-up: generated code is never committed.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
PROTO = HERE / "kv.proto"


def plugin_path(scratch: Path) -> str:
    """The ``protoc-gen-asgi_grpc`` executable: the console script when asgi_grpc is installed,
    else a two-line stand-in running the plugin from this interpreter (a source checkout)."""
    found = shutil.which("protoc-gen-asgi_grpc")
    if found:
        return found
    script = scratch / "protoc-gen-asgi_grpc"
    script.write_text(
        f"#!{sys.executable}\nfrom asgi_grpc.codegen.plugin import main\nraise SystemExit(main())\n"
    )
    script.chmod(0o755)
    return str(script)


def generate(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    well_known = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
    with tempfile.TemporaryDirectory(prefix="kv_plugin_") as scratch:
        args = [
            "grpc_tools.protoc",
            f"-I{HERE}",
            f"-I{well_known}",
            f"--plugin=protoc-gen-asgi_grpc={plugin_path(Path(scratch))}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--asgi_grpc_out={out}",
            str(PROTO),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {PROTO}")


def load() -> tuple[ModuleType, ModuleType]:
    """Generate into a temporary directory and import ``(kv_pb2, kv_pb2_asgi_grpc)``."""
    out = Path(tempfile.mkdtemp(prefix="kv_generated_"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    generate(out)
    sys.path.insert(0, str(out))
    return importlib.import_module("kv_pb2"), importlib.import_module("kv_pb2_asgi_grpc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    generate(parser.parse_args().out)


if __name__ == "__main__":
    main()
