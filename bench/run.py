"""The orchestrator: ``python -m bench [options]`` (see bench/README.md).

For every (server impl, client impl) pair, workload and repeat, it starts a fresh server process
and a fresh client process on loopback, waits for the client's warm-up to end, then measures the
CPU time (user+sys) and peak RSS of both processes over the client's measured window. Pairs are
interleaved within each workload and repeat, so slow drift of the machine hits all alike; the
report shows the median over repeats.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil  # type: ignore[import-untyped]  # no stubs installed; used for 4 calls

from bench import report
from bench.clients import CLIENTS
from bench.proto import compile_proto
from bench.servers import SERVERS
from bench.tls import make_certs
from bench.uvloop_pairs import env_for
from bench.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

#: What must work for an implementation to be picked by default (``--servers auto``).
_SERVER_PROBES = {
    "grpcio": "import grpc.aio; grpc.aio.server",
    "grpclib": "import grpclib.server; grpclib.server.Server",
    "asgi_grpc": "import asgi_grpc.aio; asgi_grpc.aio.server",
    "grpcio_sync": "import grpc; grpc.server",
    "asgi_grpc_sync": "import asgi_grpc; asgi_grpc.server",
    "asgi_grpc_uvloop": "import uvloop, asgi_grpc.aio; asgi_grpc.aio.server",
    "asgi_grpc_sync_uvloop": "import uvloop, asgi_grpc; asgi_grpc.server",
}
_CLIENT_PROBES = {
    "grpcio": "import grpc.aio; grpc.aio.insecure_channel",
    "grpclib": "import grpclib.client; grpclib.client.Channel",
    "asgi_grpc": "import asgi_grpc.aio; asgi_grpc.aio.insecure_channel",
    "grpcio_sync": "import grpc; grpc.insecure_channel",
    "asgi_grpc_sync": "import asgi_grpc; asgi_grpc.insecure_channel",
    "asgi_grpc_uvloop": "import uvloop, asgi_grpc.aio; asgi_grpc.aio.insecure_channel",
    "asgi_grpc_sync_uvloop": "import uvloop, asgi_grpc; asgi_grpc.insecure_channel",
}
assert _SERVER_PROBES.keys() <= SERVERS.keys()
assert _CLIENT_PROBES.keys() <= CLIENTS.keys()  # not probed: only when named (asgi_grpc_base)

Pair = tuple[str, str]  # (server impl, client impl)


@dataclass(kw_only=True)
class Config:
    pairs: list[Pair]
    workloads: list[str]
    seconds: float
    warmup: float
    repeat: int
    host: str
    #: Seconds past its expected end after which a client is declared stuck.
    stuck_after: float = 30.0
    #: Measure again (up to noise_retries times, keeping the quietest) when other processes
    #: used more than this many cores during the window.
    max_noise: float | None = None
    noise_retries: int = 3
    skipped: dict[str, str] = field(default_factory=dict)


class Worker:
    """A child process whose stdout lines arrive on a queue, read by a daemon thread."""

    def __init__(
        self, argv: list[str], stderr: IO[bytes], extra_env: dict[str, str] | None = None
    ) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.update(extra_env or {})
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=ROOT
        )
        self.process = psutil.Process(self.popen.pid)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            self._lines.put(raw.decode(errors="replace"))
        self._lines.put(None)

    def next_event(self, timeout: float) -> dict[str, Any]:
        """The next JSON line; raises TimeoutError, or EOFError if the process closed stdout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no answer within {timeout:.0f} s") from None
            if line is None:
                self.popen.wait(timeout=5)
                raise EOFError(f"exited with code {self.popen.returncode}")
            with contextlib.suppress(ValueError):
                event: dict[str, Any] = json.loads(line)
                return event

    def stop(self, sig: int = signal.SIGTERM, grace: float = 5.0) -> str | None:
        """Signal the process and reap it; returns why the stop was not clean, if it was not."""
        problem = None
        if self.popen.poll() is None:
            started = time.monotonic()
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
                problem = f"still running {grace:g} s after signal {sig}: killed"
            else:
                if self.popen.returncode not in (0, -sig):
                    problem = f"exit code {self.popen.returncode} on signal {sig}"
                elapsed = time.monotonic() - started
                if elapsed > 1.5:
                    problem = f"took {elapsed:.1f} s to stop after signal {sig}"
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        return problem


