"""Child processes of the suite (target servers, client workers) and their measurements."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.hostile.wire import FrameConn, message, request_headers

ROOT = Path(__file__).resolve().parent.parent.parent
MIB = 1 << 20


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class Child:
    """A child process printing JSON lines on stdout; stderr goes to a temp file."""

    def __init__(self, proc: asyncio.subprocess.Process, stderr: Any) -> None:
        self.proc = proc
        self.stderr = stderr
        self.ps = psutil.Process(proc.pid)

    @classmethod
    async def spawn(cls, *argv: str) -> Child:
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=child_env(),
            cwd=ROOT,
        )
        return cls(proc, stderr)

    async def line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not raw:
                raise EOFError(f"exited with code {await self.proc.wait()}: {self.tail()}")
            with contextlib.suppress(ValueError):
                event: dict[str, Any] = json.loads(raw)
                return event

    async def ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.line(timeout)

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and self.ps.is_running()

    def rss(self) -> float:
        try:
            return float(self.ps.memory_info().rss) / MIB
        except psutil.Error:
            return float("nan")

    def fds(self) -> int:
        try:
            return int(self.ps.num_fds())
        except psutil.Error:
            return -1

    def tail(self, size: int = 600) -> str:
        self.stderr.seek(0, 2)
        end = self.stderr.tell()
        self.stderr.seek(max(0, end - size))
        return str(self.stderr.read().decode(errors="replace"))

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 3.0)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        self.stderr.close()


class Target(Child):
    port: int
    impl: str

    @classmethod
    async def start(cls, impl: str) -> Target:
        child = await Child.spawn("-m", "bench.hostile.target", "--impl", impl)
        target = cls(child.proc, child.stderr)
        target.impl = impl
        try:
            target.port = int((await target.line(30.0))["port"])
        except BaseException:
            await target.stop()
            raise
        return target


class Spare:
    """Keeps one target process warm, so every attack meets a fresh server without waiting."""

    def __init__(self, impl: str) -> None:
        self.impl = impl
        self._next: asyncio.Task[Target] | None = None

    async def take(self) -> Target:
        task = self._next or asyncio.ensure_future(Target.start(self.impl))
        self._next = asyncio.ensure_future(Target.start(self.impl))
        return await task

    async def close(self) -> None:
        if self._next is not None:
            with contextlib.suppress(Exception):
                await (await self._next).stop()


async def rpc(port: int, path: str, body: bytes, timeout: float = 3.0) -> tuple[int | None, bytes]:
    """One unary call by raw frames on a fresh connection: (grpc-status, response payload)."""
    try:
        conn = await asyncio.wait_for(FrameConn.connect(port), timeout)
    except (OSError, asyncio.TimeoutError):
        return None, b""
    try:
        conn.send_headers(1, request_headers(path))
        conn.send_data(1, message(body), end_stream=True)
        await conn.wait_ended([1], timeout)
        stream = conn.stream(1)
        code = stream.header(b"grpc-status")
        return (int(code) if code and code.isdigit() else None), bytes(stream.data[5:])
    finally:
        await conn.close()


#: How long a witness call may take: generous, as a busy 2-core machine can be slow; the time it
#: took is reported, so a server that answers late is visible without failing the run.
WITNESS_TIMEOUT = 20.0


async def witness(port: int) -> tuple[bool, float]:
    """A normal call on a fresh connection: (answered correctly, seconds it took)."""
    started = time.monotonic()
    code, payload = await rpc(port, "/hostile.Target/Unary", b"witness", WITNESS_TIMEOUT)
    return code == 0 and payload == b"witness", time.monotonic() - started


async def active_handlers(port: int) -> int | None:
    code, payload = await rpc(port, "/hostile.Target/Active", b"", WITNESS_TIMEOUT)
    return int(payload) if code == 0 and payload.isdigit() else None


class PeakSampler:
    """Samples a process's RSS every 50 ms in the background; ``peak`` in MiB."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self.peak = child.rss()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            rss = self.child.rss()
            if rss == rss:  # not NaN
                self.peak = max(self.peak, rss)
            await asyncio.sleep(0.05)

    async def stop(self) -> float:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        rss = self.child.rss()
        if rss == rss:
            self.peak = max(self.peak, rss)
        return self.peak
