"""Smoke tests of ``python -m bench scale``: every part runs against real servers in their own
processes on 127.0.0.1 and prints its rows, with tiny counts and windows (no timed assertions);
without h2load only the workers part is skipped, and it says so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("grpcio", "grpclib", "asgi_grpc")


def run_scale(tmp_path: Path, *args: str, path: str | None = None) -> tuple[str, dict[str, Any]]:
    out = tmp_path / "scale.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if path is not None:
        env["PATH"] = path
    done = subprocess.run(
        [sys.executable, "-m", "bench", "scale", "--quick", "--json", str(out), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads(out.read_text())


@pytest.mark.timeout(300)
def test_memory_part(tmp_path: Path) -> None:
    table, dump = run_scale(
        tmp_path, "--parts", "memory", "--connections", "1,5", "--streams", "150"
    )
    assert "## Server RSS per idle connection" in table
    assert "| server | RSS after start, MiB | 1 conn.: RSS MiB / KiB per conn. | 5 conn.:" in table
    assert "## Server RSS per open stream (150 Bidi calls held open)" in table
    assert "**error**" not in table
    memory = dump["results"]["memory"]
    assert set(memory) == set(SERVERS)
    for impl, figures in memory.items():
        assert f"| {impl} |" in table
        assert [i["connections"] for i in figures["idle"]] == [1, 5]
        streams = figures["streams"]
        # Every stream was answered (its handler ran) while all were held open.
        assert streams["answered"] == 150, impl
        assert streams["per_connection"] <= (streams["server_limit"] or 100)
        assert streams["connections"] * streams["per_connection"] >= 150


@pytest.mark.timeout(300)
def test_load_part(tmp_path: Path) -> None:
    table, dump = run_scale(tmp_path, "--parts", "load", "--load", "1,3")
    for title in ("Unary calls/s by concurrent client connections", "p99 latency, us"):
        assert f"## {title}" in table
    assert "| server | 1 conn. | 3 conn. |" in table
    assert "**error**" not in table
    for impl in SERVERS:
        for level in ("1", "3"):
            figures = dump["results"]["load"][impl][level]
            assert figures["calls"] > 0
            assert figures["p99_us"] >= figures["p50_us"] > 0


@pytest.mark.timeout(300)
# In CI (./scripts/test installs it) a missing h2load fails the test instead of skipping it.
@pytest.mark.skipif(
    shutil.which("h2load") is None and os.environ.get("CI") != "true",
    reason="h2load (nghttp2-client) not installed",
)
def test_workers_part_with_h2load(tmp_path: Path) -> None:
    table, dump = run_scale(tmp_path, "--parts", "workers")
    assert "## asgi-grpc serve, h2load" in table
    assert "| workers | requests/s | succeeded | failed | vs 1 worker |" in table
    workers = dump["results"]["workers"]
    assert set(workers) == {"1", "2"}
    for figures in workers.values():
        assert figures["succeeded"] > 0
        assert figures["failed"] == 0


def test_workers_part_says_when_h2load_is_missing(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    table, dump = run_scale(tmp_path, "--parts", "workers", path=str(empty))
    assert "h2load not found" in table
    assert "skipped" in dump["results"]["workers"]
