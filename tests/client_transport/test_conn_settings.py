"""grpc channel options that shape a client connection: metadata limits, reconnect backoff,
keepalive policy, and the throttling a "too_many_pings" GOAWAY asks for."""

from __future__ import annotations

import pytest

from asgi_grpc.client._connection import ConnectionSettings
from asgi_grpc.client._pool import Backoff


def test_defaults_are_grpcios() -> None:
    settings = ConnectionSettings()
    assert settings.max_header_list_size == 16 * 1024  # grpc-core's hard metadata limit
    assert settings.keepalive_time is None
    assert settings.keepalive_timeout == 20
    assert settings.max_pings_without_data == 2
    assert (settings.reconnect_initial, settings.reconnect_max) == (1.0, 120.0)


def test_metadata_limits_from_options() -> None:
    soft = ConnectionSettings.from_options({"grpc.max_metadata_size": 64 * 1024})
    assert soft.max_header_list_size == 80 * 1024  # grpc-core: hard = 1.25 x soft
    small = ConnectionSettings.from_options({"grpc.max_metadata_size": 1024})
    assert small.max_header_list_size == 16 * 1024
    hard = ConnectionSettings.from_options(
        {"grpc.max_metadata_size": 1024, "grpc.absolute_max_metadata_size": 4096}
    )
    assert hard.max_header_list_size == 4096


def test_backoff_from_options() -> None:
    settings = ConnectionSettings.from_options(
        {
            "grpc.initial_reconnect_backoff_ms": 200,
            "grpc.max_reconnect_backoff_ms": 500,
            "grpc.min_reconnect_backoff_ms": 100,
            "grpc.http2.max_pings_without_data": 0,
        }
    )
    assert settings.max_pings_without_data == 0
    backoff = Backoff(settings)
    delays = [backoff.next() for _ in range(6)]
    assert 0.16 <= delays[0] <= 0.24
    assert 0.256 <= delays[1] <= 0.384  # x1.6, 20% jitter
    assert all(0.1 <= d <= 0.6 for d in delays)  # capped at 500 ms (+ jitter)
    backoff.reset()
    assert backoff.next() <= 0.24


def test_too_many_pings_doubles_keepalive_up_to_never() -> None:
    settings = ConnectionSettings(keepalive_time=10)
    assert settings.throttled().keepalive_time == 20
    assert ConnectionSettings().throttled().keepalive_time is None
    huge = ConnectionSettings(keepalive_time=(2**31 - 1) / 1000 * 0.75)
    assert huge.throttled().keepalive_time is None  # past grpc's INT_MAX ms: never


def test_invalid_header_limit() -> None:
    with pytest.raises(ValueError, match="max_header_list_size"):
        ConnectionSettings(max_header_list_size=0)
