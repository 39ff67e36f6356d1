"""Build the browser page of test_browser: protoc-gen-es code for echo.proto, bundled by esbuild.

The npm packages come from ``ASGI_GRPC_WEB_NODE_MODULES`` (scripts/test installs them once next
to the venv). Chromium is the system package; Playwright drives it and never downloads one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.protoc import PROTOS

PAGE = Path(__file__).parent / "page" / "page.js"
PEER = Path(__file__).parent / "page" / "peer.js"
CHROMIUM = os.environ.get("ASGI_GRPC_CHROMIUM", "/usr/bin/chromium")
# A fresh profile per run, and nothing that phones home (the test machines have no internet).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
NPM_PACKAGES = (
    "@bufbuild/protobuf",
    "@bufbuild/protoc-gen-es",
    "@connectrpc/connect",
    "@connectrpc/connect-web",
    "@connectrpc/connect-node",
    "grpc-web",
    "esbuild",
)


def node_modules() -> Path | None:
    path = os.environ.get("ASGI_GRPC_WEB_NODE_MODULES")
    if not path:
        return None
    modules = Path(path)
    if not all((modules / name / "package.json").exists() for name in NPM_PACKAGES):
        return None
    return modules


def missing_node() -> str | None:
    """Why the npm peers cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if node_modules() is None:
        return (
            "the npm packages are not installed (scripts/test installs them into the venv and "
            "sets ASGI_GRPC_WEB_NODE_MODULES)"
        )
    return None


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    why = missing_node()
    if why is not None:
        return why
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e .[dev])"
    return None


def generate(out: Path) -> None:
    """echo.proto as protobuf-es code (protoc from grpcio-tools, the npm protoc-gen-es plugin)."""
    modules = node_modules()
    assert modules is not None
    plugin = modules / ".bin" / "protoc-gen-es"
    (out / "gen").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"--plugin=protoc-gen-es={plugin}",
            f"--es_out={out / 'gen'}",
            "--es_opt=target=js",
            str(PROTOS / "echo.proto"),
        ],
        check=True,
        timeout=60,
    )


def build_bundle(script: Path = PAGE, platform: str = "browser") -> bytes:
    """``script`` (page.js, or peer.js for node) and its npm imports in one file."""
    modules = node_modules()
    assert modules is not None
    with tempfile.TemporaryDirectory(prefix="asgi_grpc_web_page_") as tmp:
        out = Path(tmp)
        generate(out)
        shutil.copy(script, out / "page.js")
        subprocess.run(
            [
                str(modules / ".bin" / "esbuild"),
                "page.js",
                "--bundle",
                f"--platform={platform}",
                "--format=iife" if platform == "browser" else "--format=esm",
                "--log-level=warning",
                "--outfile=bundle.js",
            ],
            cwd=out,
            env={**os.environ, "NODE_PATH": str(modules)},
            check=True,
            timeout=120,
        )
        return (out / "bundle.js").read_bytes()
