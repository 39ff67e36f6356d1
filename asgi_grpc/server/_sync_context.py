"""The grpc.ServicerContext of sync handlers that an aio server runs on its thread pool.

A sync behaviour (a plain function) runs on a worker thread; its context and its request
iterator call back into the event loop that runs the call (:class:`~._call.ServicerContext`).
"""

from __future__ import annotations

import asyncio
import collections
import enum
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from .._core import Compression, MetadataLike, ProtocolError, StatusCode, coerce_status
from .._errors import AbortError, RpcError, UsageError
from .._wake import loop_inbox, post_to, thread_waker
from ._metadata_check import checked_metadata

logger = logging.getLogger("asgi_grpc.server")

if TYPE_CHECKING:
    from ._call import ServicerContext
    from ._requests import RequestBuffer

_SYNC_STREAM_BUFFER = 16  # responses a sync streaming handler may run ahead of the writes


#: Request messages a sync handler's iterator takes from the loop in one hand-off, when the
#: client sent them ahead: one hop per batch instead of one per message. Bounded in bytes too:
#: what a batch holds is no longer charged to the call's request buffer.
_REQUEST_BATCH = 64
_REQUEST_BATCH_BYTES = 64 * 1024
_WAIT_SLICE = 1.0  # a worker waiting on the loop checks again at least this often
_get_ident = threading.get_ident


class BlockingRequestIterator(Iterator[Any]):
    """For sync handlers on a worker thread: ``next`` waits on the event loop.

    One hand-off to the loop takes the next message and those already buffered behind it (up
    to ``_REQUEST_BATCH``); they are deserialized here, on the worker, one per ``next``. Once
    the call is over the iterator ends, releasing a thread blocked in ``next`` (the call's end
    closes its request buffer), so the worker goes back to the pool; messages taken ahead are
    then dropped, as the buffer drops its own. As grpcio's blocking server: ``RpcError`` if the
    call was cancelled (client gone, deadline, ``cancel()``, shutdown), ``StopIteration`` if it
    ended otherwise (the handler's status was sent).
    """

    __slots__ = ("_batch", "_call", "_post")

    def __init__(self, call: ServicerContext) -> None:
        self._call = call
        self._batch: collections.deque[Any] = collections.deque()
        self._post = post_to(call._loop)  # (made on the loop's thread: its inbox)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        call = self._call
        batch = self._batch
        try:
            if batch:
                if not call._done:
                    return call._deserialize(*batch.popleft())
                batch.clear()
            message = _on_loop(self._post, _take_requests, call, batch)
            if message is None:
                if call._cancel_reason is not None:
                    raise RpcError
                raise StopIteration
            return call._deserialize(*message)
        except ProtocolError:
            if call._cancel_reason is not None:
                raise RpcError from None
            raise


def _take_requests(call: ServicerContext, batch: collections.deque[Any], again: Any) -> Any:
    """On the loop: the next raw request message (None at the end), with the ones buffered
    behind it put in ``batch``; or, when there is none yet, ``_LATER``: ``again`` is called
    when there is."""
    requests = call._requests
    assert requests is not None
    if requests.when_ready(again):
        return _LATER
    message = requests.take()
    if message is not None:
        _fill(requests, batch)
    return message


def _fill(requests: RequestBuffer, batch: collections.deque[Any]) -> None:
    size = 0
    while requests.buffered and len(batch) < _REQUEST_BATCH - 1 and size < _REQUEST_BATCH_BYTES:
        message = requests.pop()
        size += len(message[1])
        batch.append(message)


_LATER = object()


