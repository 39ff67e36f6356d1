"""``python -m bench scale``: how the servers' cost grows with work (see bench/README.md).

Three parts, each server in fresh processes of its own, all on 127.0.0.1 and bounded in time:

- **memory**: server RSS per idle HTTP/2 connection (1, 100, 1,000 open at once) and per open
  stream (10,000 Bidi calls, each answered once and then held open, spread over connections
  within the server's SETTINGS_MAX_CONCURRENT_STREAMS and at most 100 per connection), opened by
  this process with raw h2 (no client library's own cost in the way);
- **load**: unary calls/s and p50/p99 latency with 1, 10, 100 and 1,000 concurrent client
  connections, one call in flight on each (bench/scale_client.py);
- **workers**: ``asgi-grpc serve --workers 2`` against one worker, driven by h2load (nghttp2's
  load generator, in C, so the client is not the bottleneck). Skipped, and said so, when h2load
  is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.proto import compile_proto
from bench.run import ROOT, Worker, _python
from bench.workloads import UNARY_PAYLOAD

MIB = 1 << 20
KIB = 1 << 10
SERVERS = ("grpcio", "grpclib", "asgi_grpc")
PARTS = ("memory", "load", "workers")
#: Streams opened per connection at most, whatever the server allows.
STREAMS_PER_CONNECTION = 100
BIDI = "/asgi_grpc.bench.Echo/Bidi"
UNARY = "/asgi_grpc.bench.Echo/Unary"
#: Seconds to let a server settle (allocations done, tasks scheduled) before reading its RSS.
SETTLE = 1.0


def grpc_message(payload: bytes) -> bytes:
    """A length-prefixed EchoRequest{payload} (field 1, bytes), encoded by hand."""
    body = b"\x0a" + _varint(len(payload)) + payload
    return b"\x00" + len(body).to_bytes(4, "big") + body


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


# ------------------------------------------------------------------------------ raw connections


class RawConnection:
    """One client HTTP/2 connection (h2 state machine over asyncio streams)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import h2.config
        import h2.connection

        self._reader, self._writer = reader, writer
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.settings = asyncio.Event()
        self.answered: set[int] = set()
        self.progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection(host, port)
        connection = cls(reader, writer)
        connection.h2.initiate_connection()
        connection._flush()
        connection._task = asyncio.ensure_future(connection._read())
        await asyncio.wait_for(connection.settings.wait(), timeout=30)
        return connection

    @property
    def max_streams(self) -> int | None:
        value = self.h2.remote_settings.max_concurrent_streams
        return None if value >= 2**31 else int(value)

    def _flush(self) -> None:
        if data := self.h2.data_to_send():
            self._writer.write(data)

    async def _read(self) -> None:
        import h2.events

        while data := await self._reader.read(65536):
            for event in self.h2.receive_data(data):
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    self.settings.set()
                elif isinstance(event, h2.events.DataReceived):
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    self.answered.add(event.stream_id)
                    self.progress.set()
            self._flush()

    def open_stream(self, path: str, message: bytes) -> None:
        """A call on ``path`` with one request message, left open (no END_STREAM)."""
        stream_id = self.h2.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "127.0.0.1"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        self.h2.send_headers(stream_id, headers)
        self.h2.send_data(stream_id, message)
        self._flush()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._writer.close()


async def open_many(host: str, port: int, count: int) -> list[RawConnection]:
    """``count`` connections, 50 handshakes at a time (a burst of 1,000 overflows the backlog)."""
    gate = asyncio.Semaphore(50)

    async def one() -> RawConnection:
        async with gate:
            return await RawConnection.open(host, port)

    return list(await asyncio.gather(*(one() for _ in range(count))))


def rss(process: psutil.Process) -> int:
    return int(process.memory_info().rss)


# ------------------------------------------------------------------------------ parts


def start_server(impl: str, gen_dir: Path, host: str, log: Path) -> tuple[Worker, int]:
    server = Worker(_python("bench.server", impl=impl, gen_dir=gen_dir, host=host), log.open("wb"))
    port: int = server.next_event(timeout=60)["port"]
    return server, port


