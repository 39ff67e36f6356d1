"""deploy/uvicorn/serve.sh and deploy/pyvoy/serve.sh: deploy/app.py on uvicorn and on pyvoy, run
the way a container runs them (the script execs the server; SIGTERM goes to it), two workers:
gRPC and the health service answer, and a SIGTERM lets the calls in flight finish."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.asgi_servers.serving import server_params
from tests.integration.checks import wait_until_serving
from tests.integration.echo_app import SERVICE, pb2, pb2_grpc
from tests.integration.servers import ROOT, subprocess_env

from .test_deploy import CHECK, REGISTER, SERVING, health_request

SERVERS = [p for p in server_params() if getattr(p, "id", "") != "hypercorn"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def deployed(server: str) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = _free_port()
    env = subprocess_env(
        ASGI_GRPC_SERVICERS=REGISTER, HOST="127.0.0.1", PORT=str(port), WORKERS="2", GRACE="10"
    )
    # The venv's console scripts (uvicorn, asgi-grpc) first on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    log = Path(tempfile.mkstemp(prefix=f"asgi_grpc_{server}_", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ROOT / "deploy" / server / "serve.sh")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield f"127.0.0.1:{port}", process, log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        log.unlink(missing_ok=True)


@pytest.mark.parametrize("server", SERVERS)
def test_serves_grpc_and_health_and_drains_on_sigterm(server: str) -> None:
    with deployed(server) as (target, process, log):
        wait_until_serving(target)
        with grpc.insecure_channel(target) as channel:
            stub = pb2_grpc.EchoStub(channel)
            assert stub.Unary(pb2.EchoRequest(message="hi"), timeout=10).message == "hi"
            streamed = stub.ServerStream(pb2.EchoRequest(count=3), timeout=10)
            assert [reply.index for reply in streamed] == [0, 1, 2]
            check = channel.unary_unary(CHECK)
            assert check(health_request(SERVICE), timeout=10) == SERVING

            slow = [
                stub.Unary.future(pb2.EchoRequest(message=str(i), delay_ms=1500), timeout=20)
                for i in range(5)
            ]
            time.sleep(0.5)  # the calls reach the server (they take 1.5 s there)
            process.send_signal(signal.SIGTERM)
            assert [future.result().message for future in slow] == [str(i) for i in range(5)]
        # uvicorn re-raises the SIGTERM it handled once it has shut down.
        assert process.wait(20) in (0, -signal.SIGTERM), log.read_text(errors="replace")
        assert "Traceback" not in log.read_text(errors="replace")
