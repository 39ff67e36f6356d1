"""Support for tests/hostile/test_server_h2*.py: a server in its own process (asgi_grpc, or
grpcio's as the control) and a hostile HTTP/2 peer that writes raw frames.

The server runs in a child process so that psutil measures its memory alone. Run as
``python -m tests.hostile._server_h2 asgi_grpc|grpcio [OPTIONS_JSON]``: it prints the port, serves
until its stdin closes. Methods (request and response are raw bytes):

- ``/h.H/Unary``: echoes the request;
- ``/h.H/Hold``: client streaming; never reads its requests, waits until cancelled;
- ``/h.H/Drain``: client streaming; reads every request, answers their count;
- ``/h.H/EarlyEnd``: bidi; answers OK at once without reading (its request stays open).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import hpack
import psutil
from hyperframe.frame import (
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]

# RFC 9113 error codes.
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x3
REFUSED_STREAM, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 0x7, 0x9, 0xB


# -- the server process ---------------------------------------------------------------------------


def _handlers(module: Any) -> Any:
    async def unary(request: bytes, context: Any) -> bytes:
        return request

    async def hold(request_iterator: Any, context: Any) -> bytes:
        await asyncio.Event().wait()
        return b""

    async def drain(request_iterator: Any, context: Any) -> bytes:
        count = 0
        async for _ in request_iterator:
            count += 1
        return str(count).encode()

    async def early_end(request_iterator: Any, context: Any) -> Any:
        yield b"done"

    return module.method_handlers_generic_handler(
        "h.H",
        {
            "Unary": module.unary_unary_rpc_method_handler(unary),
            "Hold": module.stream_unary_rpc_method_handler(hold),
            "Drain": module.stream_unary_rpc_method_handler(drain),
            "EarlyEnd": module.stream_stream_rpc_method_handler(early_end),
        },
    )


async def _serve(impl: str, options: list[tuple[str, Any]]) -> None:
    if impl == "grpcio":
        module: Any = grpc
    else:
        import asgi_grpc

        module = asgi_grpc
    server = module.aio.server(options=options)
    server.add_generic_rpc_handlers((_handlers(module),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the test closes our stdin
    await server.stop(0)


@dataclass
class ServerProcess:
    impl: str
    port: int
    process: subprocess.Popen[str]

    @property
    def rss(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def witness(self, timeout: float = 10.0) -> bytes:
        """A unary call on a fresh grpcio channel: the server still serves others."""
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            call = channel.unary_unary("/h.H/Unary")
            result: bytes = call(b"witness", timeout=timeout)
            return result


@contextlib.contextmanager
def server_process(
    impl: str, options: list[tuple[str, Any]] | None = None
) -> Iterator[ServerProcess]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.hostile._server_h2", impl, json.dumps(options or [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {impl} server process did not start")
        yield ServerProcess(impl, int(line), process)
    finally:
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the hostile peer -----------------------------------------------------------------------------


def request_headers(path: str = "/h.H/Unary") -> list[tuple[bytes, bytes]]:
    return [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", path.encode()),
        (b":authority", b"localhost"),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
    ]


def grpc_message(payload: bytes) -> bytes:
    return struct.pack(">BI", 0, len(payload)) + payload


class Peer:
    """A client that writes whatever frames a test wants and records every frame the server sends
    (a background task reads them, so the server is never blocked by us unless ``reading`` is
    cleared). SETTINGS are acknowledged unless ``ack_settings`` is False; PINGs are not answered.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, read: bool = True
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.frames: list[Frame] = []
        self.eof = False
        self.ack_settings = True
        self.next_stream_id = 1
        self._arrived = asyncio.Event()
        self._task: asyncio.Future[None] | None = None
        if read:
            self.start_reading()

    def start_reading(self) -> None:
        """Start the background reader (for a test that first reads raw bytes itself)."""
        self._task = asyncio.ensure_future(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, port: int, *, preface: bool = True, read: bool = True
    ) -> AsyncIterator[Peer]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=4 * MiB)
        peer = cls(reader, writer, read=read)
        if preface:
            writer.write(PREFACE + SettingsFrame(0).serialize())
        try:
            yield peer
        finally:
            if peer._task is not None:
                peer._task.cancel()
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _read(self) -> None:
        try:
            while True:
                header = await self.reader.readexactly(9)
                frame, length = Frame.parse_frame_header(memoryview(header))
                frame.parse_body(memoryview(await self.reader.readexactly(length)))
                if isinstance(frame, HeadersFrame):
                    # Decoded on arrival: the HPACK context depends on the order.
                    frame.decoded = {  # type: ignore[attr-defined]
                        bytes(k): bytes(v) for k, v in self.decoder.decode(frame.data, raw=True)
                    }
                ack = isinstance(frame, SettingsFrame) and "ACK" not in frame.flags
                if ack and self.ack_settings:
                    self.writer.write(SettingsFrame(0, flags=["ACK"]).serialize())
                self.frames.append(frame)
                self._arrived.set()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self.eof = True
            self._arrived.set()

    def write(self, *frames: Frame | bytes) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(
            b"".join(f if isinstance(f, (bytes, bytearray)) else f.serialize() for f in frames)
        )

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until the server has taken what we wrote; False if it closed or stopped reading."""
        try:
            await asyncio.wait_for(self.writer.drain(), timeout)
        except (ConnectionError, OSError, asyncio.TimeoutError):
            return False
        return True

    def headers(
        self,
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        stream_id: int | None = None,
        end_stream: bool = False,
    ) -> int:
        if stream_id is None:
            stream_id = self.next_stream_id
            self.next_stream_id += 2
        flags = ["END_HEADERS"] + (["END_STREAM"] if end_stream else [])
        block = self.encoder.encode(headers if headers is not None else request_headers())
        self.write(HeadersFrame(stream_id, data=block, flags=flags))
        return stream_id

    def request(self, path: str = "/h.H/Unary", body: bytes = b"hi") -> int:
        """A whole gRPC request: HEADERS, then one message with END_STREAM."""
        stream_id = self.headers(request_headers(path))
        self.write(DataFrame(stream_id, data=grpc_message(body), flags=["END_STREAM"]))
        return stream_id

    async def wait(self, predicate: Any, timeout: float = 5.0) -> Frame | None:
        """The first frame (seen so far or to come) for which ``predicate`` is true; None at EOF.
        A TimeoutError if none comes in time."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for frame in self.frames[seen:]:
                if predicate(frame):
                    return frame
            seen = len(self.frames)
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no such frame from the server")
            self._arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def closed(self, timeout: float = 5.0) -> GoAwayFrame | None:
        """Wait until the server closes the connection; its last GOAWAY, if any. A TimeoutError
        if it keeps the connection open."""
        await self.wait(lambda frame: False, timeout)
        return self.goaway

    @property
    def goaway(self) -> GoAwayFrame | None:
        found = [f for f in self.frames if isinstance(f, GoAwayFrame)]
        return found[-1] if found else None

    async def response(self, stream_id: int, timeout: float = 5.0) -> dict[bytes, bytes] | int:
        """The stream's headers and trailers merged, once it ends; or its RST_STREAM code."""
        headers: dict[bytes, bytes] = {}

        def ended(frame: Frame) -> bool:
            if frame.stream_id != stream_id:
                return False
            if isinstance(frame, HeadersFrame):
                headers.update(self.decode(frame))
            return "END_STREAM" in frame.flags or isinstance(frame, RstStreamFrame)

        frame = await self.wait(ended, timeout)
        if frame is None:
            raise ConnectionError("the server closed the connection")
        if isinstance(frame, RstStreamFrame):
            return int(frame.error_code)
        return headers

    def decode(self, frame: HeadersFrame) -> dict[bytes, bytes]:
        decoded: dict[bytes, bytes] = frame.decoded  # type: ignore[attr-defined]
        return decoded


def resets(frames: list[Frame]) -> dict[int, int]:
    """stream id -> RST_STREAM error code, of the frames seen."""
    return {f.stream_id: f.error_code for f in frames if isinstance(f, RstStreamFrame)}


__all__ = [
    "COMPRESSION_ERROR",
    "ENHANCE_YOUR_CALM",
    "FLOW_CONTROL_ERROR",
    "NO_ERROR",
    "PREFACE",
    "PROTOCOL_ERROR",
    "REFUSED_STREAM",
    "DataFrame",
    "MiB",
    "Peer",
    "PingFrame",
    "ServerProcess",
    "WindowUpdateFrame",
    "grpc_message",
    "request_headers",
    "resets",
    "server_process",
]


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], [tuple(o) for o in json.loads(sys.argv[2])]))
