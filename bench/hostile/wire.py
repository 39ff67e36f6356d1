"""Raw HTTP/2 over asyncio streams, for both directions of the suite.

:class:`FrameConn` writes frames built by hand (hyperframe + hpack, no h2 state machine, so any
lie can be told) and reads the peer's frames in a background task, recording what matters for a
verdict: GOAWAY, RST_STREAM, response headers and trailers, DATA byte counts, the peer's
SETTINGS and flow-control windows, and whether the connection closed. Everything it buffers is
bounded (DATA is counted, not kept, beyond a small prefix).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import hpack
from h2.errors import ErrorCodes
from hyperframe.exceptions import HyperframeError
from hyperframe.frame import (
    ContinuationFrame,
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
DEFAULT_WINDOW = 65535
DEFAULT_FRAME = 16384
#: DATA kept per stream (enough to read a few gRPC messages); the rest is only counted.
KEEP_DATA = 1 << 16

Headers = list[tuple[bytes, bytes]]


def error_name(code: int) -> str:
    try:
        return ErrorCodes(code).name
    except ValueError:
        return f"0x{code:x}"


def message(payload: bytes, compressed: bool = False, length: int | None = None) -> bytes:
    """One gRPC message; ``length`` lies about the payload's size when given."""
    return struct.pack(">BI", compressed, len(payload) if length is None else length) + payload


def request_headers(path: str, extra: Iterable[tuple[bytes, bytes]] = ()) -> Headers:
    return [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", path.encode()),
        (b":authority", b"127.0.0.1"),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        *extra,
    ]


def raw_frame(
    kind: int, flags: int, stream_id: int, body: bytes, length: int | None = None
) -> bytes:
    """A frame header and body as bytes, with any type, flags and (lying) length."""
    size = len(body) if length is None else length
    return struct.pack(">I", size)[1:] + bytes([kind, flags]) + struct.pack(">I", stream_id) + body


