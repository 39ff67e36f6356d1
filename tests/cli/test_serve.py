"""``asgi-grpc serve`` in a subprocess, called by grpcio, by asgi_grpc's aio client and by the
CLI's own client commands: every kind of target, reflection and health, REST beside gRPC, TLS
and mutual TLS, worker processes, graceful shutdown, and the errors of a wrong command line."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import asgi_grpc
from tests.cli.conftest import TLSFiles, cli
from tests.cli.echo_app import SERVICE, pb2, pb2_grpc
from tests.cli.serving import ECHO_APP, ROOT, cli_command, serve, start, subprocess_env

BIND = ("--bind", "127.0.0.1:0")


def grpcio_unary(target: str, message: str, credentials: Any = None, **kwargs: Any) -> Any:
    if credentials is None:
        channel = grpc.insecure_channel(target)
    else:
        channel = grpc.secure_channel(target, credentials)
    with channel:
        return pb2_grpc.EchoStub(channel).Unary(
            pb2.EchoRequest(message=message), timeout=10, **kwargs
        )


def asgi_grpc_calls(target: str) -> tuple[Any, list[Any]]:
    """A unary and a bidi call with asgi_grpc's aio client (in a loop of its own)."""

    async def calls() -> tuple[Any, list[Any]]:
        async with asgi_grpc.aio.insecure_channel(target) as channel:
            stub = pb2_grpc.EchoStub(channel)
            unary = await stub.Unary(pb2.EchoRequest(message="aio"), timeout=10)
            requests = [pb2.EchoRequest(message=m) for m in ("x", "y")]
            bidi = [r async for r in stub.BidiStream(iter(requests), timeout=10)]
            return unary, bidi

    return asyncio.run(calls())


@pytest.mark.parametrize(
    "attribute", ["app", "register", "Echo", "servicer", "servicers", "make_app", "starlette_app"]
)
def test_every_kind_of_target(attribute: str) -> None:
    with serve(f"{ECHO_APP}:{attribute}", *BIND) as served:
        assert grpcio_unary(served.target, "kind").message == "kind"
        unary, bidi = asgi_grpc_calls(served.target)
        assert unary.message == "aio"
        assert [r.message for r in bidi] == ["X", "Y"]
        assert served.stop() == 0


