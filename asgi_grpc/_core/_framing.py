"""Length-prefixed message framing (PROTOCOL-HTTP2.md, "Length-Prefixed-Message").

Every gRPC message on the wire is ``flag:u8 length:u32be payload``. :class:`MessageReader` is an
incremental parser: feed it body chunks as they arrive, in any chunking, and it returns the whole
messages they complete. The common case (a chunk that holds exactly whole messages) is parsed
without copying through a buffer.
"""

from __future__ import annotations

import struct
from typing import cast

from ._errors import ProtocolError
from ._status import StatusCode

HEADER = struct.Struct(">BI")
HEADER_SIZE = HEADER.size
_pack = HEADER.pack
_unpack_from = HEADER.unpack_from

DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH = 4 * 1024 * 1024
_SMALL_PIECE = 1024  # MessageReader merges pieces below this size
DEFAULT_MAX_SEND_MESSAGE_LENGTH = 2**31 - 1


def frame(payload: bytes, compressed: bool = False) -> bytes:
    """One message with its 5-byte prefix."""
    return _pack(compressed, len(payload)) + payload


def prefix(length: int, compressed: bool = False) -> bytes:
    """The 5-byte prefix of a message of ``length`` bytes."""
    return _pack(compressed, length)


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

    __slots__ = ("_compressed", "_error", "_held", "_need", "_parts", "max_length")

    def __init__(self, max_length: int | None = DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH) -> None:
        self.max_length = max_length
        # The bytes of a message not yet complete, as the chunks (or views of them) that
        # brought them: joined once when the message is complete, so that a large message
        # arriving in many chunks is copied once (into its payload), not once into a buffer
        # and twice out of it.
        self._parts: list[bytes | bytearray | memoryview] = []
        self._held = 0
        # Bytes that must be held before parsing can make progress: a prefix, or once the
        # prefix is in (it is then at the start of the first part), the whole message. Below
        # that a chunk is only appended, so a message arriving in many small chunks costs
        # linear time, not a copy of what is held per chunk.
        self._need = HEADER_SIZE
        self._compressed = False  # the flag of the message under way, once its prefix is in
        self._error: ProtocolError | None = None

    @property
    def pending(self) -> int:
        """Bytes held of a message not yet complete (0 at a message boundary)."""
        return self._held

    @property
    def needed(self) -> int:
        """Bytes that must be fed before :meth:`feed` can complete a message: the rest of the
        message under way (or of its prefix). Lets a caller feed a large chunk in pieces without
        cutting a message it could have parsed whole."""
        return self._need - self._held

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[tuple[bool, bytes]]:
        """Add a chunk; return the messages it completes (maybe none)."""
        if self._error is not None:
            raise self._error
        # Payloads must be immutable bytes: a bytearray (or a view of one) is copied. A view
        # of bytes (the server hands large DATA frames over as the pieces of its reads) is
        # kept as it is when it is at least half of those bytes (a view keeps all of them
        # alive: what is held stays within twice ``pending``), and what is taken from it is
        # copied once (a message's payload, or a held rest).
        data: bytes | memoryview
        alive = 0  # the size of the bytes a view of ``data`` keeps alive (0: ``data``'s own)
        if type(chunk) is bytes:
            data = chunk
        elif type(chunk) is memoryview and type(chunk.obj) is bytes:
            owner: bytes = chunk.obj
            alive = len(owner)
            data = chunk if 2 * len(chunk) >= alive else bytes(chunk)
        else:
            data = bytes(chunk)
        messages: list[tuple[bool, bytes]] = []
        if self._held:
            parts = self._parts
            self._hold(data)
            if self._held < self._need:
                return []
            extra = self._held - self._need
            if self._need > HEADER_SIZE:
                # The message under way is complete: its payload in one join of the parts
                # (the prefix is at the start of the first), what follows it parsed below. The
                # extra bytes are all in the last part: before it, less than a message was held.
                parts[0] = memoryview(parts[0])[HEADER_SIZE:]
                if extra:
                    last = parts[-1]
                    parts[-1] = memoryview(last)[: len(last) - extra]
                messages.append((self._compressed, b"".join(parts)))
                data = data[len(data) - extra :] if extra else b""
            else:
                data = b"".join(parts)  # a prefix completed: a few bytes, or what follows
            parts.clear()
            self._held = 0
            self._need = HEADER_SIZE
            if not data:
                return messages
        # Any u32 length passes when there is no limit.
        max_length = 0xFFFFFFFF if self.max_length is None else self.max_length
        offset, end = 0, len(data)
        need = HEADER_SIZE
        view = type(data) is memoryview  # payloads taken from it are copied into bytes
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
                self._compressed = flag == 1
                break
            if view:
                payload = bytes(data[start:stop])
            elif start == HEADER_SIZE and stop == end:
                payload = cast(bytes, data)[HEADER_SIZE:] if length else b""
            else:
                payload = cast(bytes, data)[start:stop]
            messages.append((flag == 1, payload))
            offset = stop
        self._need = need
        if offset < end:
            # A view keeps its whole chunk alive: hold one only when the rest is most of the
            # chunk, else a copy, so that what is held stays within twice ``pending`` (a peer
            # could otherwise pin each 1 MiB DATA frame with the first bytes of a message).
            rest = end - offset
            if not offset:
                self._hold(data)
            elif 2 * rest >= (alive if view else end):
                self._hold(memoryview(data)[offset:])
            else:
                self._hold(bytes(data[offset:]))  # (a copy, also of a view)
        return messages

    def _hold(self, piece: bytes | memoryview) -> None:
        """Keep ``piece`` for the message under way. Small pieces are merged into a bytearray
        (and copied, so as not to hold a large chunk for a few bytes): a message arriving a
        byte at a time costs about its size in memory, not an object per byte."""
        parts = self._parts
        if len(piece) < _SMALL_PIECE:
            last = parts[-1] if parts else None
            if type(last) is bytearray:
                last += piece
            else:
                parts.append(bytearray(piece))
        else:
            parts.append(piece)
        self._held += len(piece)

    def _bad_prefix(self, flag: int, length: int) -> ProtocolError:
        if flag > 1:
            return ProtocolError(StatusCode.INTERNAL, f"invalid message compression flag {flag:#x}")
        assert self.max_length is not None
        return too_large("Received", length, self.max_length)

    def close(self) -> None:
        """The body ended: a partial message left behind is a protocol error."""
        if self._error is not None:
            error, self._error = self._error, None
            self._parts.clear()
            self._held = 0
            raise error
        if self._held:
            pending = self._held
            self._parts.clear()
            self._held = 0
            self._need = HEADER_SIZE
            raise ProtocolError(
                StatusCode.INTERNAL,
                f"stream ended in the middle of a message ({pending} bytes left over)",
            )
