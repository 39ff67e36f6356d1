"""A scripted, lying HTTP/2 server in a thread of its own, for client hostile-peer tests.

Each accepted connection runs ``script.on_connect(conn)`` (send what the liar sends first:
SETTINGS, GOAWAY, nothing...) and then ``script.on_event(conn, event)`` for every h2 event it
reads. It counts accepted connections, so a test can bound how many a client opened. Running on
its own loop in a thread lets the same server face grpcio's client (which blocks), our blocking
API and our aio API alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

Headers = list[tuple[bytes, bytes]]


class LyingConnection:
    """One accepted connection: an h2 server state machine writing wherever the script says."""

    def __init__(self, writer: asyncio.StreamWriter, *, validate: bool = False) -> None:
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_outbound_headers=validate,
            normalize_outbound_headers=validate,
            validate_inbound_headers=validate,
        )
        self.h2 = h2.connection.H2Connection(config)
        self.writer = writer
        self.requests: dict[int, Headers] = {}
        self.resets: dict[int, int] = {}  # stream id -> RST_STREAM error code received
        self.ended: set[int] = set()  # streams the client half-closed
        self.pings = 0
        self.closed = False
        self.error: h2.exceptions.ProtocolError | None = None

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.closed:
            self.writer.write(data)

    def raw(self, data: bytes) -> None:
        """Write bytes as they are (hand-made frames)."""
        self.flush()
        if not self.closed:
            self.writer.write(data)

    def close(self) -> None:
        self.flush()
        self.closed = True
        self.writer.close()

    def settings(self, **values: int) -> None:
        """The server preface, with ``values`` (h2 SettingCodes names)."""
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes[k]: v for k, v in values.items()},
        )
        self.h2.initiate_connection()
        self.flush()

    def respond(
        self, stream_id: int, headers: Headers, body: bytes = b"", trailers: Headers | None = None
    ) -> None:
        """Headers (``end_stream`` when nothing follows), optional body and trailers."""
        only = not body and trailers is None
        self.h2.send_headers(stream_id, headers, end_stream=only)
        if body:
            self.h2.send_data(stream_id, body, end_stream=trailers is None)
        if trailers is not None:
            self.h2.send_headers(stream_id, trailers, end_stream=True)
        self.flush()


OK_HEADERS: Headers = [(b":status", b"200"), (b"content-type", b"application/grpc")]


def grpc_frame(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def serve_echo(conn: LyingConnection, event: h2.events.Event) -> None:
    """An honest unary echo for bodies of one message: answer once the request is complete."""
    if isinstance(event, h2.events.StreamEnded):
        conn.respond(event.stream_id, OK_HEADERS, grpc_frame(b""), [(b"grpc-status", b"0")])


@dataclass
class Script:
    on_connect: Callable[[LyingConnection], None] = lambda conn: conn.settings()
    on_event: Callable[[LyingConnection, h2.events.Event], None] = serve_echo
    validate: bool = False


@dataclass
class LyingServer:
    port: int
    connections: list[LyingConnection] = field(default_factory=list)
    accepted: int = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


async def _serve(
    server: LyingServer,
    script: Script,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    server.accepted += 1
    conn = LyingConnection(writer, validate=script.validate)
    server.connections.append(conn)
    try:
        script.on_connect(conn)
        while not conn.closed and (data := await reader.read(65536)):
            try:
                events = conn.h2.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                conn.error = exc  # what the client did wrong, for the test to see
                conn.flush()
                break
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    conn.requests[event.stream_id] = list(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    conn.h2.acknowledge_received_data(
                        event.flow_controlled_length,
                        event.stream_id,
                    )
                elif isinstance(event, h2.events.StreamEnded):
                    conn.ended.add(event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    conn.resets[event.stream_id] = int(event.error_code)
                elif isinstance(event, h2.events.PingReceived):
                    conn.pings += 1
                script.on_event(conn, event)
                if conn.closed:
                    break
            conn.flush()
            with contextlib.suppress(ConnectionError):
                await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        conn.closed = True
        writer.close()


async def eventually_async(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``check`` until it holds: the server thread may not have read the client's last
    frames yet. Check before closing the client: closing a socket with unread input resets
    it, and the server then loses what it had not read."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


@contextlib.contextmanager
def lying_server(script: Script) -> Iterator[LyingServer]:
    """Run ``script`` on 127.0.0.1 port 0 in a thread; stop it (and its connections) on exit."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def start() -> None:
        state = LyingServer(0)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await _serve(state, script, reader, writer)
            finally:
                tasks.discard(task)

        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        state.port = server.sockets[0].getsockname()[1]
        holder["server"], holder["state"] = server, state
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder["start"] = loop.create_task(start())
        loop.run_forever()

    thread = threading.Thread(target=run, name="lying-server", daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield holder["state"]
    finally:

        async def stop() -> None:
            holder["server"].close()
            # Abort the sockets rather than cancel the handlers: asyncio's stream server
            # logs a cancelled handler task as an error.
            for conn in holder["state"].connections:
                conn.closed = True
                conn.writer.transport.abort()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