def test_reflection_and_health() -> None:
    with serve(f"{ECHO_APP}:servicer", *BIND, "--reflection", "--health") as served:
        listed = cli("list", served.target, "--plaintext")
        assert listed.lines() == [
            SERVICE,
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ]
        called = cli(
            "call", served.target, "--plaintext", f"{SERVICE}/ServerStream",
            "-d", '{"message": "r", "count": 2}',
        )  # fmt: skip
        assert called.lines() == ['{"message": "r:0"}', '{"message": "r:1", "index": 1}']
        # grpcio's health stub: the whole server and each registered service are SERVING.
        with grpc.insecure_channel(served.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            for name in ("", SERVICE):
                response = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
                assert response.status == health_pb2.HealthCheckResponse.SERVING
        assert cli("health", served.target, "--plaintext", SERVICE).status == 0
        assert served.stop() == 0


def test_without_flags_there_is_no_reflection() -> None:
    with serve(f"{ECHO_APP}:app", *BIND) as served:
        result = cli("list", served.target, "--plaintext")
        assert result.status == 64 + 12
        assert (
            result.err == "ERROR: UNIMPLEMENTED: the server does not support the reflection API\n"
        )
        assert cli("health", served.target, "--plaintext").status == 64 + 12


def test_starlette_app_serves_rest_and_grpc_on_one_port() -> None:
    with serve(f"{ECHO_APP}:starlette_app", *BIND, "--reflection", "--health") as served:
        with httpx.Client() as client:
            response = client.get(f"{served.urls[0]}/hello", timeout=10)
        assert response.text == "hello from REST"
        assert grpcio_unary(served.target, "mounted").message == "mounted"
        # Services mounted in the Starlette app are found for reflection and health.
        assert SERVICE in cli("list", served.target, "--plaintext").lines()
        assert cli("health", served.target, "--plaintext", SERVICE).out == "SERVING\n"


def test_several_addresses() -> None:
    with serve(f"{ECHO_APP}:app", *BIND, "--bind", "[::1]:0", "--reflection") as served:
        assert served.urls[1].startswith("http://[::1]:")
        for url in served.urls:
            target = url.split("://", 1)[1]
            assert grpcio_unary(target, url).message == url
            data = json.dumps({"message": url})
            result = cli("call", target, "--plaintext", f"{SERVICE}/Unary", "-d", data)
            assert (result.status, result.out) == (0, data + "\n")


def test_unix_socket_and_inherited_socket(tmp_path: Path) -> None:
    path = tmp_path / "grpc.sock"
    with socket.socket() as inherited:
        inherited.bind(("127.0.0.1", 0))
        inherited.listen(16)
        port = inherited.getsockname()[1]
        fd = inherited.fileno()
        with serve(
            f"{ECHO_APP}:app", "--bind", f"unix:{path}", "--bind", f"fd://{fd}", "--health",
            pass_fds=(fd,),
        ) as served:  # fmt: skip
            assert served.urls == [f"unix:{path}", f"http://127.0.0.1:{port}"]
            assert grpcio_unary(f"unix:{path}", "unix").message == "unix"
            assert cli("health", f"unix:{path}", "--plaintext", SERVICE).out == "SERVING\n"
            assert grpcio_unary(f"127.0.0.1:{port}", "fd").message == "fd"
            assert served.stop() == 0


def test_health_wait_for_a_server_starting_later() -> None:
    """``health --wait`` started before the server: connections are refused at first (the port
    is bound, not listening), then the server comes up on that very socket."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{sock.getsockname()[1]}"
        waiting = subprocess.Popen(
            cli_command("health", target, "--plaintext", SERVICE, "--wait", "--timeout", "30"),
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(0.5)
            assert waiting.poll() is None  # still waiting
            sock.listen(16)
            fd = sock.fileno()
            with serve(f"{ECHO_APP}:app", "--bind", f"fd://{fd}", "--health", pass_fds=(fd,)):
                out, err = waiting.communicate(timeout=30)
        finally:
            if waiting.poll() is None:
                waiting.kill()
                waiting.communicate(timeout=10)
    assert (waiting.returncode, out) == (0, "SERVING\n"), err


def test_app_dir(tmp_path: Path) -> None:
    """The target's module is imported from --app-dir (default: the working directory)."""
    (tmp_path / "mysvc.py").write_text(
        f"from {ECHO_APP} import Echo\n\nclass Renamed(Echo):\n    pass\n"
    )
    with serve("mysvc:Renamed", *BIND, "--app-dir", str(tmp_path)) as served:
        assert grpcio_unary(served.target, "dir").message == "dir"
    with serve("mysvc:Renamed", *BIND, cwd=tmp_path) as served:
        assert grpcio_unary(served.target, "cwd").message == "cwd"


def test_tls_and_mutual_tls(tls: Any, tls_files: TLSFiles) -> None:
    args = ["--tls-cert", str(tls_files.server_cert), "--tls-key", str(tls_files.server_key)]
    with serve(f"{ECHO_APP}:app", *BIND, *args, "--reflection") as served:
        assert served.urls[0].startswith("https://127.0.0.1:")
        credentials = grpc.ssl_channel_credentials(root_certificates=tls.ca_pem)
        assert grpcio_unary(served.target, "tls", credentials).message == "tls"
        assert cli("list", served.target, "--tls-ca", str(tls_files.ca)).status == 0
    mutual = [*args, "--tls-ca", str(tls_files.ca), "--require-client-auth"]
    with serve(f"{ECHO_APP}:app", *BIND, *mutual, "--reflection") as served:
        with_cert = grpc.ssl_channel_credentials(tls.ca_pem, tls.client_key, tls.client_chain)
        assert grpcio_unary(served.target, "mtls", with_cert).message == "mtls"
        without = grpc.ssl_channel_credentials(root_certificates=tls.ca_pem)
        with pytest.raises(grpc.RpcError) as failed:
            grpcio_unary(served.target, "refused", without)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        result = cli(
            "call", served.target, f"{SERVICE}/Unary", "-d", '{"message": "cli"}',
            "--tls-ca", str(tls_files.ca),
            "--tls-cert", str(tls_files.client_cert), "--tls-key", str(tls_files.client_key),
        )  # fmt: skip
        assert (result.status, result.out) == (0, '{"message": "cli"}\n')


def test_workers_share_the_port_and_drain_on_sigterm() -> None:
    args = ("--workers", "2", "--reflection", "--health")
    with serve(f"{ECHO_APP}:register", *BIND, *args, workers=2) as served:
        # Each worker process built the app with reflection and health from the environment.
        for _ in range(3):
            assert SERVICE in cli("list", served.target, "--plaintext").lines()
            assert cli("health", served.target, "--plaintext", SERVICE).status == 0
        # One call per connection: the kernel spreads connections over the two workers.
        options = [("grpc.use_local_subchannel_pool", 1)]
        channels = [grpc.insecure_channel(served.target, options=options) for _ in range(6)]
        try:
            stubs = [pb2_grpc.EchoStub(channel) for channel in channels]
            assert [s.Unary(pb2.EchoRequest(message="w"), timeout=10).message for s in stubs] == [
                "w"
            ] * 6
            slow = stubs[0].Unary.future(pb2.EchoRequest(message="slow", delay_ms=800), timeout=10)
            threading.Timer(0.3, served.process.send_signal, args=(signal.SIGTERM,)).start()
            assert slow.result().message == "slow"
        finally:
            for channel in channels:
                channel.close()
        assert served.process.wait(20) == 0


def test_graceful_shutdown_finishes_calls_in_flight() -> None:
    with serve(f"{ECHO_APP}:app", *BIND, "--grace", "5") as served:
        with grpc.insecure_channel(served.target) as channel:
            stub = pb2_grpc.EchoStub(channel)
            assert stub.Unary(pb2.EchoRequest(message="warm"), timeout=10).message == "warm"
            slow = stub.Unary.future(pb2.EchoRequest(message="slow", delay_ms=600), timeout=10)
            threading.Timer(0.2, served.process.send_signal, args=(signal.SIGINT,)).start()
            assert slow.result().message == "slow"
        # It exits by itself once the connection is gone.
        assert served.process.wait(20) == 0


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        ([f"{ECHO_APP}:not_a_target"], 1, "int object is not an ASGI app, a servicer"),
        ([f"{ECHO_APP}:missing"], 1, "has no attribute 'missing'"),
        ([f"{ECHO_APP}:not_a_target", "--workers", "2"], 1, "int object is not an ASGI app"),
        (["no_such_module_here:app"], 1, "cannot import module 'no_such_module_here'"),
        (["no_colon"], 1, "target must be 'module:attribute'"),
        ([f"{ECHO_APP}:app", "--tls-cert", "x.pem"], 2, "--tls-cert and --tls-key go together"),
        ([f"{ECHO_APP}:app", "--require-client-auth"], 2, "--require-client-auth needs --tls-ca"),
        ([f"{ECHO_APP}:app", "--workers", "0"], 2, "must be at least 1"),
        ([f"{ECHO_APP}:app", "--bind", "nonsense"], 1, "cannot listen on nonsense: invalid"),
        ([f"{ECHO_APP}:app", "--bind", "fd://x"], 1, "cannot listen on fd://x: invalid literal"),
    ],
)
def test_command_line_errors(args: list[str], status: int, message: str) -> None:
    served = start(*args, *BIND)
    assert served.process.wait(20) == status
    assert message in served.output()


