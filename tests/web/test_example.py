"""examples/grpc_web.py runs as the README says, and its calls come back as printed there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "grpc_web.py"


def test_grpc_web_example() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "CORS  preflight -> 204, allow-origin http://localhost:5173" in out
    assert (
        "application/grpc-web+proto -> 'Hello, browser!', trailers b'grpc-status: 0\\r\\n'" in out
    )
    assert "application/grpc-web-text -> 'Hello, browser!'" in out
    assert "gRPC-Web SayHello -> 'Hello, asgi_grpc!', initial metadata [('x-greeted-by'" in out
    assert "gRPC-Web SayHelloStream -> ['Hello #1, web!', 'Hello #2, web!']" in out
    assert "gRPC-Web error -> INVALID_ARGUMENT: name is required" in out