async def _memory(port: int, process: psutil.Process, cfg: argparse.Namespace) -> dict[str, Any]:
    host = cfg.host
    out: dict[str, Any] = {}
    # One answered call first, so the first measured connection does not pay for lazy imports.
    (warm,) = await open_many(host, port, 1)
    warm.open_stream(BIDI, grpc_message(UNARY_PAYLOAD))
    await asyncio.wait_for(warm.progress.wait(), timeout=30)
    warm.close()
    await asyncio.sleep(SETTLE)
    base = out["base_rss"] = rss(process)
    idle: list[dict[str, Any]] = []
    connections: list[RawConnection] = []
    for level in cfg.connections:
        connections += await open_many(host, port, level - len(connections))
        await asyncio.sleep(SETTLE)
        grown = rss(process) - base
        idle.append({"connections": level, "rss": base + grown, "per_connection": grown / level})
    out["idle"] = idle
    limit = connections[0].max_streams if connections else None
    for connection in connections:
        connection.close()
    await asyncio.sleep(SETTLE)

    per = min(limit or STREAMS_PER_CONNECTION, STREAMS_PER_CONNECTION)
    count = math.ceil(cfg.streams / per)
    connections = await open_many(host, port, count)
    await asyncio.sleep(SETTLE)
    before = rss(process)
    left = cfg.streams
    message = grpc_message(UNARY_PAYLOAD)
    for connection in connections:
        for _ in range(min(per, left)):
            connection.open_stream(BIDI, message)
        left -= min(per, left)
        await asyncio.sleep(0)  # let the writes go out as we go
    deadline = time.monotonic() + 30 + cfg.streams / 100
    while time.monotonic() < deadline:
        answered = sum(len(c.answered) for c in connections)
        if answered >= cfg.streams:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(SETTLE)
    after = rss(process)
    answered = sum(len(c.answered) for c in connections)
    out["streams"] = {
        "asked": cfg.streams,
        "answered": answered,
        "connections": count,
        "per_connection": per,
        "server_limit": limit,
        "rss_before": before,
        "rss_after": after,
        "per_stream": (after - before) / answered if answered else None,
    }
    for connection in connections:
        connection.close()
    return out


def memory_part(impl: str, gen_dir: Path, logs: Path, cfg: argparse.Namespace) -> dict[str, Any]:
    server, port = start_server(impl, gen_dir, cfg.host, logs / f"memory-{impl}.log")
    try:
        return asyncio.run(_memory(port, server.process, cfg))
    except Exception as exc:  # one server's failure must not hide the others' figures
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        server.stop()


def load_part(
    impl: str, level: int, gen_dir: Path, logs: Path, cfg: argparse.Namespace
) -> dict[str, Any]:
    server, port = start_server(impl, gen_dir, cfg.host, logs / f"load-{impl}-{level}.log")
    client = None
    try:
        client = Worker(
            _python(
                "bench.scale_client",
                target=f"{cfg.host}:{port}",
                connections=level,
                seconds=cfg.seconds,
                warmup=cfg.warmup,
                gen_dir=gen_dir,
            ),
            (logs / f"load-{impl}-{level}-client.log").open("wb"),
        )
        event = client.next_event(timeout=cfg.warmup + 120)
        if event.get("event") != "measuring":
            raise KeyError(f"client said {event}")
        cpu0 = server.process.cpu_times()
        result = client.next_event(timeout=cfg.seconds + 60)
        cpu1 = server.process.cpu_times()
        result.pop("event", None)
        result["server_cpu_s"] = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        return result
    except (TimeoutError, EOFError, KeyError, psutil.Error) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        if client is not None:
            client.stop()
        server.stop()


_FINISHED = re.compile(r"finished in [\d.]+\w*, ([\d.]+) req/s")
_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
    r"(\d+) failed, (\d+) errored"
)


def workers_part(workers: int, h2load: str, tmp: Path, cfg: argparse.Namespace) -> dict[str, Any]:
    """``asgi-grpc serve --workers N`` under h2load for ``cfg.h2load_seconds``."""
    body = tmp / "request.bin"
    body.write_bytes(grpc_message(UNARY_PAYLOAD))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "asgi_grpc.cli", "serve", "bench.scale_app:register"]
    argv += ["--bind", f"{cfg.host}:0", "--workers", str(workers), "--grace", "1"]
    serve = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        assert serve.stderr is not None
        url = None
        for raw in serve.stderr:
            if match := re.search(rb"serving on (\S+)", raw):
                url = match.group(1).decode()
                break
        if url is None:
            return {"error": f"asgi-grpc serve exited with code {serve.wait(timeout=10)}"}
        # Drain the rest of its stderr so it never blocks on a full pipe.
        stderr = serve.stderr
        import threading

        threading.Thread(target=lambda: [None for _ in stderr], daemon=True).start()
        _check_echo(url, body.read_bytes())
        argv = [
            h2load,
            "-t",
            "1",
            "-c",
            str(cfg.h2load_connections),
            "-m",
            str(cfg.h2load_streams),
            "-D",
            f"{cfg.h2load_seconds:g}",
            "--warm-up-time",
            "1",
            "-d",
            str(body),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            url + UNARY,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=cfg.h2load_seconds + 60)
        finished, requests = _FINISHED.search(done.stdout), _REQUESTS.search(done.stdout)
        if done.returncode != 0 or finished is None or requests is None:
            return {"error": f"h2load exit {done.returncode}: {(done.stdout + done.stderr)[-600:]}"}
        total, _, _, succeeded, failed, errored = (int(v) for v in requests.groups())
        return {
            "value": float(finished.group(1)),
            "requests": total,
            "succeeded": succeeded,
            "failed": failed + errored,
        }
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=15)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait(timeout=5)


