"""Length-prefixed message framing (PROTOCOL-HTTP2.md, "Length-Prefixed-Message").

Every gRPC message on the wire is ``flag:u8 length:u32be payload``. :class:`MessageReader` is an
incremental parser: feed it body chunks as they arrive, in any chunking, and it returns the whole
messages they complete. The common case (a chunk that holds exactly whole messages) is parsed
without copying through a buffer.
"""

from __future__ import annotations

import struct

from ._errors import ProtocolError
from ._status import StatusCode

HEADER = struct.Struct(">BI")
HEADER_SIZE = HEADER.size
_pack = HEADER.pack
_unpack_from = HEADER.unpack_from

DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH = 4 * 1024 * 1024
DEFAULT_MAX_SEND_MESSAGE_LENGTH = 2**31 - 1


def frame(payload: bytes, compressed: bool = False) -> bytes:
    """One message with its 5-byte prefix."""
    return _pack(compressed, len(payload)) + payload


def too_large(kind: str, length: int, limit: int) -> ProtocolError:
    return ProtocolError(
        StatusCode.RESOURCE_EXHAUSTED,
        f"{kind} message larger than max ({length} vs. {limit})",
    )


class MessageReader:
    """Turns body chunks into ``(compressed, payload)`` messages.

    ``max_length`` bounds the length prefix (RESOURCE_EXHAUSTED beyond it), checked before any
    of the payload is buffered, so a peer cannot make us hold more than one maximal message.

    Messages that a chunk completes ahead of a bad prefix are returned first and the error is
    raised by the next :meth:`feed` or :meth:`close`, so a stream delivers exactly the messages
    before the fault whatever the chunking (as grpcio, which parses one message at a time).
    """

    __slots__ = ("_buffer", "_error", "_need", "max_length")

    def __init__(self, max_length: int | None = DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH) -> None:
        self.max_length = max_length
        self._buffer = bytearray()
        # Bytes the buffer must hold before parsing can make progress: a prefix, or once the
        # prefix is in, the whole message. Below that a chunk is only appended, so a message
        # arriving in many small chunks costs linear time, not a copy of the buffer per chunk.
        self._need = HEADER_SIZE
        self._error: ProtocolError | None = None

    @property
    def pending(self) -> int:
        """Bytes held of a message not yet complete (0 at a message boundary)."""
        return len(self._buffer)

    @property
    def needed(self) -> int:
        """Bytes that must be fed before :meth:`feed` can complete a message: the rest of the
        message under way (or of its prefix). Lets a caller feed a large chunk in pieces without
        cutting a message it could have parsed whole."""
        return self._need - len(self._buffer)

    def feed(self, data: bytes) -> list[tuple[bool, bytes]]:
        """Add a chunk; return the messages it completes (maybe none)."""
        if self._error is not None:
            raise self._error
        if self._buffer:
            self._buffer += data
            if len(self._buffer) < self._need:
                return []
            data = bytes(self._buffer)
            self._buffer.clear()
        elif type(data) is not bytes:
            data = bytes(data)  # a bytearray or memoryview: payloads must be immutable bytes
        # Any u32 length passes when there is no limit.
        max_length = 0xFFFFFFFF if self.max_length is None else self.max_length
        messages: list[tuple[bool, bytes]] = []
        offset, end = 0, len(data)
        need = HEADER_SIZE
        while end - offset >= HEADER_SIZE:
            flag, length = _unpack_from(data, offset)
            if flag > 1 or length > max_length:
                error = self._bad_prefix(flag, length)
                if not messages:
                    raise error
                self._error = error
                return messages
            start = offset + HEADER_SIZE
            stop = start + length
            if stop > end:
                need = HEADER_SIZE + length
                break
            if start == HEADER_SIZE and stop == end:
                payload = data[HEADER_SIZE:] if length else b""
            else:
                payload = data[start:stop]
            messages.append((flag == 1, payload))
            offset = stop
        self._need = need
        if offset < end:
            self._buffer += data[offset:] if offset else data
        return messages

    def _bad_prefix(self, flag: int, length: int) -> ProtocolError:
        if flag > 1:
            return ProtocolError(StatusCode.INTERNAL, f"invalid message compression flag {flag:#x}")
        assert self.max_length is not None
        return too_large("Received", length, self.max_length)

    def close(self) -> None:
        """The body ended: a partial message left behind is a protocol error."""
        if self._error is not None:
            error, self._error = self._error, None
            self._buffer.clear()
            raise error
        if self._buffer:
            pending = len(self._buffer)
            self._buffer.clear()
            self._need = HEADER_SIZE
            raise ProtocolError(
                StatusCode.INTERNAL,
                f"stream ended in the middle of a message ({pending} bytes left over)",
            )
