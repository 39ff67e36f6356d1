"""OpenTelemetry is optional: asgi_grpc does not import it, asgi_grpc.otel says how to get it."""

from __future__ import annotations

import subprocess
import sys


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_asgi_grpc_does_not_import_opentelemetry() -> None:
    done = run(
        "import sys, asgi_grpc, asgi_grpc.aio, asgi_grpc.server\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')]"
    )
    assert done.returncode == 0, done.stderr


def test_without_the_api_the_error_says_what_to_install() -> None:
    done = run("import sys; sys.modules['opentelemetry'] = None; import asgi_grpc.otel")
    assert done.returncode == 1
    assert "pip install 'asgi_grpc[otel]'" in done.stderr
