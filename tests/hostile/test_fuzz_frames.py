"""A short run of the frame fuzzer (``python -m bench hostile --fuzz``) against asgi_grpc.

Random-but-plausible HTTP/2 frame sequences for 25 s: the server must not crash, must answer a
witness call every two seconds, and must end near its RSS and fd counts of after warm-up.
The seed is fixed here so a failure can be replayed with the same command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261207

pytestmark = [pytest.mark.hostile, pytest.mark.timeout(180)]


def test_frame_fuzzer_no_crash_no_hang_no_leak(tmp_path: Path) -> None:
    out = tmp_path / "fuzz.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "bench", "hostile", "--fuzz", "--seconds", "25"]
    proc = subprocess.run(
        [*command, "--seed", str(SEED), "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    report = json.loads(out.read_text())
    summary = proc.stdout[-2000:] + proc.stderr[-2000:]
    assert report["problems"] == [], summary
    assert proc.returncode == 0, summary
    assert report["alive"]
    assert report["witness_failures"] == []
    # It fuzzed for real: many connections and frames, and the server answered them variously.
    assert report["connections"] > 100, summary
    assert report["frames"] > 5000, summary
    assert len(report["answers"]) >= 3, summary
    # Samples every two seconds after warm-up, each with an RSS and an fd count.
    assert len(report["samples"]) >= 8
    assert all(rss > 0 and fds > 0 for _, rss, fds in report["samples"])
