"""Our side's HTTP/2 tuning and keepalive policy, from grpc channel options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["ConnectionSettings"]

_MiB = 1024 * 1024
_DEFAULT_WINDOW = 65535
_MAX_WINDOW = 2**31 - 1


@dataclass(frozen=True, kw_only=True)
class ConnectionSettings:
    """HTTP/2 tuning for our side of a connection.

    The windows bound how much a peer may send before we read it (per stream, and over all
    streams of the connection). grpcio grows its windows by BDP probing up to a few MiB;
    fixed windows of that size give the same throughput on fast links without the probing.
    ``max_frame_size`` is the largest DATA frame we accept: larger frames mean fewer frames
    (and h2 events) per message.

    Keepalive (grpc's ``keepalive_time_ms`` / ``keepalive_timeout_ms`` /
    ``keepalive_permit_without_calls``): every ``keepalive_time`` seconds, while streams are
    open (or always, with ``keepalive_without_calls``), a PING goes out; no answer within
    ``keepalive_timeout`` fails the connection, so a peer that vanished without closing its
    socket is noticed. Off by default, like grpcio's client. As grpc-core, at most
    ``max_pings_without_data`` pings (``grpc.http2.max_pings_without_data``, 0 for no limit) go
    out until we next send HEADERS or DATA. Servers limit ping rates (grpcio:
    ``grpc.http2.min_ping_interval_without_data_ms``) and answer a client pinging faster with
    GOAWAY ENHANCE_YOUR_CALM "too_many_pings": the pool then doubles ``keepalive_time`` for
    its later connections, as grpc-core does.

    ``max_header_list_size`` bounds one response header block (HPACK size, 32 bytes per
    field included): larger ones fail that call with RESOURCE_EXHAUSTED and leave the
    connection up. grpcio's default is a soft 8 KiB (``grpc.max_metadata_size``) and a hard
    16 KiB (``grpc.absolute_max_metadata_size``, else the larger of 16 KiB and 1.25 x the
    soft limit); grpcio refuses blocks between the two at random, we accept them, so ours is
    the hard limit.

    Reconnect backoff (grpc's ``doc/connection-backoff.md``): after a connection attempt that
    failed, or a connection that closed or said GOAWAY before it answered any stream, the next
    attempt waits ``reconnect_initial`` seconds, then 1.6 times longer each time (with 20%
    jitter) up to ``reconnect_max``; an answered stream resets it.
    """

    stream_window: int = 4 * _MiB
    connection_window: int = 16 * _MiB
    max_frame_size: int = 1024 * 1024
    max_header_list_size: int = 16 * 1024
    connect_timeout: float | None = 20.0
    keepalive_time: float | None = None
    keepalive_timeout: float = 20.0
    # An int like grpc's 0/1 option ``grpc.keepalive_permit_without_calls``: non-zero pings
    # even when no call is open.
    keepalive_without_calls: int = 0
    max_pings_without_data: int = 2
    reconnect_initial: float = 1.0
    reconnect_min: float = 0.0
    reconnect_max: float = 120.0

    def __post_init__(self) -> None:
        if not _DEFAULT_WINDOW <= self.stream_window <= _MAX_WINDOW:
            raise ValueError(f"stream_window must be in [65535, 2**31-1]: {self.stream_window}")
        if not _DEFAULT_WINDOW <= self.connection_window <= _MAX_WINDOW:
            raise ValueError(
                f"connection_window must be in [65535, 2**31-1]: {self.connection_window}"
            )
        if not 16384 <= self.max_frame_size <= 2**24 - 1:
            raise ValueError(f"max_frame_size must be in [16384, 2**24-1]: {self.max_frame_size}")
        if self.keepalive_time is not None and self.keepalive_time <= 0:
            raise ValueError(f"keepalive_time must be positive: {self.keepalive_time}")
        if self.max_header_list_size < 1:
            raise ValueError(f"max_header_list_size must be positive: {self.max_header_list_size}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ConnectionSettings:
        """Settings from grpc channel options (``grpc.keepalive_time_ms``,
        ``grpc.keepalive_timeout_ms``, ``grpc.keepalive_permit_without_calls``) and our own
        ``asgi_grpc.http2.*`` ones (window sizes, max frame size, connect timeout in ms).
        Options that do not concern the connection are ignored."""
        values: dict[str, Any] = {}
        for option, (name, scale) in _OPTIONS.items():
            if option in options:
                value = options[option]
                values[name] = int(value) if scale == 1 else int(value) / scale
        if values.get("keepalive_time") is not None and values["keepalive_time"] >= _NEVER:
            values["keepalive_time"] = None  # grpc's INT_MAX means "never"
        if "max_header_list_size" not in values and "grpc.max_metadata_size" in options:
            # grpc-core's hard limit when only the soft one is given.
            soft = int(options["grpc.max_metadata_size"])
            values["max_header_list_size"] = max(16 * 1024, soft * 5 // 4)
        return cls(**values)

    def throttled(self) -> ConnectionSettings:
        """These settings with ``keepalive_time`` doubled (a server said "too_many_pings")."""
        if self.keepalive_time is None:
            return self
        doubled = self.keepalive_time * 2
        return replace(self, keepalive_time=None if doubled >= _NEVER else doubled)


# grpc option -> (ConnectionSettings field, divisor to our unit).
_OPTIONS: dict[str, tuple[str, int]] = {
    "grpc.keepalive_time_ms": ("keepalive_time", 1000),
    "grpc.keepalive_timeout_ms": ("keepalive_timeout", 1000),
    "grpc.keepalive_permit_without_calls": ("keepalive_without_calls", 1),
    "asgi_grpc.http2.stream_window_size": ("stream_window", 1),
    "asgi_grpc.http2.connection_window_size": ("connection_window", 1),
    "asgi_grpc.http2.max_frame_size": ("max_frame_size", 1),
    "grpc.http2.max_pings_without_data": ("max_pings_without_data", 1),
    "grpc.absolute_max_metadata_size": ("max_header_list_size", 1),
    "grpc.initial_reconnect_backoff_ms": ("reconnect_initial", 1000),
    "grpc.min_reconnect_backoff_ms": ("reconnect_min", 1000),
    "grpc.max_reconnect_backoff_ms": ("reconnect_max", 1000),
    "asgi_grpc.connect_timeout_ms": ("connect_timeout", 1000),
}
_NEVER = (2**31 - 1) / 1000
