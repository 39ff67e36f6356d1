"""asgi_grpc's pytest plugin, run the way users get it: loaded through its ``pytest11`` entry
point (declared in pyproject.toml) by a pytest in a subprocess, on a test file that overrides
``grpc_app`` and uses the fixtures."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]


def _entry_point() -> tuple[str, str]:
    """(name, module) of the pytest11 entry point in pyproject.toml."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - the project's CI runs 3.11+
        pytest.skip("tomllib needs Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ((name, module),) = project["entry-points"]["pytest11"].items()
    return name, module


@pytest.fixture
def installed(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution that declares pyproject.toml's pytest11 entry point, on the subprocess's
    path (as ``pip install`` would leave it), with this worktree's asgi_grpc first."""
    name, module = _entry_point()
    site = pytester.path / "site"
    dist = site / "asgi_grpc_plugin_probe-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: asgi_grpc_plugin_probe\nVersion: 0.0\n"
    )
    (dist / "entry_points.txt").write_text(f"[pytest11]\n{name} = {module}\n")
    path = [str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in path if p))
    return site


USER_TESTS = """
import asyncio

import pytest

import asgi_grpc
from asgi_grpc.server import GrpcApp


async def shout(request, context):
    await context.send_initial_metadata((("seen-by", "handler"),))
    return request.upper()


async def wait_forever(request, context):
    await asyncio.sleep(60)
    return b""


@pytest.fixture
def grpc_app():
    return GrpcApp(
        [
            asgi_grpc.method_handlers_generic_handler(
                "plugin.Test",
                {
                    "Shout": asgi_grpc.unary_unary_rpc_method_handler(shout),
                    "Wait": asgi_grpc.unary_unary_rpc_method_handler(wait_forever),
                },
            )
        ]
    )


@pytest.mark.asyncio
async def test_in_memory(grpc_channel):
    call = grpc_channel.unary_unary("/plugin.Test/Shout")(b"hey")
    assert await call == b"HEY"
    assert ("seen-by", "handler") in tuple(await call.initial_metadata())
    with pytest.raises(asgi_grpc.aio.AioRpcError) as info:
        await grpc_channel.unary_unary("/plugin.Test/Wait")(b"", timeout=0.1)
    assert info.value.code() is asgi_grpc.StatusCode.DEADLINE_EXCEEDED


def test_blocking(grpc_blocking_channel):
    assert grpc_blocking_channel.unary_unary("/plugin.Test/Shout")(b"sync") == b"SYNC"


@pytest.mark.asyncio
async def test_real_server(grpc_server, grpc_server_channel):
    assert grpc_server.target.startswith("127.0.0.1:")
    assert grpc_server.port > 0
    assert await grpc_server_channel.unary_unary("/plugin.Test/Shout")(b"wire") == b"WIRE"
"""


def test_fixtures_load_from_the_entry_point(pytester: pytest.Pytester, installed: Path) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    # Strict asyncio mode (pytest-asyncio's default): the fixtures must not rely on auto mode.
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-o",
        "asyncio_mode=strict",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "-W",
        "error",
        "-v",
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["plugins:*asgi_grpc*"])  # loaded through the entry point


def test_missing_grpc_app_says_what_to_do(pytester: pytest.Pytester, installed: Path) -> None:
    pytester.makepyfile(
        test_user="""
        def test_needs_app(grpc_blocking_channel):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*define a fixture named 'grpc_app'*"])


def test_the_plugin_module_imports_only_pytest_and_starts_nothing() -> None:
    """The plugin's own imports are pytest's (asgi_grpc's testing code is imported by the
    fixtures, when used), and loading it starts no thread."""
    _, module = _entry_point()
    source = (ROOT / (module.replace(".", "/") + ".py")).read_text()
    imported = set()
    for node in ast.parse(source).body:  # module level only
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
        elif isinstance(node, ast.Try):
            imported |= {
                inner.module or "" for inner in node.body if isinstance(inner, ast.ImportFrom)
            }
    assert imported <= {"__future__", "collections.abc", "typing", "pytest", "pytest_asyncio"}
    code = f"import threading; n = threading.active_count(); import {module}; "
    code += "assert threading.active_count() == n, 'a thread started'"
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": path}, timeout=60
    )


def test_the_readme_example_runs(pytester: pytest.Pytester, installed: Path) -> None:
    """README.md's "Testing without sockets" example, as a user would save and run it."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Testing without sockets", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    pytester.makepyfile(test_readme_example=code)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "-W",
        "error",
    )
    result.assert_outcomes(passed=4)
