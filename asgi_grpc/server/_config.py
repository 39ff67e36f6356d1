"""Server-wide settings, parsed once from grpcio-style ``options``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from .._core import (
    DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH,
    DEFAULT_MAX_SEND_MESSAGE_LENGTH,
    IDENTITY,
    Compression,
    encoding_name,
)

ChannelArgument = tuple[str, Any]

DEFAULT_MAX_BUFFERED_REQUEST_BYTES = 256 * 1024
_ALL_ENCODINGS = frozenset(encoding_name(c) for c in Compression)


@dataclass(kw_only=True)
class ServerConfig:
    """What the ASGI app needs to know about its server; shared by every call."""

    max_receive_message_length: int | None = DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH
    max_send_message_length: int | None = DEFAULT_MAX_SEND_MESSAGE_LENGTH
    maximum_concurrent_rpcs: int | None = None
    compression: str = IDENTITY
    thread_pool: Executor | None = None
    # Per-call bound on request messages received but not yet read by the handler, charged per
    # message as payload + prefix + object overhead (see _requests). With the HTTP/2 stream
    # window on top, what a call whose handler does not read can make the server hold.
    # Option ``asgi_grpc.max_buffered_request_bytes``.
    max_buffered_request_bytes: int = DEFAULT_MAX_BUFFERED_REQUEST_BYTES
    # Wire names of the request encodings the server accepts (grpc's option
    # ``grpc.compression_enabled_algorithms_bitset``); others end the call UNIMPLEMENTED.
    enabled_encodings: frozenset[str] = frozenset(_ALL_ENCODINGS)
    options: dict[str, Any] = field(default_factory=dict)
    # True under grpc.server (the blocking API): grpc and grpc.aio word a handler's exception
    # differently, and only grpc honours a behaviour's ``experimental_thread_pool``.
    blocking_api: bool = False

    @classmethod
    def from_options(
        cls,
        options: Sequence[ChannelArgument] | None = None,
        *,
        maximum_concurrent_rpcs: int | None = None,
        compression: Compression | None = None,
        thread_pool: Executor | None = None,
    ) -> ServerConfig:
        opts = _options_dict(options)
        if maximum_concurrent_rpcs is not None and maximum_concurrent_rpcs < 1:
            raise ValueError("maximum_concurrent_rpcs should not be a negative integer")
        return cls(
            max_receive_message_length=_limit(
                opts.get("grpc.max_receive_message_length"), DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH
            ),
            max_send_message_length=_limit(
                opts.get("grpc.max_send_message_length"), DEFAULT_MAX_SEND_MESSAGE_LENGTH
            ),
            maximum_concurrent_rpcs=maximum_concurrent_rpcs,
            compression=encoding_name(
                compression
                if compression is not None
                else opts.get("grpc.default_compression_algorithm")
            ),
            thread_pool=thread_pool,
            max_buffered_request_bytes=int(
                opts.get("asgi_grpc.max_buffered_request_bytes", DEFAULT_MAX_BUFFERED_REQUEST_BYTES)
            ),
            enabled_encodings=_enabled_encodings(
                opts.get("grpc.compression_enabled_algorithms_bitset")
            ),
            options=opts,
        )


def _options_dict(options: Iterable[ChannelArgument] | None) -> dict[str, Any]:
    if not options:
        return {}
    result: dict[str, Any] = {}
    for item in options:
        key, value = item
        result[key] = value
    return result


def _limit(value: Any, default: int) -> int | None:
    """grpcio semantics: a negative limit means unlimited, absent means the default."""
    if value is None:
        return default
    value = int(value)
    return None if value < 0 else value


def _enabled_encodings(bitset: Any) -> frozenset[str]:
    """grpc's bitset: bit N enables ``Compression(N)``; identity is always accepted."""
    if bitset is None:
        return frozenset(_ALL_ENCODINGS)
    bits = int(bitset)
    return frozenset(
        {IDENTITY} | {encoding_name(c) for c in Compression if c and bits & (1 << c.value)}
    )
