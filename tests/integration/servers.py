"""Run ASGI apps on real sockets for the integration tests: Hypercorn in the test's event loop,
or the ``hypercorn`` CLI as a subprocess. Sockets are bound to 127.0.0.1:0 here and handed to
Hypercorn as ``fd://`` binds, so the port is known up front and nothing races for it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypercorn.asyncio import serve

from asgi_grpc.server import grpc_config

ROOT = Path(__file__).resolve().parents[2]


def listening_socket() -> socket.socket:
    """A socket listening on 127.0.0.1 (any free port): connections wait in its backlog until the
    server starts accepting, so clients need no retry loop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@dataclass
class Running:
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def in_process(app: Any, **config: Any) -> AsyncIterator[Running]:
    """Serve ``app`` with ``hypercorn.asyncio.serve`` (asgi_grpc's protocol and config) until the
    block ends; the server must then shut down by itself, lifespan included. The block starts
    once the app's lifespan startup has completed; a failed startup raises here."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    settings = {"graceful_timeout": 3.0, **config}
    started = asyncio.Event()

    async def observed(scope: Any, receive: Any, send: Any) -> None:
        async def watch(message: Any) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()
            await send(message)

        await app(scope, receive, watch if scope["type"] == "lifespan" else send)

    stop = asyncio.Event()
    config = grpc_config(bind=[f"fd://{sock.detach()}"], **settings)
    task = asyncio.create_task(serve(observed, config, shutdown_trigger=stop.wait))
    ready = asyncio.create_task(started.wait())
    await asyncio.wait([task, ready], timeout=15, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if not started.is_set():
        stop.set()
        await asyncio.wait_for(task, timeout=15)  # raises the startup failure, if any
        raise AssertionError("the server did not start within 15 s")
    try:
        yield Running(port)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # The checkout first, so `tests.*` and `asgi_grpc` import the same way as in pytest.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@dataclass
class CLI:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM (what Kubernetes and Docker send) and wait for a clean exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
            raise AssertionError(f"hypercorn did not stop on SIGTERM:\n{self.output()}") from None


@contextlib.contextmanager
def hypercorn_cli(*args: str, env: dict[str, str] | None = None) -> Iterator[CLI]:
    """`python -m hypercorn --bind fd://N *args` in the checkout; killed if up at the end."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    log = Path(tempfile.mkstemp(prefix="asgi_grpc_hypercorn_", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "hypercorn", "--bind", f"fd://{sock.fileno()}", *args],
            cwd=ROOT,
            env=env if env is not None else subprocess_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=[sock.fileno()],
            # Its own process group, so cleanup reaches the worker processes it spawns too.
            start_new_session=True,
        )
    sock.close()  # the child holds its own copy
    cli = CLI(port, process, log)
    try:
        yield cli
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # workers left behind by a failed test
        process.wait(10)
        log.unlink(missing_ok=True)
