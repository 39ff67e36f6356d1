"""A stand-in for a hung server, for testing the benchmark itself: it accepts TCP connections and
reads them, but never answers. Never picked by ``--servers auto``."""

from __future__ import annotations

import asyncio
from pathlib import Path


class SilentServer:
    def __init__(self) -> None:
        self._stopped = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    async def start(self, host: str, tls: Path | None = None) -> int:
        self._server = await asyncio.start_server(self._swallow, host, 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def serve_until_stopped(self) -> None:
        await self._stopped.wait()
        if self._server is not None:
            self._server.close()

    def stop(self) -> None:
        self._stopped.set()


def silent(gen_dir: Path) -> SilentServer:
    return SilentServer()
