"""``asgi-grpc serve`` as a subprocess: started on 127.0.0.1:0, its addresses read from the
``asgi-grpc: serving on <url>`` lines it prints, ready once every worker logged Hypercorn's
``Running on``; stopped with a signal (or killed, with its workers, at the end of the block)."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ECHO_APP = "tests.cli.echo_app"
_SERVING = re.compile(r"asgi-grpc: serving on (\S+)")


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    # asgi_grpc from this checkout (it is not installed in the venv).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "asgi_grpc.cli", *args]


@dataclass
class Served:
    process: subprocess.Popen[str]
    urls: list[str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    @property
    def target(self) -> str:
        """host:port of the first address."""
        return self.urls[0].split("://", 1)[1]

    def read_until(self, pattern: str, count: int = 1, timeout: float = 20) -> list[str]:
        """Stderr lines up to the ``count``-th one matching ``pattern`` (fails on timeout/exit)."""
        found: list[str] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} in time:\n{self.output()}") from None
            if line is None:
                raise AssertionError(f"serve exited before {pattern!r}:\n{self.output()}")
            if re.search(pattern, line):
                found.append(line)
        return found

    def output(self) -> str:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self._queue.put(None)
                break
        return "".join(self.lines)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"serve did not stop:\n{self.output()}") from None


def start(*args: str, cwd: Path = ROOT, pass_fds: tuple[int, ...] = ()) -> Served:
    process = subprocess.Popen(
        cli_command("serve", *args),
        cwd=cwd,
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # Its own process group: cleanup reaches the worker processes too.
        start_new_session=True,
        pass_fds=pass_fds,
    )
    served = Served(process, [])

    def pump() -> None:
        assert process.stderr is not None
        with process.stderr:
            for line in process.stderr:
                served.lines.append(line)
                served._queue.put(line)
        served._queue.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return served


@contextlib.contextmanager
def serve(
    *args: str, workers: int = 1, cwd: Path = ROOT, pass_fds: tuple[int, ...] = ()
) -> Iterator[Served]:
    """``asgi-grpc serve *args`` (add ``--bind``), ready to take calls."""
    served = start(*args, cwd=cwd, pass_fds=pass_fds)
    try:
        for line in served.read_until(_SERVING.pattern, count=args.count("--bind") or 1):
            match = _SERVING.search(line)
            assert match is not None
            served.urls.append(match.group(1))
        served.read_until(r"Running on ", count=workers * len(served.urls))
        yield served
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(served.process.pid, signal.SIGKILL)
        served.process.wait(10)
