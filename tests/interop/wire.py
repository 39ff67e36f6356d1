"""A loopback TCP proxy that forwards h2c bytes unchanged and records the gRPC calls it carries.

Why it exists: the interop descriptions define compression by the wire, not by the API. A
server must fail a call with INVALID_ARGUMENT when ``expect_compressed`` is set but the request
message arrived without its compressed flag, and ``server_compressed_*`` clients must assert that
the response messages carry (or do not carry) the flag. Neither grpcio API exposes that flag: a
grpcio server strips ``grpc-encoding`` from ``invocation_metadata()`` and hands over messages
already inflated, and a grpcio client does the same with responses. So the interop harness puts
this tap between client and server, parses both directions with hyperframe + hpack (never h2's
state machine: the tap is passive and must accept whatever either side sends), and answers
"was this message compressed?" from the bytes themselves.

The tap records a frame *before* forwarding it, so by the time a peer has received a message the
tap already knows about it; lookups from a servicer or after an awaited call never race.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import hpack
from hyperframe.exceptions import HyperframeError
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
)

from asgi_grpc._core import MessageReader, ProtocolError, decompress

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
FRAME_HEADER = 9


@dataclass
class WireMessage:
    """One length-prefixed gRPC message as it crossed the wire."""

    compressed: bool
    wire_length: int  # payload bytes on the wire (compressed size when compressed)
    payload: bytes  # the serialized message, inflated when it was compressed


@dataclass
class WireCall:
    """One HTTP/2 stream: a gRPC call seen from the wire."""

    connection: int
    stream_id: int
    request_headers: list[tuple[str, str]]
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    trailers: list[tuple[str, str]] = field(default_factory=list)
    requests: list[WireMessage] = field(default_factory=list)
    responses: list[WireMessage] = field(default_factory=list)
    reset_by_client: int | None = None  # RST_STREAM error code, when the client reset
    reset_by_server: int | None = None
    cut_off: bool = False  # its connection closed while it had neither trailers nor a reset

    @property
    def path(self) -> str:
        return _header(self.request_headers, ":path") or ""

    def request_encoding(self) -> str | None:
        return _header(self.request_headers, "grpc-encoding")

    def response_encoding(self) -> str | None:
        return _header(self.response_headers, "grpc-encoding")


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value
    return None


class _Direction:
    """Parses one direction of one HTTP/2 connection into the tap's records."""

    def __init__(self, tap: WireTap, connection: int, *, from_client: bool) -> None:
        self._tap = tap
        self._connection = connection
        self._from_client = from_client
        self._buffer = bytearray()
        self._preface_pending = from_client
        self._decoder = hpack.Decoder(max_header_list_size=1 << 24)
        # The encoder on the other side may grow its table up to what our side's SETTINGS
        # allowed; the tap does not track SETTINGS, so accept any size the encoder announces.
        self._decoder.max_allowed_table_size = 1 << 30
        self._block: tuple[int, bool, bytearray] | None = None  # stream, end_stream, fragments
        self._readers: dict[int, MessageReader] = {}

    def feed(self, data: bytes) -> None:
        self._buffer += data
        if self._preface_pending:
            if len(self._buffer) < len(PREFACE):
                return
            if bytes(self._buffer[: len(PREFACE)]) != PREFACE:
                raise ValueError("client did not start with the HTTP/2 preface")
            del self._buffer[: len(PREFACE)]
            self._preface_pending = False
        while len(self._buffer) >= FRAME_HEADER:
            frame, length = Frame.parse_frame_header(memoryview(self._buffer)[:FRAME_HEADER])
            if len(self._buffer) < FRAME_HEADER + length:
                return
            frame.parse_body(memoryview(bytes(self._buffer[FRAME_HEADER : FRAME_HEADER + length])))
            del self._buffer[: FRAME_HEADER + length]
            self._frame(frame)

    def _frame(self, frame: Frame) -> None:
        if isinstance(frame, HeadersFrame):
            self._block = (frame.stream_id, "END_STREAM" in frame.flags, bytearray(frame.data))
            if "END_HEADERS" in frame.flags:
                self._headers_done()
        elif isinstance(frame, ContinuationFrame):
            if self._block is None or self._block[0] != frame.stream_id:
                raise ValueError(f"CONTINUATION without HEADERS on stream {frame.stream_id}")
            self._block[2].extend(frame.data)
            if "END_HEADERS" in frame.flags:
                self._headers_done()
        elif isinstance(frame, DataFrame):
            self._data(frame.stream_id, frame.data)
        elif isinstance(frame, GoAwayFrame):
            side = "client" if self._from_client else "server"
            self._tap.goaways.append(
                f"connection {self._connection}: GOAWAY from {side}, error {frame.error_code}, "
                f"last stream {frame.last_stream_id}, debug {frame.additional_data!r}"
            )
        elif isinstance(frame, RstStreamFrame):
            call = self._tap._call(self._connection, frame.stream_id)
            if call is not None:
                if self._from_client:
                    call.reset_by_client = frame.error_code
                else:
                    call.reset_by_server = frame.error_code

    def _headers_done(self) -> None:
        assert self._block is not None
        stream_id, _end_stream, block = self._block
        self._block = None
        headers = [
            (bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
            for k, v in self._decoder.decode(bytes(block), raw=True)
        ]
        call = self._tap._call(self._connection, stream_id)
        if self._from_client:
            if call is None:
                self._tap._open(WireCall(self._connection, stream_id, headers))
            # A second client HEADERS block (request trailers) carries nothing gRPC uses.
        elif call is not None:
            if not call.response_headers and _header(headers, ":status") is not None:
                call.response_headers = headers
                if _header(headers, "grpc-status") is not None:  # trailers-only response
                    call.trailers = headers
            else:
                call.trailers = headers

    def _data(self, stream_id: int, data: bytes) -> None:
        call = self._tap._call(self._connection, stream_id)
        if call is None:
            raise ValueError(f"DATA on stream {stream_id} before its HEADERS")
        reader = self._readers.setdefault(stream_id, MessageReader(max_length=None))
        if self._from_client:
            encoding, messages = call.request_encoding(), call.requests
        else:
            encoding, messages = call.response_encoding(), call.responses
        for compressed, payload in reader.feed(data):
            if compressed:
                if encoding in (None, "identity"):
                    raise ValueError(f"compressed message on stream {stream_id} without encoding")
                inflated = decompress(encoding, payload, None)
            else:
                inflated = payload
            messages.append(WireMessage(compressed, len(payload), inflated))
            if self._from_client:
                self._tap._unclaimed.append(messages[-1])


class WireTap:
    """``await WireTap.start(upstream_port)`` -> a proxy on 127.0.0.1:``tap.port``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.calls: list[WireCall] = []
        self.errors: list[str] = []  # malformed traffic: a test should fail on any
        self.goaways: list[str] = []  # GOAWAY frames seen, for diagnosis
        self._by_stream: dict[tuple[int, int], WireCall] = {}
        self._unclaimed: list[WireMessage] = []  # request messages no servicer asked about yet
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self._connections = 0
        self._live = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @classmethod
    async def start(cls, upstream_port: int, *, listen_port: int = 0) -> WireTap:
        tap = cls(upstream_port)
        tap._server = await asyncio.start_server(tap._accept, "127.0.0.1", listen_port)
        tap.port = tap._server.sockets[0].getsockname()[1]
        return tap

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until every proxied connection has closed (both directions), so that the
        records are final; False if some connection outlived ``timeout``."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    # -- queries ---------------------------------------------------------------------------

    def describe(self, connection: int | None = None) -> str:
        """The recorded calls (of one connection, or all) and GOAWAYs, one line each."""
        lines = [
            f"conn {c.connection} stream {c.stream_id} {c.path}: "
            f"{len(c.requests)} req / {len(c.responses)} resp messages, "
            f"grpc-status {dict(c.trailers).get('grpc-status')}, "
            f"rst by client {c.reset_by_client} / by server {c.reset_by_server}"
            for c in self.calls
            if connection is None or c.connection == connection
        ]
        return "\n".join(lines + self.goaways)

    def calls_to(self, path: str) -> list[WireCall]:
        return [call for call in self.calls if call.path == path]

    def last_call(self, path: str) -> WireCall:
        calls = self.calls_to(path)
        assert calls, f"the wire tap saw no call to {path}"
        return calls[-1]

    def request_compressed(self, serialized: bytes) -> bool | None:
        """Whether the oldest not-yet-claimed request message with these (inflated) bytes
        arrived compressed; ``None`` if the tap never saw it. Claims that message, so two
        identical requests sent one after the other (a probe, then the real call) are told
        apart in order. Requests are found by their bytes alone (no server API tells a handler
        its HTTP/2 stream), so byte-identical requests in flight at once with different
        compression can be confused: concurrent cases must not send such twins."""
        for index, message in enumerate(self._unclaimed):
            if message.payload == serialized:
                del self._unclaimed[index]
                return message.compressed
        return None

    # -- plumbing --------------------------------------------------------------------------

    def _call(self, connection: int, stream_id: int) -> WireCall | None:
        return self._by_stream.get((connection, stream_id))

    def _open(self, call: WireCall) -> None:
        self._by_stream[(call.connection, call.stream_id)] = call
        self.calls.append(call)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        connection = self._connections
        self._writers.append(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError as exc:
            self.errors.append(f"connection {connection}: upstream connect failed: {exc}")
            writer.close()
            return
        self._writers.append(up_writer)
        pumps = [
            self._spawn(
                self._pump(reader, up_writer, _Direction(self, connection, from_client=True))
            ),
            self._spawn(
                self._pump(up_reader, writer, _Direction(self, connection, from_client=False))
            ),
        ]
        await asyncio.wait(pumps)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, parser: _Direction
    ) -> None:
        broken = False
        try:
            while data := await source.read(65536):
                if not broken:
                    try:
                        parser.feed(data)
                    except (ValueError, ProtocolError, HyperframeError, hpack.HPACKError) as exc:
                        # Keep forwarding: the peers decide what is fatal; the test fails on
                        # `errors` afterwards.
                        self.errors.append(f"{type(exc).__name__}: {exc}")
                        broken = True
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                if sink.can_write_eof():
                    sink.write_eof()


def conformance_problems(calls: list[WireCall]) -> list[str]:
    """What the recorded calls break of PROTOCOL-HTTP2.md, one line per problem.

    Only checks both peers must honour whatever the call did: request and response header
    shapes, a status in the trailers of every call that ended without RST_STREAM (or without
    its connection closing under it), and ``grpc-message`` percent-encoded to printable ASCII.
    Call it once the connections are closed (:meth:`WireTap.wait_idle`).
    """
    problems: list[str] = []
    for call in calls:
        where = f"{call.path} (connection {call.connection}, stream {call.stream_id})"
        request = dict(call.request_headers)
        if request.get(":method") != "POST":
            problems.append(f"{where}: request :method {request.get(':method')!r}")
        if not request.get("content-type", "").startswith("application/grpc"):
            problems.append(f"{where}: request content-type {request.get('content-type')!r}")
        if request.get("te") != "trailers":
            problems.append(f"{where}: request te {request.get('te')!r}, not 'trailers'")
        reset = call.reset_by_client is not None or call.reset_by_server is not None
        if call.response_headers:
            response = dict(call.response_headers)
            if response.get(":status") != "200":
                problems.append(f"{where}: response :status {response.get(':status')!r}")
            if not response.get("content-type", "").startswith("application/grpc"):
                problems.append(f"{where}: response content-type {response.get('content-type')!r}")
        elif not reset and not call.cut_off:
            problems.append(f"{where}: ended without response headers or RST_STREAM")
        trailers = dict(call.trailers)
        if (not reset and not call.cut_off) or call.trailers:
            status = trailers.get("grpc-status")
            if status is None or not status.isdigit() or not 0 <= int(status) <= 16:
                problems.append(f"{where}: trailers carry grpc-status {status!r}")
        message = trailers.get("grpc-message", "")
        if any(not 0x20 <= ord(char) <= 0x7E for char in message):
            problems.append(f"{where}: grpc-message not percent-encoded: {message!r}")
    return problems
