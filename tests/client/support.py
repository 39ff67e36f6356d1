"""Helpers for the client tests: a byte-counting TCP proxy (to see compression on the wire),
a bare HTTP/2 server that records requests and never answers, and a servicer in its own
process (so a test can kill the server mid-call)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events


@dataclass
class Counts:
    upstream: int = 0  # client -> server bytes
    downstream: int = 0
    connections: int = 0


@contextlib.asynccontextmanager
async def counting_proxy(port: int) -> AsyncIterator[tuple[int, Counts]]:
    """A TCP proxy on 127.0.0.1 to ``port``; yields (its port, byte counts)."""
    counts = Counts()
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool) -> None:
        try:
            while data := await reader.read(65536):
                if up:
                    counts.upstream += len(data)
                else:
                    counts.downstream += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counts.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        for task in (
            asyncio.ensure_future(pipe(reader, up_writer, True)),
            asyncio.ensure_future(pipe(up_reader, writer, False)),
        ):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], counts
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@dataclass
class Recorded:
    """Request headers a bare h2 server saw, one list per stream."""

    requests: list[dict[bytes, bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def silent_h2_server() -> AsyncIterator[tuple[int, Recorded]]:
    """An HTTP/2 server on 127.0.0.1 that records request headers and never answers (a server
    that ignores grpc-timeout). Yields (port, what it recorded)."""
    recorded = Recorded()
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        conn = h2.connection.H2Connection(config)
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        try:
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        recorded.requests.append(dict(event.headers or ()))
                        recorded.arrived.set()
                    elif isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(
                            event.flow_controlled_length or 0, event.stream_id or 0
                        )
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError, h2.exceptions.ProtocolError):
            pass
        finally:
            tasks.discard(task)
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], recorded
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@contextlib.asynccontextmanager
async def server_process(impl: str) -> AsyncIterator[tuple[int, asyncio.subprocess.Process]]:
    """``python -m tests.client.server_process <impl>``: yields (port, process); killed after."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.client.server_process",
        impl,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        yield json.loads(line)["port"], process
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), 10)