def set_rst_on_close(writer: asyncio.StreamWriter) -> None:
    """Make the next close an abortive one (TCP RST instead of FIN)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@dataclass
class Stream:
    headers: list[Headers] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)
    data_bytes: int = 0
    reset: int | None = None
    ended: bool = False

    def header(self, name: bytes) -> bytes | None:
        for block in self.headers:
            for key, value in block:
                if key == name:
                    return value
        return None


class FrameConn:
    """One HTTP/2 connection spoken frame by frame (client or server role)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        ack_settings: bool = True,
        ack_pings: bool = True,
        window_updates: bool = True,
        max_header_list: int = 1 << 20,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.ack_settings = ack_settings
        self.ack_pings = ack_pings
        self.window_updates = window_updates
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder(max_header_list_size=max_header_list)
        self.decoder.max_allowed_table_size = 1 << 16
        self.peer_settings: dict[int, int] = {}
        self.settings_seen = asyncio.Event()
        self.goaway: tuple[int, int, bytes] | None = None
        self.goaway_at: float | None = None  # time.monotonic() when the first GOAWAY came
        self.streams: dict[int, Stream] = {}
        self.frames_in: Counter[str] = Counter()
        self.closed = asyncio.Event()
        self.bad_frame: str | None = None
        self.send_window = DEFAULT_WINDOW
        self.stream_windows: dict[int, int] = {}
        self.window_changed = asyncio.Event()
        self.bytes_sent = 0
        self.send_blocked = False
        self._block: list[bytes] = []
        self._block_stream = 0
        self._block_end = False
        self._task = asyncio.ensure_future(self._read())

    # ----------------------------------------------------------------- connecting

    @classmethod
    async def connect(
        cls, port: int, *, preface: bool = True, settings: dict[int, int] | None = None, **kw: bool
    ) -> FrameConn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn = cls(reader, writer, **kw)
        if preface:
            conn.write(PREFACE)
            conn.send(SettingsFrame(0, settings=settings or {}))
        return conn

    # ----------------------------------------------------------------- sending

    @property
    def is_closed(self) -> bool:
        return self.closed.is_set() or self.writer.is_closing()

    def write(self, data: bytes) -> bool:
        if self.is_closed:
            return False
        try:
            self.writer.write(data)
        except (ConnectionError, OSError, RuntimeError):
            self.closed.set()
            return False
        self.bytes_sent += len(data)
        return True

    def send(self, *frames: Frame) -> bool:
        return self.write(b"".join(frame.serialize() for frame in frames))

    async def drain(self, timeout: float) -> bool:
        """Wait until the kernel took our bytes; False if the peer stopped reading or left."""
        if self.is_closed:
            return False
        try:
            await asyncio.wait_for(self.writer.drain(), timeout)
        except asyncio.TimeoutError:
            self.send_blocked = True
            return False
        except (ConnectionError, OSError, RuntimeError):
            self.closed.set()
            return False
        return True

    async def flood(self, chunk: bytes, budget: int, seconds: float) -> int:
        """Send ``chunk`` repeatedly up to ``budget`` bytes or ``seconds``; bytes sent."""
        deadline = time.monotonic() + seconds
        sent = 0
        batch = chunk * max(1, 65536 // len(chunk))
        while sent < budget and not self.is_closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            piece = batch[: budget - sent]
            if not self.write(piece) or not await self.drain(remaining):
                break
            sent += len(piece)
        return sent

    def header_frames(
        self,
        stream_id: int,
        headers: Headers,
        *,
        end_stream: bool = False,
        max_frame: int | None = None,
    ) -> list[Frame]:
        # No Huffman coding: pure-Python Huffman of a 64 KiB value takes most of a second.
        block = self.encoder.encode(headers, huffman=False)
        size = max_frame or self.peer_settings.get(SettingsFrame.MAX_FRAME_SIZE, DEFAULT_FRAME)
        pieces = [block[i : i + size] for i in range(0, len(block), size)] or [b""]
        first = HeadersFrame(stream_id, pieces[0])
        if end_stream:
            first.flags.add("END_STREAM")
        frames: list[Frame] = [first]
        frames += [ContinuationFrame(stream_id, piece) for piece in pieces[1:]]
        frames[-1].flags.add("END_HEADERS")
        self.streams.setdefault(stream_id, Stream())
        return frames

    def send_headers(self, stream_id: int, headers: Headers, *, end_stream: bool = False) -> bool:
        return self.send(*self.header_frames(stream_id, headers, end_stream=end_stream))

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> bool:
        """DATA frames of at most the peer's frame size, ignoring flow control."""
        size = self.peer_settings.get(SettingsFrame.MAX_FRAME_SIZE, DEFAULT_FRAME)
        frames: list[Frame] = [
            DataFrame(stream_id, data[offset : offset + size])
            for offset in range(0, max(len(data), 1), size)
        ]
        if end_stream:
            frames[-1].flags.add("END_STREAM")
        self.send_window -= len(data)
        self.stream_windows[stream_id] = self.stream_window(stream_id) - len(data)
        return self.send(*frames)

    def stream_window(self, stream_id: int) -> int:
        initial = self.peer_settings.get(SettingsFrame.INITIAL_WINDOW_SIZE, DEFAULT_WINDOW)
        return self.stream_windows.get(stream_id, initial)

    async def send_within_window(
        self, stream_id: int, data: bytes, seconds: float, *, until_peer_ends: bool = True
    ) -> int:
        """Send what the peer's windows allow, waiting for WINDOW_UPDATEs up to ``seconds``.

        Stops early when the peer resets the stream, or (``until_peer_ends``, for requests) when
        it ended its side: a server that answered will not read the rest.
        """
        deadline = time.monotonic() + seconds
        sent = 0
        while sent < len(data) and not self.is_closed:
            allowed = min(self.send_window, self.stream_window(stream_id), len(data) - sent)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if allowed <= 0:
                self.window_changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.window_changed.wait(), remaining)
                continue
            stream = self.streams.get(stream_id)
            if stream is not None and (
                stream.reset is not None or (until_peer_ends and stream.ended)
            ):
                break
            self.send_data(stream_id, data[sent : sent + allowed])
            sent += allowed
            if not await self.drain(remaining):
                break
        return sent

    async def close(self, *, rst: bool = False) -> None:
        if rst:
            set_rst_on_close(self.writer)
            self.writer.transport.abort()
        else:
            self.writer.close()
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)

    # ----------------------------------------------------------------- waiting

    async def wait(self, predicate: Callable[[], bool], seconds: float) -> bool:
        """Poll ``predicate`` (every 10 ms) until true, the connection closes or time is up."""
        deadline = time.monotonic() + seconds
        while not predicate():
            if self.closed.is_set() or time.monotonic() >= deadline:
                return predicate()
            await asyncio.sleep(0.01)
        return True

    async def wait_ended(self, stream_ids: Iterable[int], seconds: float) -> bool:
        ids = list(stream_ids)
        return await self.wait(lambda: all(self.stream(s).ended for s in ids), seconds)

    def stream(self, stream_id: int) -> Stream:
        return self.streams.setdefault(stream_id, Stream())

    # ----------------------------------------------------------------- reading

    async def _read(self) -> None:
        buffer = bytearray()
        try:
            while True:
                chunk = await self.reader.read(65536)
                if not chunk:
                    break
                buffer += chunk
                offset = 0
                while len(buffer) - offset >= 9:
                    frame, length = Frame.parse_frame_header(
                        memoryview(buffer)[offset : offset + 9]
                    )
                    if len(buffer) - offset - 9 < length:
                        break
                    frame.parse_body(memoryview(buffer)[offset + 9 : offset + 9 + length])
                    offset += 9 + length
                    self._handle(frame)
                del buffer[:offset]
        except HyperframeError as exc:
            self.bad_frame = f"{type(exc).__name__}: {exc}"
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            for stream in self.streams.values():
                stream.ended = True

    def _handle(self, frame: Frame) -> None:
        self.frames_in[type(frame).__name__] += 1
        if isinstance(frame, SettingsFrame):
            if "ACK" not in frame.flags:
                old = self.peer_settings.get(SettingsFrame.INITIAL_WINDOW_SIZE, DEFAULT_WINDOW)
                self.peer_settings.update(frame.settings)
                delta = self.peer_settings.get(SettingsFrame.INITIAL_WINDOW_SIZE, old) - old
                for stream_id in self.stream_windows:
                    self.stream_windows[stream_id] += delta
                self.settings_seen.set()
                if self.ack_settings:
                    self.send(SettingsFrame(0, flags=["ACK"]))
                self.window_changed.set()
        elif isinstance(frame, PingFrame):
            if "ACK" not in frame.flags and self.ack_pings:
                self.send(PingFrame(0, frame.opaque_data, flags=["ACK"]))
        elif isinstance(frame, WindowUpdateFrame):
            if frame.stream_id == 0:
                self.send_window += frame.window_increment
            else:
                window = self.stream_window(frame.stream_id)
                self.stream_windows[frame.stream_id] = window + frame.window_increment
            self.window_changed.set()
        elif isinstance(frame, GoAwayFrame):
            self.goaway = (frame.error_code, frame.last_stream_id, bytes(frame.additional_data))
            if self.goaway_at is None:
                self.goaway_at = time.monotonic()
        elif isinstance(frame, RstStreamFrame):
            stream = self.stream(frame.stream_id)
            stream.reset = frame.error_code
            stream.ended = True
        elif isinstance(frame, HeadersFrame | ContinuationFrame):
            if isinstance(frame, HeadersFrame):
                self._block = []
                self._block_stream = frame.stream_id
                self._block_end = "END_STREAM" in frame.flags
            self._block.append(bytes(frame.data))
            if "END_HEADERS" in frame.flags:
                self._headers_done()
        elif isinstance(frame, DataFrame):
            stream = self.stream(frame.stream_id)
            size = len(frame.data)
            stream.data_bytes += size
            if len(stream.data) < KEEP_DATA:
                stream.data += frame.data[: KEEP_DATA - len(stream.data)]
            if self.window_updates and frame.flow_controlled_length:
                increment = frame.flow_controlled_length
                self.send(WindowUpdateFrame(0, window_increment=increment))
                if "END_STREAM" not in frame.flags:
                    self.send(WindowUpdateFrame(frame.stream_id, window_increment=increment))
            if "END_STREAM" in frame.flags:
                stream.ended = True

    def _headers_done(self) -> None:
        stream = self.stream(self._block_stream)
        try:
            decoded = self.decoder.decode(b"".join(self._block), raw=True)
        except hpack.HPACKError as exc:
            self.bad_frame = f"HPACK: {type(exc).__name__}"
            decoded = []
        stream.headers.append([(bytes(k), bytes(v)) for k, v in decoded])
        if self._block_end:
            stream.ended = True
        self._block = []

    # ----------------------------------------------------------------- summary

    def answer(self, stream_ids: Iterable[int] | None = None) -> str:
        """What the peer answered, most telling first: GOAWAY, RST_STREAM, status, closed."""
        parts: list[str] = []
        if self.goaway is not None:
            code, _, debug = self.goaway
            text = f"GOAWAY {error_name(code)}"
            if debug:
                text += f" {debug[:40].decode(errors='replace')!r}"
            parts.append(text)
        ids = list(self.streams) if stream_ids is None else list(stream_ids)
        resets: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        for stream_id in ids:
            stream = self.streams.get(stream_id)
            if stream is None:
                continue
            if stream.reset is not None:
                resets[error_name(stream.reset)] += 1
            http = stream.header(b":status")
            grpc_status = stream.header(b"grpc-status")
            if http is not None and http != b"200":
                statuses[f"HTTP {http.decode(errors='replace')}"] += 1
            elif grpc_status is not None:
                statuses[f"status {status_name(grpc_status)}"] += 1
        parts += [_counted(f"RST {name}", n) for name, n in resets.most_common(3)]
        parts += [_counted(name, n) for name, n in statuses.most_common(3)]
        if self.bad_frame:
            parts.append(f"bad frame ({self.bad_frame[:40]})")
        if self.closed.is_set() and not parts:
            parts.append("closed")
        elif self.closed.is_set():
            parts.append("then closed")
        return "; ".join(parts) or "nothing"


def _counted(text: str, count: int) -> str:
    return text if count == 1 else f"{text} x{count}"


_STATUS_NAMES = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
]


def status_name(value: bytes) -> str:
    if value.isdigit() and int(value) < len(_STATUS_NAMES):
        return _STATUS_NAMES[int(value)]
    return repr(value)
