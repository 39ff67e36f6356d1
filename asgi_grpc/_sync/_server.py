"""grpc.Server: the aio server (Hypercorn, HTTP/2) on the background loop, with sync servicers.

The aio server already runs plain-function and generator handlers on its thread pool with a
grpc.ServicerContext (asgi_grpc/server/_call.py, ``_SyncContext``); this class gives it grpc's
blocking lifecycle: ``start()`` returns once the ports listen, ``stop(grace)`` returns a
``threading.Event``, ``wait_for_termination()`` blocks (and lets Ctrl-C through).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from typing import Any

from .._core import Compression
from .._credentials import ServerCredentials
from ..server._call import _SyncContext
from ..server._server import Server as AioServer
from . import _abc, _loop

_abc.ServicerContext.register(_SyncContext)


class _AioServer(AioServer):
    """The aio server under a grpc.Server: it takes grpc (sync) server interceptors too."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.app.config.blocking_api = True

    @staticmethod
    def _check_interceptors(interceptors: Sequence[Any]) -> None:
        pass


def _check_generic_handlers(handlers: Iterable[Any]) -> None:
    for handler in handlers:
        if getattr(handler, "service", None) is None:
            raise AttributeError(
                f"{handler!r} must conform to grpc.GenericRpcHandler type but does not have a "
                "'service' method"
            )


class Server(_abc.Server):
    """grpc.Server."""

    def __init__(
        self,
        thread_pool: Executor | None,
        handlers: Iterable[Any] | None = None,
        interceptors: Sequence[Any] | None = None,
        options: Sequence[tuple[str, Any]] | None = None,
        maximum_concurrent_rpcs: int | None = None,
        compression: Compression | None = None,
    ) -> None:
        handlers = list(handlers or ())
        _check_generic_handlers(handlers)
        self._aio = _AioServer(
            thread_pool, handlers, interceptors, options, maximum_concurrent_rpcs, compression
        )
        self._lock = threading.Lock()
        self._started = False
        self._stopping: Any = None
        self._terminated = _Terminated()
        self._background = _loop.background()

    @property
    def app(self) -> Any:
        """The ASGI application (asgi_grpc.server.GrpcApp) this server serves."""
        return self._aio.app

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[Any]) -> None:
        generic_rpc_handlers = list(generic_rpc_handlers)
        _check_generic_handlers(generic_rpc_handlers)
        self._aio.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Any) -> None:
        self._aio.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        """Bind ``address`` (``host:port``, ``[v6]:port``, ``unix:path``); returns the port."""
        return self._aio.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: ServerCredentials) -> int:
        return self._aio.add_secure_port(address, server_credentials)

    def start(self) -> None:
        """Start serving; returns once every port accepts connections."""
        with self._lock:
            if self._started:
                raise ValueError("Cannot start already-started server!")
            self._started = True
        self._terminated.pin()
        try:
            _loop.run(self._aio.start)
        except BaseException:
            self._terminated.unpin()
            raise
        self._background.register(self)

    def stop(self, grace: float | None) -> threading.Event:
        """Stop: refuse new RPCs, give those in flight ``grace`` seconds, then cancel them.

        Returns an event set once the server has stopped; with ``grace=None`` it is already set
        (in-flight RPCs are cancelled at once, as grpcio does)."""
        event = threading.Event()
        with self._lock:
            started = self._started
        if not started or self._terminated.is_set():
            # Nothing to stop (as grpcio: a server not yet started may still be started; its
            # ports are released when it is dropped).
            event.set()
            return event
        future = _loop.submit(self._aio.stop(grace))

        def stopped(_: Any) -> None:
            self._terminated.set()
            event.set()

        future.add_done_callback(stopped)
        if grace is None:
            _loop.wait_event(event)
        return event

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Block until the server has stopped; True if ``timeout`` ran out first."""
        return not _loop.wait_event(self._terminated, timeout)

    async def _close_at_exit(self) -> None:
        await self._aio.stop(0)
        self._terminated.set()

    def __del__(self) -> None:
        # As grpcio's: a server that is garbage collected (or whose __del__ is called) while
        # serving shuts down at once, which also ends wait_for_termination() in other threads.
        terminated = getattr(self, "_terminated", None)
        if terminated is None or terminated.is_set() or not getattr(self, "_started", False):
            return  # (an unstarted aio server releases its ports when dropped)
        with contextlib.suppress(Exception):  # the loop may be gone at interpreter exit
            _loop.submit(self._aio.stop(None)).add_done_callback(lambda _: terminated.set())


class _Terminated(threading.Event):
    """Set once the server has stopped. While it serves, the background loop is pinned to its
    own thread: waiting callers must not lead it (asgi_grpc/_sync/_runner.py), requests are read
    at once whoever waits. Setting it unpins the loop (once)."""

    def __init__(self) -> None:
        super().__init__()
        self._pin_lock = threading.Lock()
        self._pinned = False

    def pin(self) -> None:
        with self._pin_lock:
            self._pinned = True
        _loop.pin()

    def unpin(self) -> None:
        with self._pin_lock:
            pinned, self._pinned = self._pinned, False
        if pinned:
            _loop.unpin()

    def set(self) -> None:
        super().set()
        self.unpin()


def server(
    thread_pool: Executor | None,
    handlers: Iterable[Any] | None = None,
    interceptors: Sequence[Any] | None = None,
    options: Sequence[tuple[str, Any]] | None = None,
    maximum_concurrent_rpcs: int | None = None,
    compression: Compression | None = None,
    xds: bool = False,
) -> Server:
    """grpc.server: a Server whose handlers run on ``thread_pool``."""
    if xds:
        # As grpcio's server without an xDS bootstrap: it serves, each port with its own
        # credentials (the fallback ones of xds_server_credentials).
        logging.getLogger("asgi_grpc.server").warning(
            "xDS is not supported by asgi_grpc: the server serves without an xDS control plane, "
            "each port with its fallback credentials"
        )
    return Server(
        thread_pool, handlers, interceptors, options, maximum_concurrent_rpcs, compression
    )
