"""The echo service on grpclib: its own Server and the generated ``echo_grpc.EchoBase``."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from bench.proto import load
from bench.tls import server_context


def make_service(pb2: Any, echo_grpc: Any) -> Any:
    class Echo(echo_grpc.EchoBase):  # type: ignore[misc]
        async def Unary(self, stream: Any) -> None:
            request = await stream.recv_message()
            await stream.send_message(pb2.EchoResponse(payload=request.payload))

        async def ServerStream(self, stream: Any) -> None:
            request = await stream.recv_message()
            payload = b"x" * request.response_size
            for index in range(request.count):
                await stream.send_message(pb2.EchoResponse(payload=payload, index=index))

        async def ClientStream(self, stream: Any) -> None:
            count = 0
            async for _ in stream:
                count += 1
            await stream.send_message(pb2.EchoResponse(index=count))

        async def Bidi(self, stream: Any) -> None:
            async for request in stream:
                await stream.send_message(pb2.EchoResponse(payload=request.payload))

    return Echo()


class GrpclibServer:
    def __init__(self, gen_dir: Path) -> None:
        from grpclib.server import Server

        pb2, echo_grpc = load(gen_dir, "echo_pb2", "echo_grpc")
        self._server = Server([make_service(pb2, echo_grpc)])
        self._stopped = asyncio.Event()

    async def start(self, host: str, tls: Path | None = None) -> int:
        # grpclib reports no bound port; bind the socket ourselves to learn it. IPPROTO_TCP must
        # be explicit: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and accepted
        # sockets inherit it (with proto 0, Nagle + delayed ACK cost 40 ms per unary call).
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        await self._server.start(sock=sock, ssl=None if tls is None else server_context(tls))
        return port

    async def serve_until_stopped(self) -> None:
        await self._stopped.wait()
        self._server.close()
        await self._server.wait_closed()

    def stop(self) -> None:
        self._stopped.set()


def grpclib(gen_dir: Path) -> GrpclibServer:
    return GrpclibServer(gen_dir)
