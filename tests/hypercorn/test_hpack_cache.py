"""The server's caching HPACK decoder and encoder do exactly what hpack's own do
(they only skip the work for a block they have seen while their table stood still)."""

from __future__ import annotations

import random
from typing import Any

import hpack
import pytest

from asgi_grpc._hpack import MAX_BLOCKS, CachingDecoder, CachingEncoder


def test_same_bytes_after_a_table_change_decode_to_the_new_entry() -> None:
    decoder = CachingDecoder(65536)
    stock = hpack.Decoder()
    # Literal with incremental indexing, new name: adds ("x-a", "1") at index 62.
    add_a = b"\x40\x03x-a\x011"
    add_b = b"\x40\x03x-b\x012"
    index_62 = b"\xbe"
    for block in (add_a, index_62, index_62, add_b, index_62, index_62):
        assert decoder.decode(block, raw=True) == stock.decode(block, raw=True)
    assert decoder.decode(index_62, raw=True) == [(b"x-b", b"2")]


def test_size_update_and_eviction_invalidate() -> None:
    decoder = CachingDecoder(65536)
    stock = hpack.Decoder()
    add = b"\x40\x03x-a\x011"
    index_62 = b"\xbe"
    for block in (add, index_62, index_62):
        assert decoder.decode(block, raw=True) == stock.decode(block, raw=True)
    # A table size update to 0 (evicts everything): index 62 is then an error for both.
    size_zero = b"\x20"
    assert decoder.decode(size_zero, raw=True) == stock.decode(size_zero, raw=True) == []
    for dec in (decoder, stock):
        with pytest.raises(hpack.HPACKDecodingError):
            dec.decode(index_62, raw=True)


@pytest.mark.parametrize("seed", range(5))
def test_matches_stock_decoder_on_random_traffic(seed: int) -> None:
    """Random header lists from a small pool (so blocks repeat), an encoder with a small table
    (so entries are evicted and indexes move), decoded by both decoders."""
    rng = random.Random(seed)
    encoder = hpack.Encoder()
    encoder.header_table_size = rng.choice([64, 256, 4096])
    decoder = CachingDecoder(65536)
    stock = hpack.Decoder()
    pool = [(f"x-h{i}".encode(), f"v{rng.randrange(4)}".encode()) for i in range(12)]
    pool += [(b":path", b"/a/B"), (b":path", b"/a/C"), (b"te", b"trailers")]
    for _ in range(2000):
        headers = rng.sample(pool, rng.randrange(1, 6))
        block = encoder.encode(headers)
        ours = decoder.decode(block, raw=True)
        assert ours == stock.decode(block, raw=True)
        assert ours == headers
    assert len(decoder._blocks) <= MAX_BLOCKS


def test_cache_stays_bounded() -> None:
    decoder = CachingDecoder(65536)
    for i in range(10 * MAX_BLOCKS):
        block = b"\x00\x03x-a" + bytes([len(str(i))]) + str(i).encode()  # literal, not indexed
        assert decoder.decode(block, raw=True) == [(b"x-a", str(i).encode())]
        assert len(decoder._blocks) <= MAX_BLOCKS


@pytest.mark.parametrize("seed", range(5))
def test_encoder_matches_stock_encoder_on_random_traffic(seed: int) -> None:
    """Byte for byte what hpack's encoder makes, over random response headers with evictions,
    table size changes (the peer's SETTINGS) and never-indexed fields; a decoder reads them back."""
    rng = random.Random(seed)
    encoder = CachingEncoder()
    stock = hpack.Encoder()
    decoder = hpack.Decoder()
    pool: list[Any] = [(b":status", b"200"), (b"content-type", b"application/grpc")]
    pool += [(b"grpc-status", str(rng.randrange(3)).encode()) for _ in range(3)]
    pool += [(f"x-m{i}".encode(), f"v{rng.randrange(3)}".encode()) for i in range(10)]
    pool += [hpack.NeverIndexedHeaderTuple(b"x-secret", b"s"), (b"x-three", b"t", True)]
    for step in range(2000):
        if step % 300 == 299:
            size = rng.choice([0, 64, 256, 4096])
            encoder.header_table_size = stock.header_table_size = size
        headers = rng.sample(pool, rng.randrange(1, 6))
        huffman = rng.random() < 0.9
        block = encoder.encode(list(headers), huffman)
        assert block == stock.encode(list(headers), huffman)
        assert decoder.decode(block, raw=True) == [(h[0], h[1]) for h in headers]
    assert len(encoder._blocks) <= MAX_BLOCKS


def test_never_indexed_and_plain_fields_are_told_apart() -> None:
    """A never-indexed field leaves the table as it was; the same pair as a plain tuple compares
    equal to it, and must still be encoded as a plain field (which adds it to the table)."""
    encoder = CachingEncoder()
    stock = hpack.Encoder()
    sequence: list[Any] = [
        [hpack.NeverIndexedHeaderTuple(b"x-new", b"v")],
        [hpack.NeverIndexedHeaderTuple(b"x-new", b"v")],
        [(b"x-new", b"v")],
        [(b"x-new", b"v")],
    ]
    blocks = [encoder.encode(headers) for headers in sequence]
    assert blocks == [stock.encode(headers) for headers in sequence]
    assert blocks[0][0] & 0xF0 == 0x10  # literal never indexed
    assert blocks[2][0] & 0xC0 == 0x40  # literal with incremental indexing
    assert len(blocks[3]) == 1  # then indexed
