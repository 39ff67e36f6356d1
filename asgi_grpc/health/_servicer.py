"""grpc.health.v1.Health: per-service serving status, for probes and load balancers.

The servicer is async (it runs on asgi_grpc's servers, sync or aio); :meth:`HealthServicer.set`
may be called from any thread. Watchers live on the server's event loop, so a status change
reaches them through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

from .._core import StatusCode
from ..server import ServicerContext
from ._health_pb2_asgi_grpc import (
    HealthCheckRequest,
    HealthCheckResponse,
    HealthListRequest,
    HealthListResponse,
)
from ._health_pb2_asgi_grpc import HealthServicer as _GeneratedServicer

SERVICE_NAME = "grpc.health.v1.Health"
OVERALL_HEALTH = ""
"""The service name that stands for the whole server (what a plain Check asks about)."""

UNKNOWN = HealthCheckResponse.UNKNOWN
SERVING = HealthCheckResponse.SERVING
NOT_SERVING = HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = HealthCheckResponse.SERVICE_UNKNOWN


class _Watcher:
    """One Watch call: its loop and a queue of statuses to send."""

    __slots__ = ("loop", "queue")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[int] = asyncio.Queue()

    def push(self, status: int) -> None:
        # A closed loop means the call is over and nobody is listening.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.queue.put_nowait, status)


class HealthServicer(_GeneratedServicer):
    """grpc_health.v1.health.HealthServicer's behaviour on asgi_grpc.

    The overall server status (service ``""``) starts as SERVING, as in grpcio. ``Check`` of an
    unknown service fails with NOT_FOUND; ``Watch`` of one answers SERVICE_UNKNOWN and waits for
    the service to appear.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[str, int] = {OVERALL_HEALTH: SERVING}
        self._watchers: dict[str, set[_Watcher]] = {}
        self._shutting_down = False

    async def Check(
        self, request: HealthCheckRequest, context: ServicerContext
    ) -> HealthCheckResponse:
        with self._lock:
            status = self._status.get(request.service)
        if status is None:
            await context.abort(StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return HealthCheckResponse(status=status)

    async def List(
        self, request: HealthListRequest, context: ServicerContext
    ) -> HealthListResponse:
        with self._lock:
            statuses = dict(self._status)
        response = HealthListResponse()
        for service, status in statuses.items():
            response.statuses[service].status = status
        return response

    async def Watch(
        self, request: HealthCheckRequest, context: ServicerContext
    ) -> AsyncIterator[HealthCheckResponse]:
        service = request.service
        watcher = _Watcher()
        with self._lock:
            current = self._status.get(service, SERVICE_UNKNOWN)
            self._watchers.setdefault(service, set()).add(watcher)
        try:
            yield HealthCheckResponse(status=current)
            while True:
                status = await watcher.queue.get()
                # The protocol sends a message when the status *changes*.
                if status != current:
                    current = status
                    yield HealthCheckResponse(status=status)
        finally:
            with self._lock:
                watchers = self._watchers.get(service)
                if watchers is not None:
                    watchers.discard(watcher)
                    if not watchers:
                        del self._watchers[service]

    # ------------------------------------------------------------------ control (any thread)

    def set(self, service: str, status: int) -> None:
        """Set ``service``'s status (a ``HealthCheckResponse.ServingStatus`` value).

        Ignored after :meth:`enter_graceful_shutdown`, as in grpcio."""
        with self._lock:
            if self._shutting_down:
                return
            self._set_locked(service, int(status))

    def enter_graceful_shutdown(self) -> None:
        """Mark every service NOT_SERVING for good (later :meth:`set` calls are ignored), so
        probes steer traffic away while in-flight calls finish."""
        with self._lock:
            if self._shutting_down:
                return
            self._shutting_down = True
            for service in list(self._status):
                self._set_locked(service, NOT_SERVING)

    def _set_locked(self, service: str, status: int) -> None:
        self._status[service] = status
        for watcher in self._watchers.get(service, ()):
            watcher.push(status)
