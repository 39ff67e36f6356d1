"""The quick hostile-peer suite (``python -m bench hostile --quick``), both directions.

What must hold on any build, whatever the expectation column says about the fixes in flight:
the server never crashes, a witness call on a fresh connection always succeeds, and no attack
leaves a process hung. The suite runs in its own process (it starts servers and clients of its
own, all on 127.0.0.1); its JSON results are checked here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.hostile, pytest.mark.timeout(300)]


def run_suite(tmp_path: Path, *args: str, timeout: float = 240) -> tuple[list[dict[str, Any]], str]:
    out = tmp_path / "results.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "hostile", "--json", str(out), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.exists(), proc.stderr[-3000:]
    results: list[dict[str, Any]] = json.loads(out.read_text())
    return results, proc.stdout + proc.stderr


def test_quick_suite_never_crashes_hangs_or_starves_the_witness(tmp_path: Path) -> None:
    results, output = run_suite(tmp_path, "--quick")
    # Both directions, every implementation: a suite that ran nothing proves nothing.
    assert {r["side"] for r in results} == {"server", "client"}
    assert {r["impl"] for r in results if r["side"] == "server"} == {"asgi_grpc", "grpcio"}
    assert {r["impl"] for r in results if r["side"] == "client"} == {
        "asgi_grpc_aio",
        "asgi_grpc_sync",
        "grpcio",
    }
    assert len({r["attack"] for r in results}) >= 25
    for result in results:
        where = f"{result['side']} {result['attack']} against {result['impl']}: {result}"
        assert result["error"] is None, where
        assert not result["hung"], where
        assert result["alive"], where
        assert result["witness_ok"], where
    # The table has a row for every attack and a verdict per implementation.
    assert "| attack | expected (fixed behaviour) |" in output
    assert output.count("| `") == len({(r["side"], r["attack"]) for r in results})


def test_one_attack_by_name(tmp_path: Path) -> None:
    results, _ = run_suite(tmp_path, "--only", "ping_flood", "--against", "asgi_grpc", timeout=60)
    assert [(r["side"], r["attack"], r["impl"]) for r in results] == [
        ("server", "ping_flood", "asgi_grpc")
    ]
    [result] = results
    assert result["alive"]
    assert result["witness_ok"]
    assert not result["hung"]
    assert result["bytes_sent"] > 100_000
