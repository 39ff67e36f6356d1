"""An HPACK decoder that remembers the header blocks it decoded while its table stood still.

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
"""

from __future__ import annotations

from typing import Any

from hpack import Decoder
from hpack.table import HeaderTable

__all__ = ["MAX_BLOCK", "MAX_BLOCKS", "CachingDecoder", "VersionedTable"]

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
