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


@dataclass(kw_only=True)
class ServerConfig:
    """What the ASGI app needs to know about its server; shared by every call."""

    max_receive_message_length: int | None = DEFAULT_MAX_RECEIVE_MESSAGE_LENGTH
    max_send_message_length: int | None = DEFAULT_MAX_SEND_MESSAGE_LENGTH
    maximum_concurrent_rpcs: int | None = None
    compression: str = IDENTITY
    thread_pool: Executor | None = None
    # Per-call bound on request messages received but not yet read by the handler.
    max_buffered_request_bytes: int = 4 * 1024 * 1024
    options: dict[str, Any] = field(default_factory=dict)

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
