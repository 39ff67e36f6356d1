"""Peers and helpers for the transport tests: a grpcio echo server, gRPC calls done by hand
with the sans-IO core over a raw :class:`Stream`, and a scripted bare-h2 server for the
HTTP/2 edge cases grpcio cannot be made to produce on demand (a GOAWAY that refuses streams)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events

from asgi_grpc._core import (
    MessageReader,
    Status,
    frame,
    parse_trailers,
    request_headers,
)
from asgi_grpc.client._connection import Stream
from asgi_grpc.client._pool import ConnectionPool
from tests.protoc import load

pb2, pb2_grpc = load("echo.proto")

UNARY = "/asgi_grpc.test.Echo/Unary"
SERVER_STREAM = "/asgi_grpc.test.Echo/ServerStream"
CLIENT_STREAM = "/asgi_grpc.test.Echo/ClientStream"
BIDI = "/asgi_grpc.test.Echo/BidiStream"

MiB = 1024 * 1024
# Room for the 8 MiB messages (plus protobuf overhead) both ways.
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * MiB),
    ("grpc.max_send_message_length", 16 * MiB),
]


@dataclass
class EchoState:
    """What the servicer saw, for tests to assert on."""

    cancelled: int = 0
    cancelled_event: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)


class Echo(pb2_grpc.EchoServicer):  # type: ignore[misc]
    def __init__(self, state: EchoState) -> None:
        self.state = state

    async def Unary(self, request: Any, context: Any) -> Any:
        self.state.started.set()
        if request.delay_ms:
            await asyncio.sleep(request.delay_ms / 1000)
        return pb2.EchoResponse(message=request.message, payload=request.payload)

    async def ServerStream(self, request: Any, context: Any) -> AsyncIterator[Any]:
        self.state.started.set()
        finished = False
        try:
            for index in range(request.count):
                if request.delay_ms:
                    await asyncio.sleep(request.delay_ms / 1000)
                yield pb2.EchoResponse(
                    message=request.message, payload=request.payload, index=index
                )
            finished = True
        finally:
            # Cancelled (CancelledError) or abandoned by grpcio (GeneratorExit) mid-stream.
            if not finished:
                self.state.cancelled += 1
                self.state.cancelled_event.set()

    async def ClientStream(self, request_iterator: Any, context: Any) -> Any:
        count, size = 0, 0
        async for request in request_iterator:
            count += 1
            size += len(request.payload)
        return pb2.EchoResponse(message=f"{count} messages, {size} bytes", index=count)

    async def BidiStream(self, request_iterator: Any, context: Any) -> AsyncIterator[Any]:
        async for request in request_iterator:
            yield pb2.EchoResponse(message=request.message, payload=request.payload)


async def start_echo_server(
    address: str,
    *,
    credentials: Any = None,
    options: Sequence[tuple[str, Any]] = (),
) -> tuple[Any, int, EchoState]:
    """A grpc.aio server with the echo service on ``address`` (port 0 or a unix path)."""
    state = EchoState()
    server = grpc.aio.server(options=[*SERVER_OPTIONS, *options])
    pb2_grpc.add_EchoServicer_to_server(Echo(state), server)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    await server.start()
    return server, port, state


# -- gRPC by hand over a Stream ---------------------------------------------------------------


def headers(metadata: Any = None, timeout: float | None = None) -> list[tuple[bytes, bytes]]:
    return request_headers(
        timeout=timeout, encoding="identity", metadata=metadata, user_agent=b"asgi-grpc-test"
    )


async def read_messages(stream: Stream, max_length: int = 64 * MiB) -> list[bytes]:
    reader = MessageReader(max_length)
    messages: list[bytes] = []
    while chunk := await stream.read():
        messages += [payload for _, payload in reader.feed(chunk)]
    reader.close()
    return messages


async def unary(
    pool: ConnectionPool, request: Any, method: str = UNARY
) -> tuple[Status, list[Any], Stream]:
    """A unary (or server-streaming) call: status, decoded responses, and the closed stream."""
    stream = await pool.request(method, headers(), frame(request.SerializeToString()))
    async with stream:
        response_headers = await stream.headers()
        assert (b":status", b"200") in response_headers
        messages = await read_messages(stream)
        status = parse_trailers(await stream.trailers())
    return status, [pb2.EchoResponse.FromString(m) for m in messages], stream


# -- a scripted bare HTTP/2 server ------------------------------------------------------------

Script = Callable[["ScriptedConnection", h2.events.Event], None]


class ScriptedConnection:
    """One server-side h2 connection; ``script`` reacts to each event (after the defaults)."""

    def __init__(self, writer: asyncio.StreamWriter, script: Script) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config)
        self.writer = writer
        self.script = script
        self.requests: dict[int, list[tuple[bytes, bytes]]] = {}
        self.bodies: dict[int, bytes] = {}
        self.silent = False  # stop writing anything (a peer that vanished without a FIN)
        self.pings = 0

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.silent:
            self.writer.write(data)

    def respond_ok(self, stream_id: int, body: bytes = b"") -> None:
        """A complete gRPC response: headers, the body as is, OK trailers."""
        self.h2.send_headers(
            stream_id, [(b":status", b"200"), (b"content-type", b"application/grpc")]
        )
        if body:
            self.h2.send_data(stream_id, body)
        self.h2.send_headers(stream_id, [(b"grpc-status", b"0")], end_stream=True)


async def _serve_scripted(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, script: Script, log: list[Any]
) -> None:
    conn = ScriptedConnection(writer, script)
    log.append(conn)
    conn.h2.initiate_connection()
    conn.flush()
    try:
        while data := await reader.read(65536):
            for event in conn.h2.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    conn.requests[event.stream_id] = list(event.headers)  # type: ignore[index,arg-type]
                elif isinstance(event, h2.events.DataReceived):
                    conn.bodies[event.stream_id] = (
                        conn.bodies.get(event.stream_id, b"") + event.data
                    )  # type: ignore[index,operator]
                    conn.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)  # type: ignore[arg-type]
                elif isinstance(event, h2.events.PingReceived):
                    conn.pings += 1
                script(conn, event)
            conn.flush()
            await writer.drain()
    except (ConnectionError, h2.exceptions.ProtocolError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def scripted_server(script: Script) -> AsyncIterator[tuple[int, list[ScriptedConnection]]]:
    """A bare h2 server on 127.0.0.1 port 0 running ``script``; yields (port, connections)."""
    connections: list[ScriptedConnection] = []
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await _serve_scripted(reader, writer, script, connections)
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, connections
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
