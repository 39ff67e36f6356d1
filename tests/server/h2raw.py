"""A bare HTTP/2 client for wire-level tests: hand-built requests, every frame observed."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events

from asgi_grpc._core import MessageReader


@dataclass
class Response:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    data: bytes = b""
    trailers: list[tuple[bytes, bytes]] | None = None
    reset: int | None = None
    # True when the status came in the one HEADERS frame that ended the stream.
    trailers_only: bool = False

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers + (self.trailers or []):
            if key == name:
                return value
        return None

    @property
    def status(self) -> int:
        return int(self.header(b":status") or 0)

    @property
    def grpc_status(self) -> int | None:
        value = self.header(b"grpc-status")
        return None if value is None else int(value)

    def messages(self) -> list[tuple[bool, bytes]]:
        return MessageReader(None).feed(self.data)


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=True,
                header_encoding=None,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        self.conn.initiate_connection()
        self.responses: dict[int, Response] = {}
        self.ended: dict[int, asyncio.Event] = {}
        self.goaway: h2.events.ConnectionTerminated | None = None
        self._task = asyncio.ensure_future(self._read())
        self.flush()

    @classmethod
    async def connect(cls, host: str, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)

    def start(
        self,
        path: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        method: bytes = b"POST",
        content_type: bytes = b"application/grpc",
        end_stream: bool = False,
    ) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        base = [
            (b":method", method),
            (b":scheme", b"http"),
            (b":path", path.encode()),
            (b":authority", b"localhost"),
            (b"content-type", content_type),
            (b"te", b"trailers"),
        ]
        names = {name for name, _ in headers or []}
        # A header given with the value None is left out altogether.
        merged = [(k, v) for k, v in base if k not in names]
        merged += [(k, v) for k, v in headers or [] if v is not None]
        self.conn.send_headers(stream_id, merged, end_stream=end_stream)
        self.responses[stream_id] = Response()
        self.ended[stream_id] = asyncio.Event()
        self.flush()
        return stream_id

    def send(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        self.conn.send_data(stream_id, data, end_stream=end_stream)
        self.flush()

    def reset(self, stream_id: int) -> None:
        self.conn.reset_stream(stream_id, 8)
        self.flush()

    async def response(self, stream_id: int, timeout: float = 5.0) -> Response:
        await asyncio.wait_for(self.ended[stream_id].wait(), timeout)
        return self.responses[stream_id]

    async def call(
        self,
        path: str,
        body: bytes,
        headers: list[tuple[bytes, bytes]] | None = None,
        **kwargs: object,
    ) -> Response:
        stream_id = self.start(path, headers, **kwargs)  # type: ignore[arg-type]
        self.send(stream_id, body, end_stream=True)
        return await self.response(stream_id)

    async def _read(self) -> None:
        while True:
            data = await self.reader.read(65536)
            if not data:
                for event in self.ended.values():
                    event.set()
                return
            for event in self.conn.receive_data(data):
                self._handle(event)
            self.flush()

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            response = self.responses[event.stream_id]
            response.headers = list(event.headers)
            if event.stream_ended is not None:
                response.trailers_only = True
        elif isinstance(event, h2.events.DataReceived):
            self.responses[event.stream_id].data += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):
            self.responses[event.stream_id].trailers = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            self.ended[event.stream_id].set()
        elif isinstance(event, h2.events.StreamReset):
            self.responses[event.stream_id].reset = event.error_code
            self.ended[event.stream_id].set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event

    async def close(self) -> None:
        self._task.cancel()
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
