"""The server's caching HPACK decoder decodes every block exactly as hpack's own decoder does
(it only skips the work for a block it has seen while the table stood still)."""

from __future__ import annotations

import random

import hpack
import pytest

from asgi_grpc.server._hypercorn_hpack import MAX_BLOCKS, CachingDecoder


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
