"""The sans-IO gRPC protocol core: bytes and headers in, values and errors out.

No asyncio, httpx or hypercorn here: server and client adapters do the I/O and share all of this.

Error tree: :class:`ProtocolError` (carries a :class:`StatusCode`) is the only exception raised
for bad input.
"""

from ._codec import pack_message, unpack_message
from ._compression import (
    ACCEPT_ENCODING,
    DEFLATE,
    GZIP,
    IDENTITY,
    Compression,
    compress,
    decompress,
    encoding_name,
    is_supported,
    parse_accept_encoding,
)
from ._errors import ProtocolError
from ._framing import (
    DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH,
    DEFAULT_MAX_SEND_MESSAGE_LENGTH,
    HEADER_SIZE,
    MessageReader,
    frame,
    too_large,
)
from ._metadata import (
    RESERVED,
    Metadata,
    MetadataKey,
    MetadataLike,
    MetadataValue,
    Metadatum,
    checked_metadata,
    decode_bin,
    decode_metadata,
    encode_metadata,
    to_metadata,
    validate_key,
)
from ._protocol import (
    CONTENT_TYPE,
    STATUS_DETAILS_KEY,
    Headers,
    RequestHead,
    Status,
    http_status_to_grpc,
    is_grpc_content_type,
    parse_request_headers,
    parse_trailers,
    request_headers,
    response_headers,
    trailers,
)
from ._status import (
    StatusCode,
    coerce_status,
    decode_message,
    encode_message,
    status_from_int,
    status_from_wire,
    status_to_wire,
)
from ._timeout import Deadline, decode_timeout, encode_timeout

__all__ = [
    "ACCEPT_ENCODING",
    "CONTENT_TYPE",
    "DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH",
    "DEFAULT_MAX_SEND_MESSAGE_LENGTH",
    "DEFLATE",
    "GZIP",
    "HEADER_SIZE",
    "IDENTITY",
    "RESERVED",
    "STATUS_DETAILS_KEY",
    "Compression",
    "Deadline",
    "Headers",
    "MessageReader",
    "Metadata",
    "MetadataKey",
    "MetadataLike",
    "MetadataValue",
    "Metadatum",
    "ProtocolError",
    "RequestHead",
    "Status",
    "StatusCode",
    "checked_metadata",
    "coerce_status",
    "compress",
    "decode_bin",
    "decode_message",
    "decode_metadata",
    "decode_timeout",
    "decompress",
    "encode_message",
    "encode_metadata",
    "encode_timeout",
    "encoding_name",
    "frame",
    "http_status_to_grpc",
    "is_grpc_content_type",
    "is_supported",
    "pack_message",
    "parse_accept_encoding",
    "parse_request_headers",
    "parse_trailers",
    "request_headers",
    "response_headers",
    "status_from_int",
    "status_from_wire",
    "status_to_wire",
    "to_metadata",
    "too_large",
    "trailers",
    "unpack_message",
    "validate_key",
]
