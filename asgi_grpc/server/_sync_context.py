"""The grpc.ServicerContext of sync handlers that an aio server runs on its thread pool.

A sync behaviour (a plain function) runs on a worker thread; its context and its request
iterator call back into the event loop that runs the call (:class:`~._call.ServicerContext`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from .._core import Compression, MetadataLike, ProtocolError, StatusCode, coerce_status
from .._errors import EOF, AbortError, RpcError, UsageError
from ._metadata_check import checked_metadata

logger = logging.getLogger("asgi_grpc.server")

if TYPE_CHECKING:
    from ._call import ServicerContext

_SYNC_STREAM_BUFFER = 16  # responses a sync streaming handler may run ahead of the writes


class BlockingRequestIterator(Iterator[Any]):
    """For sync handlers on a worker thread: each ``next`` waits on the event loop.

    Once the call is over the iterator ends, releasing a thread blocked in ``next`` (the call's
    end closes its request buffer), so the worker goes back to the pool. As grpcio's blocking
    server: ``RpcError`` if the call was cancelled (client gone, deadline, ``cancel()``,
    shutdown), ``StopIteration`` if it ended otherwise (the handler's status was sent).
    """

    def __init__(self, call: ServicerContext) -> None:
        self._call = call

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        call = self._call
        future = asyncio.run_coroutine_threadsafe(call._next_request(), call._loop)
        try:
            message = future.result()
        except ProtocolError:
            if call._cancel_reason is not None:
                raise RpcError from None
            raise
        if message is EOF:
            if call._cancel_reason is not None:
                raise RpcError
            raise StopIteration
        return message


class _SyncContext:
    """grpc.ServicerContext for sync handlers running on a worker thread of an aio server."""

    __slots__ = ("_call",)

    def __init__(self, call: ServicerContext) -> None:
        self._call = call

    def _run(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._call._loop).result()  # type: ignore[arg-type]

    def abort(self, code: Any, details: str = "") -> NoReturn:
        call = self._call
        if call._abort_called:
            raise UsageError("Abort already called!")
        status = _blocking_status(code)
        if status is StatusCode.OK:
            # As grpcio's blocking server: aborting with OK fails the call, without details.
            logger.error("abort() called with StatusCode.OK; returning UNKNOWN")
            status, details = StatusCode.UNKNOWN, ""
        call._abort_called = True
        call._code = status
        call._details = details
        # grpcio's sync abort raises a plain Exception subclass the handler should not catch.
        raise AbortError(f"Locally aborted: {status.name} {details}")

    def abort_with_status(self, status: Any) -> NoReturn:
        self._call._trailing_metadata = status.trailing_metadata
        self.abort(status.code, status.details)

    def send_initial_metadata(self, initial_metadata: MetadataLike) -> None:
        self._run(self._call.send_initial_metadata(initial_metadata))

    def set_trailing_metadata(self, trailing_metadata: MetadataLike) -> None:
        self._call._trailing_metadata = checked_metadata(trailing_metadata)

    def details(self) -> bytes | None:
        """As grpcio's blocking context: the details set so far, UTF-8 encoded."""
        details = self._call._details
        return None if details is None else details.encode("utf-8")

    def set_compression(self, compression: Compression) -> None:
        # grpcio's blocking server ignores a late set_compression (the aio one raises).
        if not self._call._sent_headers:
            self._call.set_compression(compression)

    def add_callback(self, callback: Callable[[], Any]) -> bool:
        call = self._call

        async def add() -> bool:
            # On the loop, so it cannot race with the call finishing (and its callbacks running).
            if call._done:
                return False
            # grpcio runs these on its own threads: a blocking callback must not stall the loop.
            call._callbacks.append(lambda _context: call._app.run_sync(callback))
            return True

        return bool(self._run(add()))

    def cancel(self) -> None:
        """End the call with CANCELLED now (as grpcio's server does); the handler is not
        stopped, but ``is_active()`` turns False and what it sends later is dropped."""
        call = self._call

        def cancel_on_loop() -> None:
            if not call._done and call._cancel_reason is None:
                call._cancel_reason = "cancelled"
                if call._task is not None:
                    call._task.cancel()

        call._loop.call_soon_threadsafe(cancel_on_loop)

    def __getattr__(self, name: str) -> Any:
        # Everything else is the same synchronous method as on the aio context.
        return getattr(self._call, name)


def _blocking_status(code: Any) -> StatusCode:
    """The status of grpc's blocking ``abort(code)``: grpcio knows only StatusCode members
    there, and ends the call UNKNOWN for anything else (a plain int included)."""
    if isinstance(code, int) and not isinstance(code, enum.Enum):
        return StatusCode.UNKNOWN
    try:
        return coerce_status(code)
    except TypeError:
        return StatusCode.UNKNOWN


async def run_sync_stream(
    call: ServicerContext, behavior: Callable[..., Any], request: Any
) -> None:
    """Run a sync response-streaming behaviour on a worker thread; its responses come over
    a queue (at most ``_SYNC_STREAM_BUFFER`` ahead of the writes) to be written here."""
    loop = call._loop
    queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()
    put = queue.put_nowait
    slots = threading.Semaphore(_SYNC_STREAM_BUFFER)
    stop = threading.Event()

    def send(response: Any) -> bool:
        while not slots.acquire(timeout=0.1):
            if stop.is_set():
                return False
        if stop.is_set():
            return False
        loop.call_soon_threadsafe(put, (True, response))
        return True

    def send_response(response: Any) -> None:
        # grpcio's experimental_non_blocking callback: None ends the call (with the status set
        # on the context, OK by default).
        if response is None:
            loop.call_soon_threadsafe(put, (False, None))
        else:
            send(response)

    non_blocking = getattr(behavior, "experimental_non_blocking", False)

    def produce() -> None:
        try:
            if non_blocking:
                # Returns at once; responses come through send_response from any thread.
                behavior(request, _SyncContext(call), send_response)
                return
            responses = behavior(request, _SyncContext(call))
            for response in responses if responses is not None else ():
                if not send(response):
                    return
        except BaseException as exc:  # handed to the loop, raised there
            loop.call_soon_threadsafe(put, (False, exc))
        else:
            loop.call_soon_threadsafe(put, (False, None))

    producer = call._app.run_sync(produce)
    try:
        while True:
            ok, item = await queue.get()
            if not ok:
                if item is not None:
                    raise item
                break
            slots.release()
            await call._write(item)
    finally:
        stop.set()
    await producer
