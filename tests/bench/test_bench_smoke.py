"""Smoke tests of the benchmark command (bench/): it runs end to end against real grpcio and
grpclib servers and clients in their own processes, and renders its tables. No timing assertions:
only that every measurement ran, made calls, and was reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import report
from bench.run import aggregate
from bench.workloads import WORKLOADS, percentile

ROOT = Path(__file__).resolve().parents[2]


def run_bench(
    tmp_path: Path, *args: str, expect_rc: int = 0
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
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
        timeout=100,
    )
    assert done.returncode == expect_rc, done.stdout + done.stderr
    return done, json.loads(out.read_text())


def test_servers_table_grpcio_client(tmp_path: Path) -> None:
    done, dump = run_bench(tmp_path, "--servers", "grpcio,grpclib", "--clients", "grpcio")

    table = done.stdout
    assert "## Servers, grpcio client" in table
    assert "| workload | grpcio | grpclib | grpclib / grpcio |" in table
    for workload in WORKLOADS.values():
        assert f"### {workload.title}" in table
        assert f"| {workload.title}, {workload.unit} |" in table
    assert "p99 latency, us" in table
    assert "server peak RSS, MiB" in table
    assert "client page faults/call" in table
    assert "**error**" not in table
    assert "Failures" not in table

    results = {(r["server"], r["workload"]): r for r in dump["results"]}
    assert set(results) == {(s, w) for s in ("grpcio", "grpclib") for w in WORKLOADS}
    for figures in results.values():
        assert figures["ok"] == 1
        assert figures["ops"] > 0
        assert figures["server_cpu_s"] >= 0
        assert figures["server_rss"] > 1 << 20
        assert figures["server_faults_per_op"] >= 0
        assert figures["client_faults_per_op"] >= 0
        assert figures["client_rss"] > 1 << 20
    assert dump["markdown"] == table.strip()
    assert (tmp_path / "result.md").read_text().strip() == table.strip()


def test_pairs_with_grpclib_client(tmp_path: Path) -> None:
    pairs = "grpcio:grpcio,grpclib:grpcio,grpcio:grpclib,grpclib:grpclib"
    done, dump = run_bench(tmp_path, "--pairs", pairs, "--workloads", "unary_64,stream,bidi")

    table = done.stdout
    assert "## Servers, grpcio client" in table
    assert "## Servers, grpclib client" in table
    assert "## Clients, grpcio server" in table
    assert "## End to end" in table
    assert "**error**" not in table
    assert {(r["server"], r["client"]) for r in dump["results"]} == {
        tuple(p.split(":")) for p in pairs.split(",")
    }
    assert all(r["ok"] == 1 and r["ops"] > 0 for r in dump["results"])


def test_stuck_server_is_reported_with_progress_and_stacks(tmp_path: Path) -> None:
    """A server that accepts connections but never answers: the run still ends, exits 1, and says
    where the client was stuck instead of printing a number."""
    args = ["--pairs", "silent:grpcio", "--workloads", "unary_1", "--stuck-after", "1"]
    done, dump = run_bench(tmp_path, *args, expect_rc=1)

    assert "**error**" in done.stdout
    assert "## Failures" in done.stdout
    assert "warm-up: unary calls 0 done/1 open" in done.stdout
    (result,) = dump["results"]
    assert result["ok"] == 0
    (error,) = result["errors"]
    assert error["error"].startswith("client, warming up: no answer within")
    # py-spy, when present, shows where the server was.
    assert "bench/server.py" in error.get("server_stacks", "bench/server.py")


def test_failures_are_reported_not_hidden() -> None:
    pairs = [("grpcio", "grpcio"), ("asgi_grpc", "grpcio")]
    ok: dict[str, Any] = {"runs": 1, "ok": 1, "value": 100.0, "ops": 10, "server_cpu_s": 0.1}
    failed: dict[str, Any] = {
        "runs": 1,
        "ok": 0,
        "errors": [{"error": "client, measuring: AioRpcError: boom", "server_stderr": "trace"}],
    }
    results = {
        ("grpcio", "grpcio", "unary_1"): ok,
        ("asgi_grpc", "grpcio", "unary_1"): failed,
    }
    settings = {"seconds": 1, "warmup": 0, "repeat": 1}
    text = report.render(pairs, ["unary_1"], results, env={}, settings=settings)

    assert "| Unary, 1 call in flight, calls/s | 100 | **error** | - |" in text
    assert "## Failures" in text
    assert (
        "asgi_grpc server <- grpcio client, unary_1: client, measuring: AioRpcError: boom" in text
    )
    assert "  trace" in text


def test_ratio_columns_skip_inverse_baseline() -> None:
    group = report.Group(
        title="t",
        rows=[(n, (n, "grpcio")) for n in ("grpcio", "grpclib", "asgi_grpc")],
    )
    assert group.ratio_columns() == [
        ("grpclib", "grpcio"),
        ("asgi_grpc", "grpcio"),
        ("asgi_grpc", "grpclib"),
    ]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2


def test_aggregate_takes_medians_of_successes_and_keeps_errors() -> None:
    def ok(value: float, cpu: float) -> dict[str, Any]:
        return {"value": value, "ops": 100, "server_cpu_s": cpu, "client_cpu_s": cpu / 2}

    failed = {"error": "client, measuring: boom", "server_stderr": "tail"}
    figures = aggregate([ok(10, 0.1), ok(30, 0.3), failed, ok(20, 0.2)])

    assert figures["runs"] == 4
    assert figures["ok"] == 3
    assert figures["value"] == 20
    assert figures["server_cpu_us_per_op"] == 2000  # median of 0.1, 0.2, 0.3 s over 100 ops
    assert figures["client_cpu_us_per_op"] == 1000
    assert figures["errors"] == [failed]
