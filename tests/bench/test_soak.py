"""``python -m bench soak`` runs end to end: samples, calls made, a verdict (a few seconds)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_soak_prints_samples_and_a_verdict() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # The mechanics, not a measurement: a 6-second run cannot judge growth.
    args = ["soak", "--minutes", "0.1", "--clients", "2", "--interval", "1", "--max-growth", "1000"]
    result = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "verdict:" in out
    match = re.search(r"asgi_grpc: RSS .* ([\d,]+) calls, 0 failures: FLAT", out)
    assert match, out
    assert int(match.group(1).replace(",", "")) > 0
