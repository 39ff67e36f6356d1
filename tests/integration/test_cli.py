"""The ``hypercorn`` CLI (``hypercorn module:app``) serving REST and gRPC on one h2c port, in a
subprocess, in both styles; and the demo script."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.checks import (
    check_grpc_aio,
    check_grpc_sync,
    check_rest,
    check_unimplemented,
    wait_until_serving,
)
from tests.integration.echo_app import STYLES
from tests.integration.servers import ROOT, hypercorn_cli, subprocess_env


@pytest.mark.parametrize("style", STYLES)
async def test_hypercorn_cli_serves_rest_and_grpc(style: str, tmp_path: Path) -> None:
    log = tmp_path / "lifespan.log"
    env = subprocess_env(ASGI_GRPC_TEST_STYLE=style, ASGI_GRPC_TEST_LIFESPAN_LOG=str(log))
    with hypercorn_cli("tests.integration.cli_app:app", env=env) as server:
        await asyncio.to_thread(wait_until_serving, server.target)
        await asyncio.gather(
            asyncio.to_thread(check_grpc_sync, server.target),
            check_rest(server.url, http2=False),
            check_rest(server.url, http2=True),
            check_grpc_aio(server.target),
        )
        await check_unimplemented(server.target)
        assert await asyncio.to_thread(server.stop) == 0, server.output()
        output = server.output()
    assert "Traceback" not in output, output
    assert log.read_text().split() == ["startup", "shutdown"]


def test_demo_runs_and_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "REST  GET /health -> 200" in result.stdout
    assert "gRPC  SayHello -> 'Hello, asgi_grpc!'" in result.stdout
    assert "Hello #3, stream!" in result.stdout
    assert "server stopped" in result.stdout
    assert "Traceback" not in result.stderr, result.stderr
