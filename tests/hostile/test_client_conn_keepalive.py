"""Issue 9 item 8 (client side): our keepalive pinger follows grpc-core's policy, checked
against grpcio's client in the same scripted server (it records when each PING arrives):

- ``grpc.keepalive_time_ms``: the period; pings go out at most once a second;
- ``grpc.http2.max_pings_without_data`` (default 2): no more pings until we send data;
- ``grpc.keepalive_permit_without_calls``: no pings on a connection without calls unless set;
- GOAWAY ENHANCE_YOUR_CALM "too_many_pings": the next connection pings at twice the period.

Timings are only checked from below (timers never fire early; 50 ms are allowed for the
server thread noting the connection later than the client's timer started) or with a wide
margin.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import grpc.aio
import h2.events
import pytest
from h2.errors import ErrorCodes

import asgi_grpc.aio

from .lying_server import LyingConnection, Script, lying_server

KINDS = ["grpc.aio", "asgi_grpc.aio"]
_CONNECTED: dict[int, float] = {}
_PINGS: dict[int, list[float]] = {}


def _module(kind: str) -> Any:
    return grpc.aio if kind == "grpc.aio" else asgi_grpc.aio


def _record(conn: LyingConnection) -> None:
    _CONNECTED[id(conn)] = time.monotonic()
    _PINGS[id(conn)] = []
    conn.settings()


def pings(conn: LyingConnection) -> list[float]:
    """When each PING arrived, in seconds after the connection was accepted."""
    return [t - _CONNECTED[id(conn)] for t in _PINGS[id(conn)]]


def _note_ping(conn: LyingConnection, event: h2.events.Event) -> None:
    if isinstance(event, h2.events.PingReceived):
        _PINGS[id(conn)].append(time.monotonic())


def _calm_down(conn: LyingConnection, event: h2.events.Event) -> None:
    _note_ping(conn, event)
    if isinstance(event, h2.events.PingReceived):
        conn.h2.close_connection(ErrorCodes.ENHANCE_YOUR_CALM, b"too_many_pings")
        conn.close()


async def _open_call_for(channel: Any, seconds: float) -> None:
    """A bidi call the server never answers (no DATA sent), open for ``seconds`` or until a
    GOAWAY ends it, then ``seconds`` are waited out anyway."""
    started = time.monotonic()
    call = channel.stream_stream("/hostile.Test/Silent")()
    code = asyncio.ensure_future(call.code())
    await asyncio.wait({code}, timeout=seconds)
    call.cancel()
    await asyncio.wait({code})
    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))


@pytest.mark.parametrize("kind", KINDS)
async def test_too_many_pings_doubles_the_keepalive_time(kind: str) -> None:
    options = [("grpc.keepalive_time_ms", 500), ("grpc.keepalive_permit_without_calls", 1)]
    with lying_server(Script(on_connect=_record, on_event=_calm_down)) as server:
        async with _module(kind).insecure_channel(server.target, options=options) as channel:
            await _open_call_for(channel, 0.8)  # the first ping gets the GOAWAY
            await _open_call_for(channel, 1.3)  # a new connection, pinging at 1 s
        assert server.accepted == 2
        first, second = (pings(conn) for conn in server.connections)
        assert len(first) == 1
        assert 0.45 <= first[0] < 0.95
        assert len(second) == 1
        assert second[0] >= 0.95  # 1 s, not 0.5 s


@pytest.mark.parametrize("limit", [None, 0])
@pytest.mark.parametrize("kind", KINDS)
async def test_pings_without_data_are_limited_and_paced(kind: str, limit: int | None) -> None:
    options: list[tuple[str, Any]] = [("grpc.keepalive_time_ms", 200)]
    if limit is not None:
        options.append(("grpc.http2.max_pings_without_data", limit))
    with lying_server(Script(on_connect=_record, on_event=_note_ping)) as server:
        async with _module(kind).insecure_channel(server.target, options=options) as channel:
            await _open_call_for(channel, 2.6)
        times = pings(server.connections[0])
    if limit is None:
        assert len(times) == 2  # grpc's default: two pings, then data is needed
    else:
        assert len(times) >= 3
    assert times[0] >= 0.15
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(times))  # 1/s at most


@pytest.mark.parametrize("permit", [0, 1])
@pytest.mark.parametrize("kind", KINDS)
async def test_pings_without_calls_only_when_permitted(kind: str, permit: int) -> None:
    options = [("grpc.keepalive_time_ms", 200), ("grpc.keepalive_permit_without_calls", permit)]
    with lying_server(Script(on_connect=_record, on_event=_note_ping)) as server:
        async with _module(kind).insecure_channel(server.target, options=options) as channel:
            await asyncio.wait_for(channel.channel_ready(), 5)
            await asyncio.sleep(0.7)
        times = pings(server.connections[0])
    assert len(times) == permit
