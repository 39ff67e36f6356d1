"""The generated ``.pyi`` under ``mypy --strict``: a typed client and servicer pass, and typical
mistakes are reported on the lines that make them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import protoc as test_protoc

from .support import REPO, generated

HERE = Path(__file__).parent


def mypy(tmp_path: Path, source: str) -> tuple[int, str]:
    target = tmp_path / "client.py"
    target.write_text((HERE / source).read_text())
    env = dict(os.environ)
    env["MYPYPATH"] = os.pathsep.join([str(generated()), str(test_protoc._OUT), str(REPO)])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-warn-unused-configs",
            "--config-file=/dev/null",
            f"--cache-dir={tmp_path / 'cache'}",
            str(target),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
        timeout=300,
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.timeout(300)
def test_typed_client_and_servicer_pass_mypy_strict(tmp_path: Path) -> None:
    status, output = mypy(tmp_path, "typed_client.py.txt")
    assert status == 0, output


@pytest.mark.timeout(300)
def test_mistakes_are_reported_where_they_are(tmp_path: Path) -> None:
    status, output = mypy(tmp_path, "typed_client_errors.py.txt")
    assert status == 1, output
    source = (HERE / "typed_client_errors.py.txt").read_text().splitlines()
    expected = {number for number, line in enumerate(source, 1) if "# E:" in line}
    reported = {int(n) for n in re.findall(r"client\.py:(\d+): error", output)}
    assert reported == expected, output
