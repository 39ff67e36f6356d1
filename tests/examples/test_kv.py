"""examples/kv end to end, as the README shows it: the server as a subprocess on a free port
(its own script, `asgi-grpc serve`, and `hypercorn` with deploy/hypercorn.toml), the client
script, the REST routes over httpx, `asgi-grpc list`/`call`, grpcio's health client, and the
codegen script."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.servers import ROOT, listening_socket, subprocess_env

KV = ROOT / "examples" / "kv"
CLIENT_OUTPUT = """\
health: SERVING
put greeting: created = True
get greeting: hello
imported: 3
list: user/0 = user number 0
list: user/1 = user number 1
list: user/2 = user number 2
get missing: NOT_FOUND no key 'missing'
"""


@contextlib.contextmanager
def server(*argv: str, cwd: Path = ROOT) -> Iterator[str]:
    """Run ``argv`` with ``{fd}`` replaced by a listening socket's fd; yield its target once the
    health service answers SERVING; SIGTERM it at the end (it must exit by itself)."""
    sock = listening_socket()
    target = f"127.0.0.1:{sock.getsockname()[1]}"
    log = Path(tempfile.mkstemp(prefix="kv_server_", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [part.replace("{fd}", str(sock.fileno())) for part in argv],
            cwd=cwd,
            env=subprocess_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=[sock.fileno()],
            start_new_session=True,
        )
    sock.close()
    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="kv.v1.KeyValue"),
                timeout=20,
                wait_for_ready=True,  # connections wait in the backlog until it serves
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        yield target
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0, log.read_text(errors="replace")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.unlink()


@pytest.fixture(scope="module")
def kv() -> Iterator[str]:
    with server(sys.executable, str(KV / "kv_server.py"), "--bind", "fd://{fd}") as target:
        yield target


def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=ROOT,
        env=subprocess_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def client(target: str) -> str:
    result = run(sys.executable, str(KV / "kv_client.py"), target)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_client_script(kv: str) -> None:
    # The server is shared by this module's tests: "greeting" may exist already.
    assert client(kv).replace("created = False", "created = True") == CLIENT_OUTPUT


def test_rest_routes_and_metrics(kv: str) -> None:
    client(kv)
    with httpx.Client(base_url=f"http://{kv}", timeout=10) as http:
        healthz = http.get("/healthz")
        assert healthz.status_code == 200
        assert healthz.json() == {"status": "ok", "active_rpcs": 0}
        metrics = http.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    counts = {}
    for line in metrics.text.splitlines():
        if not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            counts[series] = int(value)
    kv_series = 'grpc_server_handled_total{grpc_service="kv.v1.KeyValue",'
    assert counts[kv_series + 'grpc_method="Get",grpc_code="NOT_FOUND"}'] >= 1
    for method in ("Put", "Get", "List", "Import"):
        assert counts[kv_series + f'grpc_method="{method}",grpc_code="OK"}}'] >= 1
    # Served over HTTP/2 as well (the same port speaks h2c for REST too).
    with httpx.Client(base_url=f"http://{kv}", http1=False, http2=True, timeout=10) as http:
        assert http.get("/healthz").http_version == "HTTP/2"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "asgi_grpc.cli", *args)


def test_cli_list_describe_call(kv: str) -> None:
    listed = cli("list", kv, "--plaintext")
    assert listed.returncode == 0, listed.stderr
    assert {"kv.v1.KeyValue", "grpc.health.v1.Health"} <= set(listed.stdout.split())
    methods = cli("list", kv, "kv.v1.KeyValue", "--plaintext")
    assert methods.returncode == 0, methods.stderr
    assert "kv.v1.KeyValue.Import" in methods.stdout or "Import" in methods.stdout

    put = cli("call", kv, "kv.v1.KeyValue/Put", "--plaintext", "-d", '{"key": "cli", "value": "v"}')
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout) in ({"created": True}, {})  # {} if an earlier run created it
    got = cli("call", kv, "kv.v1.KeyValue/Get", "--plaintext", "-d", '{"key": "cli"}')
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == {"key": "cli", "value": "v"}
    imported = cli(
        "call", kv, "kv.v1.KeyValue/Import", "--plaintext", "-d",
        '{"key": "a", "value": "1"} {"key": "b", "value": "2"}',
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout) == {"imported": 2}
    missing = cli("call", kv, "kv.v1.KeyValue/Get", "--plaintext", "-d", '{"key": "nope"}')
    assert missing.returncode != 0
    assert "NOT_FOUND" in missing.stderr
    checked = cli("health", kv, "--plaintext")
    assert checked.returncode == 0, checked.stderr
    assert "SERVING" in checked.stdout


def test_served_by_asgi_grpc_serve() -> None:
    """README deployment snippet: `asgi-grpc serve kv_server:app --app-dir examples/kv`."""
    argv = [sys.executable, "-m", "asgi_grpc.cli", "serve", "kv_server:app"]
    with server(*argv, "--app-dir", str(KV), "--bind", "fd://{fd}") as target:
        assert client(target) == CLIENT_OUTPUT


def test_served_by_hypercorn_with_the_deploy_config() -> None:
    """README deployment snippet: `hypercorn --config deploy/hypercorn.toml kv_server:app`."""
    argv = [sys.executable, "-m", "hypercorn", "--config", str(ROOT / "deploy/hypercorn.toml")]
    with server(*argv, "--bind", "fd://{fd}", "kv_server:app", cwd=KV) as target:
        assert client(target) == CLIENT_OUTPUT


def test_codegen_script(tmp_path: Path) -> None:
    result = run(sys.executable, str(KV / "kv_codegen.py"), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "kv_pb2.py",
        "kv_pb2.pyi",
        "kv_pb2_asgi_grpc.py",
        "kv_pb2_asgi_grpc.pyi",
    ]
    stub = (tmp_path / "kv_pb2_asgi_grpc.py").read_text()
    assert "import grpc\n" not in stub
    assert "def add_KeyValueServicer_to_server" in stub