def _on_loop(post: Callable[..., object], fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args, again)`` on the loop (``post``: its inbox's), waited for here; when it
    returns ``_LATER`` instead of its result, it has arranged for ``again()`` to be called on
    the loop, which calls it once more. Lighter than ``run_coroutine_threadsafe`` (no task, no
    concurrent future). The loop wakes this thread through its waker (asgi_grpc/_wake.py), not
    with the GIL held."""
    waker = thread_waker()
    waiter = _get_ident()
    outcome: list[Any] = []

    def start() -> None:
        try:
            result = fn(*args, start)
        except BaseException as exc:  # raised in the waiting thread
            outcome.append((False, exc))
        else:
            if result is _LATER:
                return
            outcome.append((True, result))
        if _get_ident() != waiter:  # (run by the waiting thread itself: asgi_grpc/_wake.py)
            waker.wake()

    post(start)
    while not outcome:  # (a wake-up may be left over from an earlier wait of this thread)
        waker.sleep(_WAIT_SLICE)
    ok, value = outcome[0]
    if ok:
        return value
    raise value


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

        post_to(call._loop)(cancel_on_loop)  # (in order with the handler's other hand-offs)

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


class _Responses:
    """Responses of a sync streaming handler, from its worker thread to the loop.

    The worker appends under a lock and, when the loop's side waits for responses, posts one
    hand-off (:meth:`_deliver`) per batch, not one per message. On the loop the hand-off frames
    the responses and queues them for the connection's writer at once (``push``: the call's
    :meth:`~._call.ServicerContext._push` through the server's body sink), without waking the
    call's task; what the sink does not take (the first response, with the headers; one that
    must wait for flow control or a write; the end) goes to the task, which sends it the ASGI
    way and takes everything queued after it, in order. The worker waits when
    ``_SYNC_STREAM_BUFFER`` responses are queued, until the loop takes them or the call is over
    (then ``put`` returns False and the handler's iterator is dropped)."""

    __slots__ = (
        "_cond",
        "_defer",
        "_flush",
        "_items",
        "_loop",
        "_post",
        "_posted",
        "_push",
        "_waiter",
        "_worker_waiting",
        "stopped",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        push: Callable[[Any], tuple[bytes, bytes] | None] | None,
        flush: Callable[[], None] | None,
    ) -> None:
        self._loop = loop
        inbox = loop_inbox(loop)  # (on the loop's thread: made if need be, asgi_grpc/_wake.py)
        self._post = inbox.post
        self._defer = inbox.defer
        self._push = push
        self._flush = flush
        self._cond = threading.Condition(threading.Lock())
        # (True, response), (None, (prefix, payload)) framed already, or the end: (False,
        # exception or None).
        self._items: list[tuple[bool | None, Any]] = []
        self._waiter: asyncio.Future[None] | None = None  # the task, waiting for items
        self._posted = False  # a _deliver is posted and has not run yet
        self._worker_waiting = False
        self.stopped = False

    # ------------------------------------------------------------------ worker side

    def put(self, item: tuple[bool, Any], wait: bool = True) -> bool:
        """Queue ``(True, response)`` or the end ``(False, exception or None)``; False once the
        call is over. ``wait``: block while the buffer is full (not for the end)."""
        cond = self._cond
        with cond:
            while wait and len(self._items) >= _SYNC_STREAM_BUFFER and not self.stopped:
                self._worker_waiting = True
                cond.wait(0.25)  # (in slices: ``stopped`` may come without a notify at exit)
            self._worker_waiting = False
            if self.stopped:
                return False
            self._items.append(item)
            post = self._waiter is not None and not self._posted
            if post:
                self._posted = True
        if post:
            try:  # noqa: SIM105 (once per batch: see asgi_grpc/_wake.py on suppress)
                self._post(self._deliver)
            except RuntimeError:  # the loop closed meanwhile
                pass
        return True

    # ------------------------------------------------------------------ loop side

    def _deliver(self) -> None:
        """On the loop, while the task waits: queue what the sink takes, wake the task for the
        rest (class docstring)."""
        cond = self._cond
        with cond:
            self._posted = False
            waiter = self._waiter
            # The task is sending (it takes them itself), or cancelled (nothing more goes out).
            if waiter is None or waiter.done():
                return
            items, self._items = self._items, []
            if self._worker_waiting:
                cond.notify()
        push = self._push
        rest: list[tuple[bool | None, Any]] = items
        if push is not None:
            pushed = 0
            for ok, response in items:
                if ok is not True:
                    break
                try:
                    framed = push(response)
                except BaseException as exc:  # (serializing it): raised by the task
                    rest = [(False, exc)]
                    break
                if framed is not None:
                    rest = [(None, framed), *items[pushed + 1 :]]
                    break
                pushed += 1
            else:
                rest = []
            if pushed:
                assert self._flush is not None
                self._defer(self._flush)  # once, after every hand-off of this wake-up
            if not rest:
                return
            if rest is items:
                rest = items[pushed:]
        with cond:
            self._items[:0] = rest
            waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def take(self) -> list[tuple[bool | None, Any]]:
        """What the sink did not take, in order, waiting for at least one item."""
        cond = self._cond
        while True:
            with cond:
                items = self._items
                if items:
                    self._items = []
                    if self._worker_waiting:
                        cond.notify()
                    return items
                # (What the worker put while the task was sending is taken above; what it puts
                # from here on finds the waiter and posts a _deliver.)
                waiter = self._waiter = self._loop.create_future()
            await waiter

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._waiter = None
            self._cond.notify_all()


async def run_sync_stream(
    call: ServicerContext, behavior: Callable[..., Any], request: Any
) -> None:
    """Run a sync response-streaming behaviour on a worker thread; its responses come over
    ``_Responses`` (at most ``_SYNC_STREAM_BUFFER`` queued) to be written here, or straight
    from the hand-off to the server's writer where it has a body sink."""
    sink = call._body_sink()
    if sink is None:
        responses = _Responses(call._loop, None, None)
    else:
        responses = _Responses(call._loop, functools.partial(call._push, sink[0]), sink[1])
    put = responses.put

    def send_response(response: Any) -> None:
        # grpcio's experimental_non_blocking callback: None ends the call (with the status set
        # on the context, OK by default).
        if response is None:
            put((False, None), wait=False)
        else:
            put((True, response))

    non_blocking = getattr(behavior, "experimental_non_blocking", False)

    def produce() -> None:
        try:
            if non_blocking:
                # Returns at once; responses come through send_response from any thread.
                behavior(request, _SyncContext(call), send_response)
                return
            results = behavior(request, _SyncContext(call))
            for response in results if results is not None else ():
                if not put((True, response)):
                    return
        except BaseException as exc:  # handed to the loop, raised there
            put((False, exc), wait=False)
        else:
            put((False, None), wait=False)

    producer = call._app.run_sync(produce)
    write = call._write
    send_framed = call._send_framed
    try:
        while True:
            for ok, item in await responses.take():
                if ok is None:
                    await send_framed(*item)
                elif ok:
                    await write(item)
                else:
                    if item is not None:
                        raise item
                    await producer
                    return
    finally:
        responses.stop()
