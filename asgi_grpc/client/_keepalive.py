"""Client keepalive as grpc-core does it (``doc/keepalive.md``).

Every ``keepalive_time`` seconds from the end of the handshake a PING may go out; it is held
back when no call is open (unless ``keepalive_permit_without_calls``), or when
``max_pings_without_data`` pings have already gone out since we last sent HEADERS or DATA (0:
no such limit). Pings also go out at most once a second (grpc-core's client ping rate: one
due sooner waits for it), so a tiny ``keepalive_time`` cannot flood the peer. A PING not
acknowledged within ``keepalive_timeout`` fails the connection, so a peer that vanished
without closing its socket is noticed.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from ._settings import ConnectionSettings

__all__ = ["Keepalive"]

_PING_DATA = b"agkalive"
#: grpc-core's minimum interval between a client's pings (its ping rate policy).
MIN_PING_INTERVAL = 1.0


class _Pinged(Protocol):
    """What the keepalive needs from its connection."""

    @property
    def active_streams(self) -> int: ...

    #: Pings sent since we last sent HEADERS or DATA (the connection resets it to 0).
    pings_without_data: int

    def send_ping(self, data: bytes) -> None: ...

    def keepalive_expired(self, timeout: float) -> None: ...


class Keepalive:
    """The keepalive timer and watchdog of one connection."""

    __slots__ = ("_conn", "_last_ping", "_loop", "_settings", "_timer", "_watchdog")

    def __init__(
        self, conn: _Pinged, settings: ConnectionSettings, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._conn = conn
        self._settings = settings
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._last_ping = -MIN_PING_INTERVAL

    def start(self) -> None:
        """The handshake is done: start the period (a no-op when keepalive is off)."""
        interval = self._settings.keepalive_time
        if interval is not None and self._timer is None:
            self._timer = self._loop.call_later(interval, self._tick)

    def _tick(self) -> None:
        settings = self._settings
        assert settings.keepalive_time is not None
        now = self._loop.time()
        allowed = self._last_ping + MIN_PING_INTERVAL
        if now < allowed:
            self._timer = self._loop.call_at(allowed, self._tick)  # too soon: the ping waits
            return
        self._timer = self._loop.call_later(settings.keepalive_time, self._tick)
        if self._watchdog is not None:
            return  # the last ping is still out; its watchdog judges it
        conn = self._conn
        if not conn.active_streams and not settings.keepalive_without_calls:
            return
        limit = settings.max_pings_without_data
        if limit and conn.pings_without_data >= limit:
            return
        conn.pings_without_data += 1
        self._last_ping = now
        conn.send_ping(_PING_DATA)
        self._watchdog = self._loop.call_later(settings.keepalive_timeout, self._expired)

    def acknowledged(self, data: bytes) -> None:
        """A PING ACK arrived."""
        if data == _PING_DATA and self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _expired(self) -> None:
        self._watchdog = None
        self.stop()
        self._conn.keepalive_expired(self._settings.keepalive_timeout)

    def stop(self) -> None:
        for timer in (self._timer, self._watchdog):
            if timer is not None:
                timer.cancel()
        self._timer = self._watchdog = None
