"""grpc.experimental: grpcio's experimental APIs (``session_cache`` for TLS session resumption)."""