class Meter:
    """CPU seconds and peak RSS of one process over a window.

    Peak RSS comes from the kernel's high-water mark (VmHWM), reset at the window's start by
    writing 5 to /proc/PID/clear_refs; where that is refused, from psutil samples every 20 ms.
    """

    def __init__(self, process: psutil.Process) -> None:
        self._process = process
        self._cpu0 = self._cpu()
        self._faults0 = self._faults()
        self.faults = 0  # minor page faults in the window, set by finish()
        self._hwm = self._reset_hwm()
        self._sampled = process.memory_info().rss
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _cpu(self) -> float:
        # The server's child processes too: pyvoy's server is Envoy, a child of bench.server.
        total = 0.0
        for process in [self._process, *self._children()]:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def _faults(self) -> int:
        # Minor page faults (/proc/PID/stat's minflt): memory the allocator handed back to the
        # kernel and touched again. grpcio's processes take ~1,000 per 1 MiB call in some runs
        # and none in others (glibc's heap trimming), which is most of a slow run's CPU.
        total = 0
        for process in [self._process, *self._children()]:
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{process.pid}/stat").read_text()
                total += int(stat.rsplit(")", 1)[1].split()[7])
        return total

    def _children(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return self._process.children(recursive=True)
        return []

    def _reset_hwm(self) -> bool:
        try:
            Path(f"/proc/{self._process.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def _read_hwm(self) -> int | None:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self._process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return None

    def _sample(self) -> None:
        # The process may exit mid-sample; the sampler then just stops.
        with contextlib.suppress(psutil.Error):
            while not self._done.wait(0.02):
                rss = self._process.memory_info().rss
                # (Envoy, pyvoy's server, is a child process: its memory is the server's.)
                for child in self._children():
                    with contextlib.suppress(psutil.Error):
                        rss += child.memory_info().rss
                self._sampled = max(self._sampled, rss)

    def finish(self) -> tuple[float, int]:
        """(CPU seconds in the window, peak RSS bytes in the window)."""
        self._done.set()
        cpu = self._cpu() - self._cpu0
        self.faults = max(0, self._faults() - self._faults0)
        self._sampler.join(timeout=1)
        hwm = self._read_hwm() if self._hwm else None
        return cpu, max(hwm or 0, self._sampled)


def measure(
    pair: Pair,
    workload: str,
    cfg: Config,
    gen_dir: Path,
    logs: Path,
    tag: str,
    tls_dir: Path | None = None,
) -> dict[str, Any]:
    """One measurement: fresh server, fresh client, one workload. Never raises for a failing
    implementation: the failure goes into the sample's ``error``, with both stderr tails."""
    server_impl, client_impl = pair
    sample: dict[str, Any] = {"server": server_impl, "client": client_impl, "workload": workload}
    # TLS workloads get the run's certificates (bench/tls.py); the others none.
    tls: dict[str, Path] = {"tls_dir": tls_dir} if WORKLOADS[workload].tls and tls_dir else {}
    server_log = logs / f"{tag}-server.log"
    client_log = logs / f"{tag}-client.log"
    server: Worker | None = None
    client: Worker | None = None
    stage = "starting the server"
    with server_log.open("wb") as server_err, client_log.open("wb") as client_err:
        try:
            server = Worker(
                _python("bench.server", impl=server_impl, gen_dir=gen_dir, host=cfg.host, **tls),
                server_err,
                env_for(server_impl),
            )
            port = server.next_event(timeout=60)["port"]
            target = f"[{cfg.host}]:{port}" if ":" in cfg.host else f"{cfg.host}:{port}"
            stage = "warming up"
            client = Worker(
                _python(
                    "bench.client",
                    impl=client_impl,
                    target=target,
                    workload=workload,
                    seconds=cfg.seconds,
                    warmup=cfg.warmup,
                    gen_dir=gen_dir,
                    timeout=cfg.warmup + cfg.seconds + 2 * cfg.stuck_after,
                    **tls,
                ),
                client_err,
                env_for(client_impl),
            )
            event = _client_event(client, server, cfg.warmup + cfg.stuck_after, sample)
            if event.get("event") == "measuring":
                stage = "measuring"
                server_meter, client_meter = Meter(server.process), Meter(client.process)
                busy0, wall0 = _machine_busy(), time.monotonic()
                event = _client_event(client, server, cfg.seconds + cfg.stuck_after, sample)
                sample["server_cpu_s"], sample["server_rss"] = server_meter.finish()
                sample["client_cpu_s"], sample["client_rss"] = client_meter.finish()
                sample["server_faults"] = server_meter.faults
                sample["client_faults"] = client_meter.faults
                # What the rest of the machine did meanwhile: a noise gauge for this sample.
                others = _machine_busy() - busy0 - sample["server_cpu_s"] - sample["client_cpu_s"]
                sample["other_cpu_cores"] = max(0.0, others) / (time.monotonic() - wall0)
            if event.get("event") == "result":
                sample.update({k: v for k, v in event.items() if k != "event"})
            else:
                sample["error"] = f"client, {stage}: {event.get('error', event)}"
                if "server_stacks" not in sample and (stacks := _stacks(server.popen)):
                    sample["server_stacks"] = stacks
            if server.popen.poll() is not None:
                sample["error"] = f"server exited with code {server.popen.returncode} ({stage})"
        except (TimeoutError, EOFError, KeyError, psutil.Error) as exc:
            who = "server" if client is None else "client"
            sample["error"] = f"{who}, {stage}: {type(exc).__name__}: {exc}"
        finally:
            if client is not None:
                client.stop(signal.SIGKILL if "error" in sample else signal.SIGTERM)
            if server is not None and (problem := server.stop()):
                sample["server_stop"] = problem
    # Kept even on success: warnings and tracebacks a server logs while it answers are findings.
    for side, log in (("server", server_log), ("client", client_log)):
        if tail := _tail(log):
            sample[f"{side}_stderr"] = tail
    return sample


def _client_event(
    client: Worker, server: Worker, timeout: float, sample: dict[str, Any]
) -> dict[str, Any]:
    """The client's next event; if it is stuck, where both sides are and how far it got."""
    try:
        return client.next_event(timeout)
    except TimeoutError:
        pass
    for side, worker in (("server", server), ("client", client)):
        if stacks := _stacks(worker.popen):
            sample[f"{side}_stacks"] = stacks
    # The client answers SIGTERM with an error event counting the calls done and still open.
    client.popen.send_signal(signal.SIGTERM)
    try:
        event = client.next_event(timeout=15)
    except (TimeoutError, EOFError) as exc:
        event = {"event": "error", "error": f"(no progress report: {exc})"}
    return {"event": "error", "error": f"no answer within {timeout:g} s; {event.get('error')}"}


def _machine_busy() -> float:
    """CPU seconds all cores spent not idle since boot."""
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + times.irq + times.softirq)


def _stacks(popen: subprocess.Popen[bytes]) -> str | None:
    """The Python stacks of a live process (py-spy dump), to show where a failed call stuck."""
    py_spy = Path(sys.executable).parent / "py-spy"
    if popen.poll() is not None or not py_spy.exists():
        return None
    try:
        done = subprocess.run(
            [str(py_spy), "dump", "--pid", str(popen.pid)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return None
    return (done.stdout + done.stderr).strip() or None


def _python(module: str, **options: object) -> list[str]:
    """argv running ``module`` in this interpreter with ``--some-option value`` options."""
    argv = [sys.executable, "-m", module]
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


_DETAILS = ("server_stderr", "client_stderr", "server_stacks", "client_stacks")


def aggregate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric figure over the samples that succeeded; errors listed."""
    ok = [s for s in samples if "error" not in s]
    out: dict[str, Any] = {"runs": len(samples), "ok": len(ok)}
    for key in sorted({k for s in ok for k, v in s.items() if isinstance(v, (int, float))}):
        out[key] = statistics.median(s[key] for s in ok if key in s)
    if ok and out.get("ops"):
        for side in ("server", "client"):
            per_op = [s[f"{side}_cpu_s"] / s["ops"] * 1e6 for s in ok if s.get("ops")]
            out[f"{side}_cpu_us_per_op"] = statistics.median(per_op)
            faults = [
                s[f"{side}_faults"] / s["ops"] for s in ok if s.get("ops") and f"{side}_faults" in s
            ]
            if faults:
                out[f"{side}_faults_per_op"] = statistics.median(faults)
    notes = {f"server stop: {s['server_stop']}" for s in samples if "server_stop" in s}
    notes |= {
        f"{side} wrote to stderr (see the JSON samples)"
        for s in ok
        for side in ("server", "client")
        if f"{side}_stderr" in s
    }
    if notes:
        out["notes"] = sorted(notes)
    errors = [s for s in samples if "error" in s]
    if errors:
        out["errors"] = [{k: s[k] for k in ("error", *_DETAILS) if k in s} for s in errors]
    return out


def probe(code: str) -> str | None:
    """None if ``code`` runs in a fresh interpreter, else the last line of its error."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit code {done.returncode}"


def _names(
    value: str, known: dict[str, str], probes: dict[str, str], skipped: dict[str, str]
) -> list[str]:
    if value != "auto":
        names = [n.strip() for n in value.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f"unknown implementation(s) {unknown}; choose from {sorted(known)}")
        return names
    names = []
    for name in probes:
        why = probe(probes[name])
        if why is None:
            names.append(name)
        else:
            skipped[name] = why
    return names


def parse_args(argv: list[str] | None) -> tuple[Config, Path | None]:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark gRPC servers and clients (asgi_grpc, grpcio, grpclib) on loopback.",
    )
    parser.add_argument(
        "--servers",
        default="auto",
        help=f"comma list from {sorted(SERVERS)}; 'auto' (default): all that import",
    )
    parser.add_argument(
        "--clients",
        default="grpcio",
        help=f"comma list from {sorted(CLIENTS)}, or 'auto'; default grpcio",
    )
    parser.add_argument(
        "--pairs",
        help="explicit SERVER:CLIENT pairs, comma separated (instead of --servers x --clients)",
    )
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help=f"comma list from {list(WORKLOADS)}"
    )
    parser.add_argument("--seconds", type=float, help="measured seconds per workload (default 4)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per workload (default 1)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per figure; the median is shown"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 s per workload")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to serve on")
    parser.add_argument("--json", type=Path, help="where to write the JSON dump")
    parser.add_argument(
        "--max-noise",
        type=float,
        metavar="CORES",
        help="on a shared machine: measure again (up to 3 times, keeping the quietest) when "
        "other processes used more than CORES cores during a window, e.g. 0.3",
    )
    parser.add_argument(
        "--stuck-after",
        type=float,
        default=30.0,
        help="seconds past a phase's expected end before a client is declared stuck (default 30)",
    )
    args = parser.parse_args(argv)

    skipped: dict[str, str] = {}
    if args.pairs:
        pairs: list[Pair] = []
        for item in args.pairs.split(","):
            server, sep, client = item.strip().partition(":")
            if not sep or server not in SERVERS or client not in CLIENTS:
                parser.error(f"bad pair {item!r}: want SERVER:CLIENT from {sorted(SERVERS)}")
            pairs.append((server, client))
    else:
        servers = _names(args.servers, SERVERS, _SERVER_PROBES, skipped)
        clients = _names(args.clients, CLIENTS, _CLIENT_PROBES, skipped)
        pairs = [(s, c) for c in clients for s in servers]
    if not pairs:
        parser.error("nothing to run")
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if unknown := [w for w in workloads if w not in WORKLOADS]:
        parser.error(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    seconds = args.seconds if args.seconds is not None else (1.0 if args.quick else 4.0)
    warmup = args.warmup if args.warmup is not None else (0.3 if args.quick else 1.0)
    return Config(
        pairs=pairs,
        workloads=workloads,
        seconds=seconds,
        warmup=warmup,
        repeat=max(1, args.repeat),
        host=args.host,
        stuck_after=args.stuck_after,
        max_noise=args.max_noise,
        skipped=skipped,
    ), args.json


def main(argv: list[str] | None = None) -> int:
    cfg, json_path = parse_args(argv)
    started = dt.datetime.now(dt.timezone.utc)
    for name, why in cfg.skipped.items():
        print(f"skipping {name}: {why}", file=sys.stderr)
    env = report.environment()
    total = len(cfg.pairs) * len(cfg.workloads) * cfg.repeat
    print(
        f"{total} measurements of {cfg.warmup:g} s warm-up + {cfg.seconds:g} s: "
        + ", ".join(f"{s}<-{c}" for s, c in cfg.pairs),
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="asgi_grpc_bench_") as tmp:
        gen_dir = compile_proto(Path(tmp) / "gen")
        tls_dir = None
        if any(WORKLOADS[w].tls for w in cfg.workloads):
            tls_dir = make_certs(Path(tmp) / "tls")
        logs = Path(tmp) / "logs"
        logs.mkdir()
        samples: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        done = 0
        for rep in range(cfg.repeat):
            for workload in cfg.workloads:
                for pair in cfg.pairs:
                    tag = f"{rep}-{workload}-{pair[0]}-{pair[1]}"
                    sample = measure(pair, workload, cfg, gen_dir, logs, tag, tls_dir)
                    for retry in range(cfg.noise_retries if cfg.max_noise is not None else 0):
                        noise = sample.get("other_cpu_cores", 0.0)
                        if cfg.max_noise is None or noise <= cfg.max_noise:
                            break
                        print(f"  noisy ({noise:.2f} cores busy elsewhere): again", file=sys.stderr)
                        again = measure(
                            pair, workload, cfg, gen_dir, logs, f"{tag}-r{retry}", tls_dir
                        )
                        if again.get("other_cpu_cores", 0.0) < noise or "error" in again:
                            sample = again
                    samples.setdefault((*pair, workload), []).append(sample)
                    done += 1
                    status = sample.get("error") or f"{sample.get('value', 0):,.1f}"
                    print(
                        f"[{done}/{total}] {pair[0]}<-{pair[1]} {workload}: {status}",
                        file=sys.stderr,
                    )

    results = {key: aggregate(runs) for key, runs in samples.items()}
    markdown = report.render(cfg.pairs, cfg.workloads, results, env=env, settings=_settings(cfg))
    print(markdown)

    path = json_path or RESULTS / f"{started:%Y%m%dT%H%M%SZ}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    dump = {
        "started": started.isoformat(),
        "settings": _settings(cfg),
        "environment": env,
        "pairs": [list(p) for p in cfg.pairs],
        "results": [
            {"server": s, "client": c, "workload": w, **figures}
            for (s, c, w), figures in results.items()
        ],
        "samples": [sample for runs in samples.values() for sample in runs],
        "markdown": markdown,
    }
    path.write_text(json.dumps(dump, indent=2) + "\n")
    path.with_suffix(".md").write_text(markdown + "\n")
    print(f"results: {path}", file=sys.stderr)
    failed = any("errors" in figures for figures in results.values())
    return 1 if failed else 0


def _settings(cfg: Config) -> dict[str, Any]:
    return {
        "seconds": cfg.seconds,
        "warmup": cfg.warmup,
        "repeat": cfg.repeat,
        "host": cfg.host,
        "max_noise": cfg.max_noise,
        "workloads": cfg.workloads,
        "skipped": cfg.skipped,
    }
