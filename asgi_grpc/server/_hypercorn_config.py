"""The Hypercorn settings of a gRPC server: :func:`grpc_config`, and :func:`options_to_settings`
for grpcio's server ``options``. The ``h2_*`` settings that stock Hypercorn lacks are read by
``_hypercorn.GrpcH2Protocol``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypercorn.config import Config

__all__ = ["grpc_config", "options_to_settings"]

MiB = 1024 * 1024
# 1 MiB and a frame's worth more: a 1 MiB message with its 5-byte prefix (and a protobuf
# field's tag and length) fits the window, so its last bytes do not wait a round trip for a
# WINDOW_UPDATE (bench/README.md, "Large messages").
DEFAULT_STREAM_WINDOW = 1 * MiB + 16 * 1024
DEFAULT_CONNECTION_WINDOW = 16 * MiB
# Keepalive enforcement (grpc-core's defaults, see PingPolicy) and the rapid-reset budget.
DEFAULT_MIN_PING_INTERVAL = 300.0
DEFAULT_MAX_PING_STRIKES = 2
DEFAULT_RESET_BURST = 1000
DEFAULT_RESET_RATE = 200.0


def grpc_config(**overrides: Any) -> Config:
    """A Hypercorn :class:`~hypercorn.config.Config` tuned for gRPC; ``overrides`` are set last.

    - no access log, no ``date``/``server`` response headers (gRPC clients would see them as
      initial metadata);
    - ``keep_alive_max_requests`` effectively unlimited (a connection carries millions of RPCs;
      with :func:`install` reaching it drains the connection gracefully anyway);
    - ``keep_alive_timeout`` 300 s: gRPC channels keep idle connections open, and reconnecting
      costs a handshake (closing is graceful, GOAWAY first); ``read_timeout`` off, since a
      long server stream legitimately reads nothing for long;
    - 1 MiB + 16 KiB stream and 16 MiB (at least streams x stream window) connection receive
      windows, and a 1 MiB maximum inbound frame size, all announced in the server's SETTINGS;
    - ALPN ``h2`` then ``http/1.1``; ``graceful_timeout`` 10 s (set it to the server's grace);
    - grpc-core's keepalive enforcement: ``h2_min_ping_interval_without_data`` 300 s,
      ``h2_max_ping_strikes`` 2, ``h2_keepalive_permit_without_calls`` False (see
      ``_hypercorn_limits.PingPolicy``; :func:`options_to_settings` maps grpcio's names);
    - a rapid-reset budget of ``h2_max_reset_burst`` 1000 streams reset before their answer,
      refilled at ``h2_reset_rate`` 200 per second (see ``_hypercorn_limits.ResetBudget``).
    """
    config = Config()
    config.accesslog = None
    config.include_date_header = False
    config.include_server_header = False
    config.keep_alive_max_requests = 2**62
    config.keep_alive_timeout = 300.0
    config.read_timeout = None
    config.graceful_timeout = 10.0
    config.alpn_protocols = ["h2", "http/1.1"]
    config.h2_max_concurrent_streams = 100
    config.h2_max_inbound_frame_size = 1 * MiB
    config.h2_stream_window_size = DEFAULT_STREAM_WINDOW  # type: ignore[attr-defined]
    config.h2_connection_window_size = DEFAULT_CONNECTION_WINDOW  # type: ignore[attr-defined]
    config.h2_min_ping_interval_without_data = DEFAULT_MIN_PING_INTERVAL  # type: ignore[attr-defined]
    config.h2_max_ping_strikes = DEFAULT_MAX_PING_STRIKES  # type: ignore[attr-defined]
    config.h2_keepalive_permit_without_calls = False  # type: ignore[attr-defined]
    config.h2_max_reset_burst = DEFAULT_RESET_BURST  # type: ignore[attr-defined]
    config.h2_reset_rate = DEFAULT_RESET_RATE  # type: ignore[attr-defined]
    for name, value in overrides.items():
        if name == "bind" or hasattr(config, name) or name.startswith("h2_"):
            setattr(config, name, value)
        else:
            raise TypeError(f"grpc_config() got an unknown Hypercorn setting {name!r}")
    return config


def options_to_settings(options: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`grpc_config` overrides that grpcio server ``options`` ask for.

    ``grpc.http2.min_ping_interval_without_data_ms``, ``grpc.http2.max_ping_strikes``,
    ``grpc.keepalive_permit_without_calls``, ``grpc.max_concurrent_streams`` and
    ``grpc.max_metadata_size`` (the advertised SETTINGS_MAX_HEADER_LIST_SIZE); other options are
    not the HTTP/2 layer's.
    """
    settings: dict[str, Any] = {}
    value = options.get("grpc.http2.min_ping_interval_without_data_ms")
    if value is not None:
        settings["h2_min_ping_interval_without_data"] = max(0, int(value)) / 1000
    value = options.get("grpc.http2.max_ping_strikes")
    if value is not None:
        settings["h2_max_ping_strikes"] = max(0, int(value))
    value = options.get("grpc.keepalive_permit_without_calls")
    if value is not None:
        settings["h2_keepalive_permit_without_calls"] = bool(int(value))
    value = options.get("grpc.max_concurrent_streams")
    if value is not None and int(value) > 0:
        settings["h2_max_concurrent_streams"] = int(value)
    value = options.get("grpc.max_metadata_size")
    if value is not None and int(value) > 0:
        settings["h2_max_header_list_size"] = int(value)
    return settings
