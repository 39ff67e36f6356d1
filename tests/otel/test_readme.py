"""The README's OpenTelemetry example runs as printed and shows what it says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Observability (OpenTelemetry)", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    return code


def test_readme_example(tmp_path: Path) -> None:
    script = tmp_path / "otel_example.py"
    script.write_text(example())
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # ConsoleSpanExporter prints each span as a JSON object, the metric exporter one document.
    decoder = json.JSONDecoder()
    documents, index = [], 0
    while (start := out.find("{", index)) != -1:
        document, index = decoder.raw_decode(out, start)
        documents.append(document)
    spans = [d for d in documents if "kind" in d]
    assert sorted(s["kind"] for s in spans) == ["SpanKind.CLIENT", "SpanKind.SERVER"]
    assert {s["name"] for s in spans} == {"demo.Echo/Echo"}
    assert len({s["context"]["trace_id"] for s in spans}) == 1
    assert "rpc.server.duration" in out
    assert "rpc.client.duration" in out