def test_address_in_use() -> None:
    with serve(f"{ECHO_APP}:app", *BIND) as served:
        second = start(f"{ECHO_APP}:app", "--bind", served.target)
        assert second.process.wait(20) == 1
        assert f"cannot listen on {served.target}: [Errno 98]" in second.output()


# ------------------------------------------------------------------------------ python -m, pipes


def readline(stream: Any, timeout: float = 20) -> str:
    """One line from a pipe, or fail after ``timeout`` seconds (never hang the test)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError("no response line in time") from None


def test_python_m_exit_statuses_and_interactive_bidi() -> None:
    """``python -m asgi_grpc.cli call`` as a separate process: its exit status, and a bidi
    call driven line by line through a pipe (each response arrives before the next request is
    written: stdin is streamed, stdout flushed per message)."""
    with serve(f"{ECHO_APP}:app", *BIND, "--reflection") as served:
        env = subprocess_env()
        command = cli_command(
            "call", served.target, "--plaintext", f"{SERVICE}/Unary",
            "-d", '{"delayMs": 3000}', "--timeout", "0.3",
        )  # fmt: skip
        deadline = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=30, check=False
        )
        assert deadline.returncode == 68
        assert deadline.stderr.startswith("ERROR: DEADLINE_EXCEEDED: ")
        # A reader that stops early: no traceback, the pipe's exit status.
        head = subprocess.run(
            " ".join(
                [
                    *cli_command("call", served.target, "--plaintext", f"{SERVICE}/ServerStream"),
                    '-d \'{"message": "many", "count": 100000}\' | head -n 2',
                ]
            ),
            shell=True,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert head.stdout.splitlines() == [
            '{"message": "many:0"}',
            '{"message": "many:1", "index": 1}',
        ]
        assert head.stderr == ""
        process = subprocess.Popen(
            cli_command("call", served.target, "--plaintext", f"{SERVICE}/BidiStream", "-d", "@"),
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            for word in ("ping", "pong", "done"):
                process.stdin.write(json.dumps({"message": word}) + "\n")
                process.stdin.flush()
                assert json.loads(readline(process.stdout))["message"] == word.upper()
            process.stdin.close()
            assert process.wait(20) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
            process.stdout.close()
            assert process.stderr is not None
            process.stderr.close()
