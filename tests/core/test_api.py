"""The core's facade: every name others build on is there and importable."""

from __future__ import annotations

import asgi_grpc._core as core

# The public surface as first published; other packages import these names.
PUBLISHED = {
    "ACCEPT_ENCODING", "CONTENT_TYPE", "DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH",
    "DEFAULT_MAX_SEND_MESSAGE_LENGTH", "DEFLATE", "GZIP", "HEADER_SIZE", "IDENTITY", "RESERVED",
    "STATUS_DETAILS_KEY", "Compression", "Deadline", "Headers", "MessageReader", "Metadata",
    "MetadataKey", "MetadataLike", "MetadataValue", "Metadatum", "ProtocolError", "RequestHead",
    "Status", "StatusCode", "coerce_status", "compress", "decode_message", "decode_metadata",
    "decode_timeout", "decompress", "encode_message", "encode_metadata", "encode_timeout",
    "encoding_name", "frame", "http_status_to_grpc", "is_grpc_content_type", "is_supported",
    "parse_accept_encoding", "parse_request_headers", "parse_trailers", "request_headers",
    "response_headers", "status_from_int", "status_from_wire", "status_to_wire", "too_large",
    "trailers", "validate_key",
}  # fmt: skip


def test_all_resolves() -> None:
    # Its order is ruff's (RUF022: constants, classes, functions), checked by ruff itself.
    assert len(set(core.__all__)) == len(core.__all__)
    for name in core.__all__:
        assert hasattr(core, name), name


def test_published_names_are_kept() -> None:
    assert set(core.__all__) >= PUBLISHED
