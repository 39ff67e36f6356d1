"""grpc.experimental.session_cache: TLS session resumption across a channel's connections.

``options=[("grpc.ssl_session_cache", ssl_session_cache_lru(capacity))]`` on secure channels makes
their new connections offer the last session to the same server name, so the server can resume it
instead of a full handshake (the server's auth context says ``ssl_session_reused``).
"""

from __future__ import annotations

from .._tls import SessionCache as SSLSessionCache

__all__ = ["SSLSessionCache", "ssl_session_cache_lru"]


def ssl_session_cache_lru(capacity: int) -> SSLSessionCache:
    """A session cache for ``capacity`` server names, least recently used first out."""
    return SSLSessionCache(capacity)