def _check_echo(url: str, framed: bytes) -> None:
    """One real gRPC call (grpcio) to the served target: h2load counts HTTP 200s, not statuses."""
    import grpc

    target = url.split("://", 1)[1]
    with grpc.insecure_channel(target) as channel:
        answer = channel.unary_unary(UNARY)(framed[5:], timeout=30)
    if answer != framed[5:]:
        raise RuntimeError(f"the served echo answered {answer!r}")


# ------------------------------------------------------------------------------ report


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def _kib(value: float | None) -> str:
    return "-" if value is None else f"{value / KIB:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def render(results: dict[str, Any], cfg: argparse.Namespace) -> str:
    lines = ["# asgi_grpc scaling benchmark", ""]
    lines.append(f"load average (1 min) {os.getloadavg()[0]:.2f}; cpus {os.cpu_count()}")
    errors: list[str] = []
    memory = results.get("memory")
    if memory is not None:
        lines += ["", "## Server RSS per idle connection", ""]
        header = ["server", "RSS after start, MiB"]
        header += [f"{n} conn.: RSS MiB / KiB per conn." for n in cfg.connections]
        rows = []
        for impl, figures in memory.items():
            if "error" in figures:
                errors.append(f"memory, {impl}: {figures['error']}")
                rows.append([impl, "**error**"] + ["-"] * len(cfg.connections))
                continue
            row = [impl, _mib(figures["base_rss"])]
            row += [f"{_mib(i['rss'])} / {_kib(i['per_connection'])}" for i in figures["idle"]]
            rows.append(row)
        lines += _table(header, rows)
        lines += ["", f"## Server RSS per open stream ({cfg.streams:,} Bidi calls held open)", ""]
        rows = []
        for impl, figures in memory.items():
            if "error" in figures:
                continue
            s = figures["streams"]
            limit = "none" if s["server_limit"] is None else str(s["server_limit"])
            rows.append(
                [
                    impl,
                    f"{s['connections']} x {s['per_connection']} (server limit {limit})",
                    f"{s['answered']:,}",
                    f"{_mib(s['rss_before'])} -> {_mib(s['rss_after'])}",
                    _kib(s["per_stream"])
                    + ("" if s["answered"] >= s["asked"] else " (not all answered: rough)"),
                ]
            )
        lines += _table(
            ["server", "connections x streams", "streams answered", "RSS, MiB", "KiB per stream"],
            rows,
        )
    load = results.get("load")
    if load is not None:
        for title, key, fmt in (
            ("Unary calls/s by concurrent client connections", "value", "{:,.0f}"),
            ("p99 latency, us", "p99_us", "{:,.0f}"),
            ("p50 latency, us", "p50_us", "{:,.0f}"),
            ("Server CPU per call, us", "cpu_us", "{:,.0f}"),
        ):
            lines += ["", f"## {title}", ""]
            rows = []
            for impl, levels in load.items():
                row = [impl]
                for level in cfg.load:
                    figures = levels.get(str(level), {})
                    if "error" in figures:
                        row.append("**error**")
                        if key == "value":
                            errors.append(f"load, {impl}, {level} connections: {figures['error']}")
                    elif key == "cpu_us":
                        calls = figures.get("calls")
                        row.append(
                            fmt.format(figures["server_cpu_s"] / calls * 1e6) if calls else "-"
                        )
                    else:
                        row.append(fmt.format(figures[key]) if key in figures else "-")
                rows.append(row)
            lines += _table(["server", *(f"{n} conn." for n in cfg.load)], rows)
        lines += [
            "",
            "One grpclib client process, one call in flight per connection: at 100 and more "
            "connections the client's own CPU limits the figures (the workers part uses h2load).",
        ]
    workers = results.get("workers")
    if workers is not None:
        lines += ["", "## asgi-grpc serve, h2load", ""]
        if "skipped" in workers:
            lines.append(workers["skipped"])
        else:
            one = workers.get("1", {}).get("value")
            rows = []
            for count, figures in workers.items():
                if "error" in figures:
                    errors.append(f"workers, {count}: {figures['error']}")
                    rows.append([count, "**error**", "-", "-", "-"])
                    continue
                ratio = f"{figures['value'] / one:.2f}x" if one else "-"
                rows.append(
                    [
                        count,
                        f"{figures['value']:,.0f}",
                        f"{figures['succeeded']:,}",
                        f"{figures['failed']:,}",
                        ratio,
                    ]
                )
            lines += _table(["workers", "requests/s", "succeeded", "failed", "vs 1 worker"], rows)
            lines += [
                "",
                f"h2load -t 1 -c {cfg.h2load_connections} -m {cfg.h2load_streams}, "
                f"{cfg.h2load_seconds:g} s after 1 s warm-up, unary echo of a 10-byte payload; "
                f"loop: {'uvloop' if _uvloop() else 'asyncio'}.",
            ]
    if errors:
        lines += ["", "## Failures", ""] + [f"- {e}" for e in errors]
    return "\n".join(lines)


