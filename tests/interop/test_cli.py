"""The interop server and client programs, each in its own process: the server CLI runs as a
subprocess, the client CLI's main() runs every official case against it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from . import client
from .cases import CASES
from .test_interop import SERVER_IMPLS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("server_impl", SERVER_IMPLS)
async def test_server_and_client_programs(
    server_impl: str, capsys: pytest.CaptureFixture[str]
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.interop.server",
        "--port=0",
        f"--impl={server_impl}",
        "--seconds=60",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith(f"interop server ({server_impl}) on 127.0.0.1:"), line
        port = line.rsplit(":", 1)[1].strip()
        arguments = client.parse([f"--server_port={port}", "--test_case=all"])
        code = await client.main(arguments, None)
        output = capsys.readouterr().out
        assert code == 0, output
        assert output.count("ok   ") == len(CASES), output
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
