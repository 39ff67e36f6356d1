"""An HPACK decoder and encoder that remember the blocks they made while their table stood still.

Used by the server (``server/_hypercorn_h2.py``) and the client (``client/_h2.py``) alike.

A gRPC client sends the same request headers call after call (method, path, authority, content
type, ``te``, user agent...), and after the first call an HPACK encoder sends them as the same few
bytes of indexes into its dynamic table. Decoding is a pure function of the block's bytes, the
dynamic table and the decoder's limits, so while none of those changed, the same bytes decode to
the same header list: :class:`CachingDecoder` keeps the lists of recent blocks and answers a block
it has seen from there (h2 then builds its events from the list as usual).

Correctness rests on knowing when the table changed: :class:`VersionedTable` counts every change
(an entry added, the size changed, entries evicted), the cache is emptied whenever the count or a
limit differs from when it was filled, and a block is remembered only if decoding it changed
nothing (a block that adds entries is decoded each time; it is the next, unchanged one that
repeats). Blocks that fail to decode are never remembered. The cache is small and per connection
(:data:`MAX_BLOCKS` blocks of at most :data:`MAX_BLOCK` bytes), and emptied when full, so a client
sending ever-new blocks costs one dict insertion each and nothing more.

:class:`CachingEncoder` is the same for the sending side: the server's headers and trailers
(``:status``, ``content-type``, ``grpc-status: 0``...) and a client's request headers repeat call
after call, and once they are in the encoder's table they encode to the same indexes. A header list
is remembered only if encoding it changed nothing (no entry added, no pending table size update)
and it is made of plain ``(bytes, bytes)`` pairs (never-indexed ``HeaderTuple``s or 3-tuples carry
a flag that a tuple's equality does not see, so those are encoded each time).
"""

from __future__ import annotations

from typing import Any

from hpack import Decoder, Encoder
from hpack.table import HeaderTable

__all__ = ["MAX_BLOCK", "MAX_BLOCKS", "CachingDecoder", "CachingEncoder", "VersionedTable"]

MAX_BLOCKS = 32
MAX_BLOCK = 1024


class VersionedTable(HeaderTable):
    """hpack's dynamic table, counting its changes in :attr:`version`."""

    version = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.version += 1
        super().add(name, value)

    def _set_maxsize(self, newmax: int) -> None:
        self.version += 1
        _stock_maxsize.fset(self, newmax)

    maxsize = property(lambda self: _stock_maxsize.fget(self), _set_maxsize)


_stock_maxsize: Any = HeaderTable.__dict__["maxsize"]


class CachingDecoder(Decoder):
    """hpack's Decoder, answering recently seen blocks from a cache (see the module docstring)."""

    def __init__(self, max_header_list_size: int) -> None:
        super().__init__(max_header_list_size)
        self.header_table = VersionedTable()
        self._blocks: dict[bytes, tuple[Any, ...]] = {}
        self._state: tuple[int, int, int] | None = None

    def decode(self, data: bytes, raw: bool = False) -> Any:
        if not raw or len(data) > MAX_BLOCK:
            return super().decode(data, raw)
        table: Any = self.header_table
        version = table.version
        state = (version, self.max_header_list_size, self.max_allowed_table_size)
        blocks = self._blocks
        if state != self._state:
            blocks.clear()
            self._state = state
        else:
            headers = blocks.get(data)
            if headers is not None:
                return list(headers)
        decoded = super().decode(data, raw)
        if table.version == version:  # nothing changed: the same bytes decode the same way
            if len(blocks) >= MAX_BLOCKS:
                blocks.clear()
            blocks[bytes(data)] = tuple(decoded)
        return decoded


class CachingEncoder(Encoder):
    """hpack's Encoder, answering recently encoded header lists from a cache (see the module
    docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.header_table = VersionedTable()
        self._blocks: dict[tuple[Any, ...], bytes] = {}
        self._version = 0

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        table: Any = self.header_table
        if table.resized or not isinstance(headers, (list, tuple)):
            return super().encode(headers, huffman)
        for header in headers:
            if type(header) is not tuple or len(header) != 2:
                return super().encode(headers, huffman)
        key = (huffman, *headers)
        version = table.version
        blocks = self._blocks
        if version != self._version:
            blocks.clear()
            self._version = version
        else:
            block = blocks.get(key)
            if block is not None:
                return block
        block = super().encode(headers, huffman)
        if table.version == version and len(block) <= MAX_BLOCK:
            if len(blocks) >= MAX_BLOCKS:
                blocks.clear()
            blocks[key] = block
        return block
