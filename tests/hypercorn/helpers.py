"""A real Hypercorn on 127.0.0.1:0 in the test's event loop, stock or with our protocol, and raw
gRPC-shaped ASGI apps to run on it (no asgi_grpc server code: these tests are about Hypercorn)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import h2.config
import h2.connection
import h2.settings
import hpack
import hypercorn.protocol
import pytest
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config
from hypercorn.protocol.h2 import H2Protocol
from hyperframe.frame import Frame, HeadersFrame, PingFrame, SettingsFrame

from asgi_grpc.server._hypercorn import GrpcH2Protocol, grpc_config

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# Parametrize a scenario over both protocols. The stock run must fail (strict xfail, and only
# with an AssertionError), which shows that the test catches the bug the fix removes.
VARIANTS = [
    pytest.param(True, id="fixed"),
    pytest.param(
        False,
        id="stock",
        marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason="stock Hypercorn bug"),
    ),
]


@contextlib.contextmanager
def protocol(fixed: bool) -> Any:
    """Swap the HTTP/2 protocol class ProtocolWrapper builds, for the duration."""
    before = hypercorn.protocol.H2Protocol
    hypercorn.protocol.H2Protocol = GrpcH2Protocol if fixed else H2Protocol
    try:
        yield
    finally:
        hypercorn.protocol.H2Protocol = before


class Server:
    def __init__(self, port: int, shutdown: asyncio.Event, task: asyncio.Task[None]) -> None:
        self.port = port
        self.target = f"127.0.0.1:{port}"
        self.shutdown = shutdown
        self.task = task


def stock_config() -> Config:
    config = Config()
    config.graceful_timeout = 3.0
    return config


@contextlib.asynccontextmanager
async def serve(
    app: App, config: Config | None = None, *, fixed: bool = True
) -> AsyncIterator[Server]:
    config = config if config is not None else grpc_config(graceful_timeout=3.0)
    config.bind = ["127.0.0.1:0"]
    config.errorlog = None  # stock runs log the tracebacks we provoke; keep the output clean
    sockets = config.create_sockets()
    port = sockets.insecure_sockets[0].getsockname()[1]
    shutdown = asyncio.Event()
    with protocol(fixed):
        task = asyncio.create_task(
            worker_serve(
                ASGIWrapper(with_lifespan(app)),  # type: ignore[arg-type]
                config,
                sockets=sockets,
                shutdown_trigger=shutdown.wait,
            )
        )
        server = Server(port, shutdown, task)
        # worker_serve listens on the bound socket only after lifespan startup.
        listening = sockets.insecure_sockets[0]
        for _ in range(500):
            if listening.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        try:
            yield server
        finally:
            shutdown.set()
            try:
                await asyncio.wait_for(task, 15)
            except asyncio.InvalidStateError:
                # Stock worker_serve calls .exception() on the gathered connection tasks it has
                # just cancelled when graceful_timeout expires; only stranded stock runs get here.
                if fixed:
                    raise


def with_lifespan(app: App) -> App:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await app(scope, receive, send)

    return wrapped


# -- gRPC on raw ASGI ----------------------------------------------------------------------------


def grpc_frame(payload: bytes) -> bytes:
    return struct.pack(">BI", 0, len(payload)) + payload


def grpc_messages(body: bytes) -> list[bytes]:
    messages, offset = [], 0
    while offset < len(body):
        (length,) = struct.unpack_from(">I", body, offset + 1)
        messages.append(body[offset + 5 : offset + 5 + length])
        offset += 5 + length
    return messages


async def read_body(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away")
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


async def respond(send: Send, payloads: list[bytes], status: int = 0, message: str = "") -> None:
    """Headers, the messages, then trailers: the way every server can answer."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/grpc")],
            "trailers": True,
        }
    )
    for payload in payloads:
        await send({"type": "http.response.body", "body": grpc_frame(payload), "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    await send({"type": "http.response.trailers", "headers": trailers(status, message)})


def trailers(status: int, message: str = "") -> list[tuple[bytes, bytes]]:
    headers = [(b"grpc-status", str(status).encode())]
    if message:
        headers.append((b"grpc-message", message.encode()))
    return headers


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/test/Unary`` echoes each message; ``/test/Slow`` first sleeps the ms in its request."""
    body = await read_body(receive)
    messages = grpc_messages(body)
    if scope["path"] == "/test/Slow":
        await asyncio.sleep(int(messages[0] or b"0") / 1000)
    await respond(send, messages)


# -- a frame-level HTTP/2 client ------------------------------------------------------------------


class RawH2:
    """Sends with h2's client (its HPACK encoder included) and reads frames with hyperframe, so a
    test sees exactly which frames the server sent (h2 would hide or refuse some of them)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.connection = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.decoder = hpack.Decoder()

    @classmethod
    async def connect(cls, port: int) -> RawH2:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        client.connection.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**30}
        )
        client.connection.initiate_connection()
        # Generous windows, so the server is never blocked by this client.
        client.connection.increment_flow_control_window(2**30)
        client.flush()
        return client

    def flush(self) -> None:
        self.writer.write(self.connection.data_to_send())

    def request(self, path: str, body: bytes = b"", *, end: bool = True) -> int:
        stream_id = self.connection.get_next_available_stream_id()
        self.connection.send_headers(stream_id, grpc_request_headers(path))
        if body or end:
            self.connection.send_data(stream_id, body, end_stream=end)
        self.flush()
        return stream_id

    def raw_request(self, stream_id: int, path: str) -> None:
        """HEADERS(END_STREAM) built by hand: h2 refuses to open streams after a GOAWAY."""
        block = self.connection.encoder.encode(grpc_request_headers(path))
        frame = HeadersFrame(stream_id, data=block, flags=["END_HEADERS", "END_STREAM"])
        self.writer.write(frame.serialize())

    async def frame(self, timeout: float = 5.0) -> Frame:
        header = await asyncio.wait_for(self.reader.readexactly(9), timeout)
        frame, length = Frame.parse_frame_header(memoryview(header))
        frame.parse_body(
            memoryview(await asyncio.wait_for(self.reader.readexactly(length), timeout))
        )
        if isinstance(frame, PingFrame) and "ACK" not in frame.flags:
            self.writer.write(
                PingFrame(0, opaque_data=frame.opaque_data, flags=["ACK"]).serialize()
            )
        if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
            self.writer.write(SettingsFrame(0, flags=["ACK"]).serialize())
        return frame

    def headers(self, frame: HeadersFrame) -> dict[bytes, bytes]:
        return {bytes(k): bytes(v) for k, v in self.decoder.decode(frame.data, raw=True)}

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def grpc_request_headers(path: str) -> list[tuple[bytes, bytes]]:
    return [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", path.encode()),
        (b":authority", b"localhost"),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
    ]
