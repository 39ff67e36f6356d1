"""Ctrl-C and interpreter exit with calls in flight: nothing hangs, nothing leaks. Each case runs
tests/sync/child.py in a subprocess (bounded by a timeout) against a server in this process."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import Running, StartServer

ROOT = Path(__file__).resolve().parents[2]


class Child:
    def __init__(self, scenario: str, target: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.sync.child", scenario, target],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []

    def wait_for(self, text: str, timeout: float = 20) -> str:
        """Read lines until one starts with ``text``."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.lines.append(line.strip())
            if line.startswith(text):
                return line.strip()
        self.process.kill()
        _, err = self.process.communicate(timeout=10)
        raise AssertionError(f"no {text!r} from the child; got {self.lines}, stderr:\n{err}")

    def saw(self, text: str, timeout: float) -> bool:
        """Whether a line ``text`` came (or comes within ``timeout``)."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while text not in self.lines:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.process.stdout], [], [], remaining)[0]:
                return False
            line = self.process.stdout.readline()
            if not line:
                return False
            self.lines.append(line.strip())
        return True

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def finish(self, timeout: float = 15) -> tuple[int, str, str]:
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate(timeout=10)
            raise AssertionError(f"the child hung; stdout {self.lines} {out}, stderr:\n{err}")
        return self.process.returncode, "\n".join(self.lines) + "\n" + out, err


@pytest.fixture(params=["grpcio", "asgi_grpc"])
def server(request: pytest.FixtureRequest, start_server: StartServer) -> Running:
    return start_server(request.param)


def _no_request_threads(output: str) -> None:
    line = next(text for text in output.splitlines() if text.startswith("threads "))
    assert "asgi_grpc-requests" not in line, line


def test_ctrl_c_during_a_blocking_unary_call(server: Running) -> None:
    child = Child("interrupt_unary", server.target)
    child.wait_for("ready")
    time.sleep(0.5)
    child.interrupt()
    child.wait_for("interrupted", timeout=5)
    # The call was cancelled (the server's handler saw it) while the child is still alive.
    assert server.events.saw_inactive.wait(1.4)
    code, out, err = child.finish()
    assert code == 0, err
    _no_request_threads(out)


def test_ctrl_c_while_iterating_a_bidi_stream(server: Running) -> None:
    child = Child("interrupt_stream", server.target)
    child.wait_for("ready")
    time.sleep(0.3)
    child.interrupt()
    child.wait_for("interrupted", timeout=5)
    assert child.wait_for("code") == "code CANCELLED"
    code, out, err = child.finish()
    assert code == 0, err
    _no_request_threads(out)


def test_ctrl_c_while_waiting_on_a_future(server: Running) -> None:
    child = Child("interrupt_future", server.target)
    child.wait_for("ready")
    time.sleep(0.5)
    child.interrupt()
    child.wait_for("interrupted", timeout=5)
    assert child.wait_for("cancelled") == "cancelled True"
    assert server.events.saw_inactive.wait(1.4)
    code, _, err = child.finish()
    assert code == 0, err


def test_ctrl_c_amid_back_to_back_calls_leaves_the_channel_working(server: Running) -> None:
    """The child's main thread runs the event loop itself during its calls
    (asgi_grpc/_sync/_runner.py): an interrupt must never cut a loop callback short, or the
    connection (and the stream another thread reads on it) breaks."""
    child = Child("interrupt_busy_calls", server.target)
    child.wait_for("ready")
    for n in range(1, 41):
        for _ in range(10):
            time.sleep(0.05)
            child.interrupt()
            # Python drops a KeyboardInterrupt raised inside a weakref callback or __del__ (it
            # prints "Exception ignored"): then the user presses Ctrl-C again, and so do we.
            if child.saw(f"interrupted {n}", 1.0):
                break
        else:
            raise AssertionError(f"interrupt {n} never surfaced: {child.lines}")
    assert child.wait_for("after", timeout=20) == "after 200"
    assert child.wait_for("stream") == "stream True"
    code, _, err = child.finish()
    assert code == 0, err


def test_unhandled_ctrl_c_exits(server: Running) -> None:
    child = Child("unhandled_interrupt", server.target)
    child.wait_for("ready")
    time.sleep(0.5)
    started = time.monotonic()
    child.interrupt()
    code, _, err = child.finish()
    assert code != 0
    assert "KeyboardInterrupt" in err
    assert time.monotonic() - started < 5


def test_interpreter_exit_with_calls_in_flight(server: Running) -> None:
    child = Child("exit_in_flight", server.target)
    child.wait_for("exiting")
    started = time.monotonic()
    code, _, err = child.finish()
    assert code == 0, err
    assert time.monotonic() - started < 5
    assert "Traceback" not in err, err


def test_ctrl_c_stops_a_server_in_wait_for_termination() -> None:
    child = Child("server_interrupt", "-")
    port = int(child.wait_for("port").split()[1])
    child.wait_for("ready")
    import grpc

    from .servicer import pb2, pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        assert pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(message="up")).message == "up"
    child.interrupt()
    child.wait_for("stopped", timeout=10)
    code, _, err = child.finish()
    assert code == 0, err
