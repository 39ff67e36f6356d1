"""Smoke tests of issue 10's new workloads and pairs in ``python -m bench``: client streaming, the
TLS variants, the server-CPU summary and the ``*_uvloop`` pairs, each end to end against real
servers and clients in their own processes. Tiny windows; no timed assertions: only that every
measurement ran, made calls, and was reported in its rows."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parents[2]
NEW = ("client_stream", "unary_64_tls", "unary_1mib_tls")


def run_bench(tmp_path: Path, *args: str) -> tuple[str, dict[str, Any]]:
    out = tmp_path / "result.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    quick = ["--quick", "--seconds", "0.2", "--warmup", "0.05", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *quick, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads(out.read_text())


def assert_rows(table: str, dump: dict[str, Any], pairs: list[str], workloads: list[str]) -> None:
    assert "**error**" not in table
    assert "Failures" not in table
    for name in workloads:
        spec = WORKLOADS[name]
        assert f"### {spec.title}" in table
        assert f"| {spec.title}, {spec.unit} |" in table
        assert f"| server CPU, us/{spec.op} |" in table
    results = {(r["server"], r["client"], r["workload"]): r for r in dump["results"]}
    assert set(results) == {(*p.split(":"), w) for p in pairs for w in workloads}
    for figures in results.values():
        assert figures["ok"] == 1
        assert figures["ops"] > 0
        assert figures["server_cpu_us_per_op"] >= 0


@pytest.mark.timeout(300)
def test_client_stream_and_tls_async_pairs(tmp_path: Path) -> None:
    pairs = ["grpcio:grpcio", "grpclib:grpclib", "asgi_grpc:asgi_grpc", "asgi_grpc:grpclib"]
    table, dump = run_bench(tmp_path, "--pairs", ",".join(pairs), "--workloads", ",".join(NEW))
    assert_rows(table, dump, pairs, list(NEW))
    # The TLS variants really ran over TLS: the servers were given the run's certificates.
    assert dump["settings"]["workloads"] == list(NEW)
    # Server CPU per streamed message, one row per pair.
    assert "## Server CPU per operation, us" in table
    assert "per streamed message, client streaming (client_stream)" in table
    for pair in pairs:
        server, client = pair.split(":")
        assert f"| {server} server <- {client} client |" in table


@pytest.mark.timeout(300)
def test_client_stream_and_tls_sync_pairs(tmp_path: Path) -> None:
    pairs = ["grpcio_sync:grpcio_sync", "asgi_grpc_sync:asgi_grpc_sync", "grpcio:asgi_grpc_sync"]
    table, dump = run_bench(tmp_path, "--pairs", ",".join(pairs), "--workloads", ",".join(NEW))
    assert_rows(table, dump, pairs, list(NEW))


@pytest.mark.timeout(300)
def test_cpu_summary_names_unary_64_and_stream(tmp_path: Path) -> None:
    pairs = ["grpcio:grpcio", "asgi_grpc:asgi_grpc"]
    table, _ = run_bench(tmp_path, "--pairs", ",".join(pairs), "--workloads", "unary_64,stream")
    summary = table.split("## Server CPU per operation, us", 1)[1].split("\n## ", 1)[0]
    assert "| pair | per unary call, 64 in flight (unary_64) | per streamed message, server " in (
        summary
    )
    rows = [line for line in summary.splitlines() if line.startswith("| ") and "server <-" in line]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(float(c.replace(",", "")) >= 0 for c in cells[1:]), row


@pytest.mark.timeout(300)
@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop not installed")
def test_uvloop_pairs(tmp_path: Path) -> None:
    pairs = [
        "asgi_grpc_uvloop:asgi_grpc_uvloop",
        "asgi_grpc_sync_uvloop:asgi_grpc_sync_uvloop",
        "asgi_grpc:asgi_grpc_uvloop",
    ]
    workloads = ["unary_64", "client_stream", "unary_64_tls"]
    table, dump = run_bench(
        tmp_path, "--pairs", ",".join(pairs), "--workloads", ",".join(workloads)
    )
    assert_rows(table, dump, pairs, workloads)
