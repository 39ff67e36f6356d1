"""Regenerate (or check) the modules asgi_grpc ships, with asgi_grpc's own plugin.

    python -m asgi_grpc.codegen.bundled          # rewrite them
    python -m asgi_grpc.codegen.bundled --check  # exit 1 if any is stale

Needs grpcio-tools (a development dependency) to parse the .proto files; the plugin itself runs
in-process on protoc's descriptors, exactly as it does behind ``--asgi_grpc_out``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2

from .plugin import generate

PACKAGE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Bundled:
    root: Path  # the -I directory
    proto: str  # the .proto path under it (becomes the descriptor's file name)
    module: Path  # where the generated module goes (.py; the .pyi sits beside it)


BUNDLED = (
    Bundled(
        PACKAGE / "health" / "protos",
        "grpc/health/v1/health.proto",
        PACKAGE / "health" / "_health_pb2_asgi_grpc.py",
    ),
    Bundled(
        PACKAGE / "reflection" / "protos",
        "grpc/reflection/v1/reflection.proto",
        PACKAGE / "reflection" / "_v1_pb2_asgi_grpc.py",
    ),
    Bundled(
        PACKAGE / "reflection" / "protos",
        "grpc/reflection/v1alpha/reflection.proto",
        PACKAGE / "reflection" / "_v1alpha_pb2_asgi_grpc.py",
    ),
)


def render(item: Bundled) -> dict[Path, str]:
    """The files the plugin writes for ``item``, by their destination path."""
    from grpc_tools import protoc  # development dependency only

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = [
            "protoc",
            f"-I{item.root}",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            item.proto,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {item.root / item.proto}")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    request = plugin_pb2.CodeGeneratorRequest(
        file_to_generate=[item.proto], parameter="embed_messages", proto_file=files.file
    )
    response = generate(request)
    if response.error:
        raise RuntimeError(response.error)
    return {item.module.with_suffix(Path(f.name).suffix): f.content for f in response.file}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="report stale files, write nothing")
    check = parser.parse_args(argv).check
    stale = []
    for item in BUNDLED:
        for path, content in render(item).items():
            if path.exists() and path.read_text() == content:
                continue
            stale.append(path)
            if not check:
                path.write_text(content)
    for path in stale:
        print(f"{'stale' if check else 'wrote'}: {path.relative_to(PACKAGE.parent)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
