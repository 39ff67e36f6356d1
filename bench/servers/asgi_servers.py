"""asgi_grpc's GrpcApp (the same echo servicer as bench/servers/grpc_aio.py) on ASGI servers other
than Hypercorn: uvicorn (``--http zttp --http2``, in this process) and pyvoy (Envoy, a child
process of this one: the orchestrator's Meter counts the server's child processes too).

``asgi_grpc`` (bench/servers/grpc_aio.py) is the Hypercorn row: ``asgi_grpc.aio.server()`` is
GrpcApp on Hypercorn.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

from bench.proto import load
from bench.servers.grpc_aio import make_servicer
from bench.tls import CHAIN, KEY
from bench.tls import read as read_tls

GEN_DIR_ENV = "ASGI_GRPC_BENCH_GEN_DIR"
ROOT = Path(__file__).resolve().parents[2]


def echo_app(gen_dir: Path) -> Any:
    from asgi_grpc.server import GrpcApp

    pb2, pb2_grpc = load(gen_dir, "echo_pb2", "echo_pb2_asgi_grpc")  # no grpcio in the process
    app = GrpcApp()
    pb2_grpc.add_EchoServicer_to_server(make_servicer(pb2, pb2_grpc), app)
    return app


class UvicornServer:
    def __init__(self, gen_dir: Path) -> None:
        self._app = echo_app(gen_dir)
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, host: str, tls: Path | None = None) -> int:
        import uvicorn

        settings: dict[str, Any] = {}
        if tls is not None:
            # uvicorn takes file names.
            settings = {"ssl_certfile": str(tls / CHAIN), "ssl_keyfile": str(tls / KEY)}
        config = uvicorn.Config(
            self._app,
            http="zttp",
            http2=True,
            lifespan="on",
            log_level="warning",
            access_log=False,
            server_header=False,
            date_header=False,
            timeout_keep_alive=300,
            **settings,
        )
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP (with
        # proto 0, Nagle and delayed ACKs made each unary call take 40 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind((host, 0))
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        # Started (and its signal capture in place, which bench/server.py's handlers replace).
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        port: int = sock.getsockname()[1]
        return port

    async def serve_until_stopped(self) -> None:
        assert self._task is not None
        await self._task

    def stop(self) -> None:
        self._server.should_exit = True


class PyvoyBenchServer:
    def __init__(self, gen_dir: Path) -> None:
        echo_app(gen_dir)  # fail here, not inside Envoy
        self._gen_dir = gen_dir
        self._server: Any = None
        self._stopping: asyncio.Future[None] | None = None

    async def start(self, host: str, tls: Path | None = None) -> int:
        from pyvoy import PyvoyServer

        settings: dict[str, Any] = {}
        if tls is not None:
            _, chain, key = read_tls(tls)
            settings = {"tls_cert": chain, "tls_key": key, "tls_enable_http3": False}
        path = os.pathsep.join([str(ROOT), str(self._gen_dir), *sys.path])
        self._server = PyvoyServer(
            "bench.servers.pyvoy_app:app",
            address=host,
            port=0,
            worker_threads=1,
            env={"PYTHONPATH": path, GEN_DIR_ENV: str(self._gen_dir)},
            **settings,
        )
        await self._server.start()
        port: int = self._server.listener_port
        return port

    async def serve_until_stopped(self) -> None:
        await self._server.wait()
        if self._stopping is not None:
            await self._stopping

    def stop(self) -> None:
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._server.stop())


def uvicorn(gen_dir: Path) -> UvicornServer:
    return UvicornServer(gen_dir)


def pyvoy(gen_dir: Path) -> PyvoyBenchServer:
    return PyvoyBenchServer(gen_dir)
