"""The bench's GrpcApp-on-other-ASGI-servers rows (bench/servers/asgi_servers.py) run end to end:
server CPU per unary call and per streamed message for uvicorn and pyvoy (Envoy's CPU included).
No timing assertions."""

from __future__ import annotations

from pathlib import Path

from .test_bench_smoke import run_bench


def test_uvicorn_and_pyvoy_rows(tmp_path: Path) -> None:
    servers = ("asgi_grpc_uvicorn", "asgi_grpc_pyvoy")
    done, dump = run_bench(
        tmp_path,
        "--servers",
        ",".join(servers),
        "--clients",
        "grpcio",
        "--workloads",
        "unary_1,stream",
    )
    assert "| workload | asgi_grpc_uvicorn | asgi_grpc_pyvoy |" in done.stdout
    assert "server CPU, us/call" in done.stdout
    assert "server CPU, us/msg" in done.stdout
    results = {(r["server"], r["workload"]): r for r in dump["results"]}
    assert set(results) == {(s, w) for s in servers for w in ("unary_1", "stream")}
    for (_, workload), figures in results.items():
        assert figures["ok"] == 1
        assert figures["ops"] > 0
        # CPU comes from 10 ms /proc ticks: a 0.2 s unary window on a loaded machine can see none;
        # a streaming server is busy for all of it.
        assert figures["server_cpu_s"] > 0 if workload == "stream" else figures["server_cpu_s"] >= 0
    # Envoy (a child of the pyvoy bench server) is measured: far more than the parent's ~50 MiB.
    assert results[("asgi_grpc_pyvoy", "unary_1")]["server_rss"] > 100 << 20
