"""Markdown tables from aggregated results.

Pairs are grouped into comparisons, each with its own baselines:
- "Servers, C client": every server driven by client C; ratios to the grpcio and grpclib servers.
- "Clients, S server": every client against server S; ratios to the grpcio and grpclib clients.
- "End to end": pairs whose server and client are the same implementation; ratios to grpcio end to
  end and grpclib end to end.
A ratio is always (this row's figure) / (the baseline's figure), whatever the figure: above 1 is
better for throughput, worse for latency, CPU and memory.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.workloads import WORKLOADS

Pair = tuple[str, str]
Results = dict[tuple[str, str, str], dict[str, Any]]
BASELINES = ("grpcio", "grpclib")
MIB = 1 << 20


@dataclass(frozen=True, kw_only=True)
class Group:
    title: str
    #: (label, pair), in display order.
    rows: list[tuple[str, Pair]]

    @property
    def labels(self) -> list[str]:
        return [label for label, _ in self.rows]

    def ratio_columns(self) -> list[tuple[str, str]]:
        """(label, baseline) for every ratio shown, skipping self-ratios and grpcio/grpclib when
        grpclib/grpcio is already there (one is the inverse of the other)."""
        present = [b for b in BASELINES if b in self.labels]
        columns = []
        for base in present:
            for label in self.labels:
                if label == base or (
                    label in present and present.index(label) < present.index(base)
                ):
                    continue
                columns.append((label, base))
        return columns


def groups(pairs: list[Pair]) -> list[Group]:
    servers = list(dict.fromkeys(s for s, _ in pairs))
    clients = list(dict.fromkeys(c for _, c in pairs))
    out = []
    for client in clients:
        rows = [(s, (s, client)) for s in servers if (s, client) in pairs]
        if len(rows) > 1 or len(clients) == 1:
            out.append(Group(title=f"Servers, {client} client", rows=rows))
    for server in servers:
        rows = [(c, (server, c)) for c in clients if (server, c) in pairs]
        if len(rows) > 1 or (len(servers) == 1 and len(clients) > 1):
            out.append(Group(title=f"Clients, {server} server", rows=rows))
    same = [(impl, (impl, impl)) for impl in servers if (impl, impl) in pairs]
    if len(same) > 1 and len(clients) > 1:
        out.append(Group(title="End to end (same implementation both sides)", rows=same))
    return out


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}x"


# (row heading, key in the aggregated results, scale); "{unit}" and "{op}" filled per workload.
_METRICS = [
    ("**{unit}**", "value", 1.0),
    ("p50 latency, us", "p50_us", 1.0),
    ("p99 latency, us", "p99_us", 1.0),
    ("server CPU, us/{op}", "server_cpu_us_per_op", 1.0),
    ("server CPU, s", "server_cpu_s", 1.0),
    ("server peak RSS, MiB", "server_rss", 1 / MIB),
    ("server page faults/{op}", "server_faults_per_op", 1.0),
    ("client CPU, us/{op}", "client_cpu_us_per_op", 1.0),
    ("client CPU, s", "client_cpu_s", 1.0),
    ("client peak RSS, MiB", "client_rss", 1 / MIB),
    ("client page faults/{op}", "client_faults_per_op", 1.0),
    ("other processes' CPU, cores (noise)", "other_cpu_cores", 1.0),
]
#: Not a property of the implementations: no ratios.
_NO_RATIO = {"other_cpu_cores"}


def _figure(results: Results, pair: Pair, workload: str, key: str, scale: float) -> float | None:
    figures = results.get((*pair, workload))
    if not figures or not figures.get("ok") or key not in figures:
        return None
    return float(figures[key]) * scale


def _cell(results: Results, pair: Pair, workload: str, key: str, scale: float) -> str:
    figures = results.get((*pair, workload), {})
    if figures and not figures.get("ok"):
        return "**error**"
    return fmt(_figure(results, pair, workload, key, scale))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_group(group: Group, workloads: list[str], results: Results) -> list[str]:
    ratio_columns = group.ratio_columns()
    header_tail = group.labels + [f"{label} / {base}" for label, base in ratio_columns]
    pair_of = dict(group.rows)

    def row(heading: str, workload: str, key: str, scale: float) -> list[str]:
        cells = [heading]
        cells += [_cell(results, pair, workload, key, scale) for pair in pair_of.values()]
        for label, base in ratio_columns:
            if key in _NO_RATIO:
                cells.append("")
                continue
            value = _figure(results, pair_of[label], workload, key, scale)
            cells.append(fmt_ratio(value, _figure(results, pair_of[base], workload, key, scale)))
        return cells

    lines = [f"## {group.title}", "", "Headline figures (higher is better):", ""]
    lines += _table(
        ["workload", *header_tail],
        [row(f"{WORKLOADS[w].title}, {WORKLOADS[w].unit}", w, "value", 1.0) for w in workloads],
    )
    for workload in workloads:
        spec = WORKLOADS[workload]
        rows = []
        for heading, key, scale in _METRICS:
            if key in ("p50_us", "p99_us") and not spec.latency:
                continue
            rows.append(row(heading.format(unit=spec.unit, op=spec.op), workload, key, scale))
        lines += ["", f"### {spec.title}", ""]
        lines += _table(["figure", *header_tail], rows)
    return lines


#: The server-CPU summary: (column heading, workload) for issue 10's two CPU targets and the
#: other per-message figure.
_CPU_SUMMARY = [
    ("per unary call, 64 in flight (unary_64)", "unary_64"),
    ("per streamed message, server streaming (stream)", "stream"),
    ("per streamed message, client streaming (client_stream)", "client_stream"),
]


def render_cpu_summary(pairs: list[Pair], workloads: list[str], results: Results) -> list[str]:
    """Server CPU in us per operation, one row per pair, for the workloads of :data:`_CPU_SUMMARY`
    that ran (the same figures as the per-workload tables' "server CPU, us/..." rows)."""
    columns = [(title, w) for title, w in _CPU_SUMMARY if w in workloads]
    if not columns:
        return []
    rows = [
        [
            f"{server} server <- {client} client",
            *[_cell(results, (server, client), w, "server_cpu_us_per_op", 1.0) for _, w in columns],
        ]
        for server, client in pairs
    ]
    lines = ["## Server CPU per operation, us", ""]
    lines += _table(["pair", *(title for title, _ in columns)], rows)
    return lines


def render(
    pairs: list[Pair],
    workloads: list[str],
    results: Results,
    *,
    env: dict[str, str],
    settings: dict[str, Any],
) -> str:
    lines = ["# asgi_grpc benchmark", ""]
    lines.append(
        f"{settings['warmup']:g} s warm-up + {settings['seconds']:g} s measured per workload, "
        f"median of {settings['repeat']} run(s); every measurement starts a fresh server and "
        "client process on loopback; one channel (one HTTP/2 connection) per client."
    )
    lines.append("")
    lines.append("; ".join(f"{k} {v}" for k, v in env.items()))
    for name, why in settings.get("skipped", {}).items():
        lines += ["", f"Skipped {name}: {why}"]
    if summary := render_cpu_summary(pairs, workloads, results):
        lines += ["", *summary]
    for group in groups(pairs):
        lines += ["", *render_group(group, workloads, results)]
    lines += [
        "",
        "Ratios are this column's figure divided by the baseline's, for every row: above 1 is "
        "better for throughput, worse for latency, CPU and memory.",
    ]
    notes = [(key, f["notes"]) for key, f in results.items() if f.get("notes")]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [
            f"- {server} server <- {client} client, {workload}: {note}"
            for (server, client, workload), texts in notes
            for note in texts
        ]
    failures = [(key, f) for key, f in results.items() if f.get("errors")]
    if failures:
        lines += ["", "## Failures"]
        for (server, client, workload), figures in failures:
            for error in figures["errors"]:
                lines += ["", f"- {server} server <- {client} client, {workload}: {error['error']}"]
                for key, title in (
                    ("server_stderr", "server stderr (tail)"),
                    ("client_stderr", "client stderr (tail)"),
                    ("server_stacks", "server stacks when the client gave up (py-spy dump)"),
                    ("client_stacks", "client stacks when it was found stuck (py-spy dump)"),
                ):
                    text = error.get(key, "").strip()
                    if text:
                        lines += ["", f"  {title}:", "", "  ```"]
                        lines += [f"  {line}" for line in text.splitlines()]
                        lines += ["  ```"]
    return "\n".join(lines)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def environment() -> dict[str, str]:
    env = {
        "python": platform.python_version(),
        "cpus": str(os.cpu_count()),
        "load average (1 min)": f"{os.getloadavg()[0]:.2f}",
    }
    for dist in ("grpcio", "grpclib", "hypercorn", "h2", "httpx", "protobuf"):
        env[dist] = _version(dist)
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    env["asgi_grpc"] = commit or "unknown"
    return env