def _uvloop() -> bool:
    from asgi_grpc._sync._loop import uvloop_wanted

    return uvloop_wanted()


# ------------------------------------------------------------------------------ main


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench scale", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help="comma list (default all three)"
    )
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma list from {PARTS}")
    # (full run, --quick) defaults; an option given explicitly wins over both.
    defaults: dict[str, tuple[Any, Any]] = {
        "connections": ([1, 100, 1000], [1, 10]),
        "streams": (10_000, 200),
        "load": ([1, 10, 100, 1000], [1, 10]),
        "seconds": (3.0, 0.5),
        "warmup": (1.0, 0.2),
        "workers": ([1, 2], [1, 2]),
        "h2load_seconds": (5.0, 1.0),
        "h2load_connections": (16, 2),
        "h2load_streams": (16, 4),
    }
    parser.add_argument("--connections", type=_ints, help="idle connection counts (1,100,1000)")
    parser.add_argument("--streams", type=int, help="open streams (default 10000)")
    parser.add_argument("--load", type=_ints, help="client connection counts (1,10,100,1000)")
    parser.add_argument("--seconds", type=float, help="measured seconds per load level (3)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per load level (1)")
    parser.add_argument("--workers", type=_ints, help="asgi-grpc serve worker counts (1,2)")
    parser.add_argument("--h2load-seconds", type=float, help="h2load -D (5)")
    parser.add_argument("--h2load-connections", type=int, help="h2load -c (16)")
    parser.add_argument("--h2load-streams", type=int, help="h2load -m (16)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: tiny counts, short windows"
    )
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := set(args.parts) - set(PARTS):
        parser.error(f"unknown part(s) {sorted(unknown)}; choose from {PARTS}")
    if unknown := set(args.servers) - set(SERVERS):
        parser.error(f"unknown server(s) {sorted(unknown)}; choose from {SERVERS}")
    return args


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


def main(argv: list[str]) -> int:
    cfg = parse_args(argv)
    # This process and the servers (which inherit the limit) hold every connection's socket.
    _raise_fd_limit(max([*cfg.connections, *cfg.load, 1]) * 2 + 256)
    started = dt.datetime.now(dt.timezone.utc)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="asgi_grpc_scale_") as name:
        tmp = Path(name)
        gen_dir = compile_proto(tmp / "gen")
        logs = tmp / "logs"
        logs.mkdir()
        if "memory" in cfg.parts:
            results["memory"] = {}
            for impl in cfg.servers:
                print(f"memory: {impl}", file=sys.stderr)
                results["memory"][impl] = memory_part(impl, gen_dir, logs, cfg)
        if "load" in cfg.parts:
            results["load"] = {impl: {} for impl in cfg.servers}
            for level in cfg.load:
                for impl in cfg.servers:  # interleaved: drift hits every server alike
                    figures = load_part(impl, level, gen_dir, logs, cfg)
                    results["load"][impl][str(level)] = figures
                    status = figures.get("error") or f"{figures.get('value', 0):,.0f} calls/s"
                    print(f"load: {impl}, {level} connections: {status}", file=sys.stderr)
        if "workers" in cfg.parts:
            h2load = shutil.which("h2load")
            if h2load is None:
                why = (
                    "h2load not found (Debian/Ubuntu: apt-get install nghttp2-client): the "
                    "`asgi-grpc serve --workers` comparison is skipped."
                )
                print(why, file=sys.stderr)
                results["workers"] = {"skipped": why}
            else:
                results["workers"] = {}
                for count in cfg.workers:
                    figures = workers_part(count, h2load, tmp, cfg)
                    results["workers"][str(count)] = figures
                    status = figures.get("error") or f"{figures.get('value', 0):,.0f} req/s"
                    print(f"workers: {count}: {status}", file=sys.stderr)
    markdown = render(results, cfg)
    print(markdown)
    if cfg.json is not None:
        cfg.json.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: v for k, v in vars(cfg).items() if k != "json"}
        dump = {"started": started.isoformat(), "settings": settings, "results": results}
        cfg.json.write_text(json.dumps(dump, indent=2, default=str) + "\n")
    return 1 if "## Failures" in markdown else 0
