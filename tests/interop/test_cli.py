"""The interop server and client programs, each in its own process: the server CLI runs as a
subprocess, and every official case runs against it from the client CLI (and, opt-in, from
grpc-js: see grpcjs_client.js)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from . import client
from .cases import CASES
from .test_interop import SERVER_IMPLS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GRPCJS_MODULES = os.environ.get("INTEROP_GRPCJS_MODULES", "")


@contextlib.asynccontextmanager
async def server_process(impl: str) -> AsyncIterator[int]:
    """``python -m tests.interop.server`` on a free port; yields the port."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.interop.server",
        "--port=0",
        f"--impl={impl}",
        "--seconds=120",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith(f"interop server ({impl}) on 127.0.0.1:"), line
        yield int(line.rsplit(":", 1)[1])
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("server_impl", SERVER_IMPLS)
async def test_server_and_client_programs(
    server_impl: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with server_process(server_impl) as port:
        code = await client.main(client.parse([f"--server_port={port}", "--test_case=all"]), None)
    output = capsys.readouterr().out
    assert code == 0, output
    assert output.count("ok   ") == len(CASES), output


@pytest.mark.skipif(
    not (Path(GRPCJS_MODULES) / "@grpc" / "grpc-js").is_dir(),
    reason="opt-in: set INTEROP_GRPCJS_MODULES to a node_modules with @grpc/grpc-js and "
    "@grpc/proto-loader (see grpcjs_client.js)",
)
@pytest.mark.parametrize("server_impl", SERVER_IMPLS)
async def test_grpcjs_client(server_impl: str) -> None:
    async with server_process(server_impl) as port:
        node = await asyncio.create_subprocess_exec(
            "node",
            str(HERE / "grpcjs_client.js"),
            str(port),
            str(HERE / "protos"),
            env={**os.environ, "NODE_PATH": GRPCJS_MODULES},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(node.communicate(), 60)
    text = output.decode()
    assert node.returncode == 0, text
    assert text.count("ok   ") == len(CASES) + 1, text  # + the shared-channel check
