"""``asgi-grpc serve --server NAME`` in a child process, for tests/asgi_servers.

The CLI is the one way these tests start a server, so every server is run exactly as a user
runs it. Ready once it printed ``asgi-grpc: serving on <url>`` and its port answers an HTTP/2
PING (uvicorn's sockets are bound before the app starts; pyvoy announces once Envoy listens).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.serving import _SERVING, Served, start
from tests.conftest import TLS

SERVERS = ["hypercorn", "uvicorn", "pyvoy"]
APPS = "tests.asgi_servers.apps"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def server_params() -> list[object]:
    """Every server, always: the dev extras install uvicorn, zttp and pyvoy, so a missing or
    broken server shows up as failures, never as skips."""
    return [pytest.param(name, id=name) for name in SERVERS]


@contextlib.contextmanager
def serve(
    server: str, app: str, *, tls: TLS | None = None, args: tuple[str, ...] = ()
) -> Iterator[Served]:
    with contextlib.ExitStack() as stack:
        extra: list[str] = []
        if tls is not None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            (directory / "cert.pem").write_bytes(tls.server_chain)
            (directory / "key.pem").write_bytes(tls.server_key)
            extra = ["--tls-cert", str(directory / "cert.pem")]
            extra += ["--tls-key", str(directory / "key.pem")]
        served = start(f"{APPS}:{app}", "--server", server, "--bind", "127.0.0.1:0", *extra, *args)
        try:
            (line,) = served.read_until(_SERVING.pattern, timeout=60)
            match = _SERVING.search(line)
            assert match is not None
            served.urls.append(match.group(1))
            _wait_ready(served, tls is not None)
            yield served
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(served.process.pid, signal.SIGKILL)
            served.process.wait(10)


def port(served: Served) -> int:
    return int(served.target.rpartition(":")[2])


def _wait_ready(served: Served, secure: bool) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise AssertionError(f"serve exited:\n{served.output()}")
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", port(served)), timeout=2) as sock:
                if secure:
                    return  # accepted: the TLS listener is up
                sock.sendall(PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
                if sock.recv(9):
                    return
        time.sleep(0.1)
    raise AssertionError(f"serve never answered:\n{served.output()}")
