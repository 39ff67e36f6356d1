"""The caching HPACK decoder and encoder, shared with the client: :mod:`asgi_grpc._hpack`."""

from __future__ import annotations

from .._hpack import MAX_BLOCK, MAX_BLOCKS, CachingDecoder, CachingEncoder, VersionedTable

__all__ = ["MAX_BLOCK", "MAX_BLOCKS", "CachingDecoder", "CachingEncoder", "VersionedTable"]
