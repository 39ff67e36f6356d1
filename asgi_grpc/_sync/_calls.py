"""Sync call objects: grpc.Call + grpc.Future (+ iterator) over one grpc.aio call.

Each object is driven from the background loop and read from any thread. The loop side starts
the aio call, pumps what it produces (initial metadata, responses, the status) into this object
under one condition (``_loop.WakeCondition``), and the thread side waits on that condition. Only
state changes cross threads: a unary call costs one hand-off to the loop and one wake-up back, a
response stream wakes its reader only when the reader is waiting, and the loop is asked for more
only when a bounded buffer has drained to half.

As in grpcio, a failed call is itself the exception (``RpcError`` and ``grpc.Call``), so
``except grpc.RpcError as e: e.code()`` works on whatever was raised.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, NamedTuple

from .._core import StatusCode
from .._errors import EOF, RpcError
from ..client._call_kinds import _UnaryResponse
from . import _loop
from ._abc import Call, Future, FutureCancelledError, FutureTimeoutError

logger = logging.getLogger("asgi_grpc.sync")

CANCELLED_DETAILS = "Locally cancelled by application!"
REQUESTS_FAILED_DETAILS = "Exception iterating requests!"
SERIALIZE_DETAILS = "Exception serializing request!"
DESERIALIZE_DETAILS = "Exception deserializing response!"
#: Response messages read ahead of a slow reader (the rest waits in HTTP/2 flow control).
RESPONSE_BUFFER = 16
#: Request messages taken from the iterator ahead of the connection.
REQUEST_BUFFER = 16


class Metadatum(NamedTuple):
    """One metadata entry, as grpcio's sync API hands them out (``.key`` / ``.value``)."""

    key: str
    value: str | bytes


def metadata_tuple(metadata: Iterable[tuple[str, str | bytes]] | None) -> tuple[Metadatum, ...]:
    if not metadata:
        return ()
    return tuple(Metadatum(key, value) for key, value in metadata)


def call_metadata(metadata: Any) -> tuple[tuple[str, str | bytes], ...] | None:
    """A call's metadata, checked in the caller's thread before anything is sent.

    As grpcio: anything that is not an iterable of (key, value) pairs, or a key or value that is
    neither str nor bytes, raises TypeError at the call site; bytes keys are accepted (decoded,
    as grpcio sends them verbatim)."""
    if metadata is None:
        return None
    pairs: list[tuple[str, str | bytes]] = []
    for key, value in metadata:  # TypeError for a non-iterable or a non-pair, as grpcio
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        elif not isinstance(key, str):
            raise TypeError(f"Expected str, not {type(key)}")
        if not isinstance(value, (str, bytes)):
            raise TypeError(f"Expected str, not {type(value)}")
        pairs.append((key, value))
    return tuple(pairs)


MakeCall = Callable[[], Any]  # run on the loop: starts and returns the grpc.aio call
Serializer = Callable[[Any], bytes]
Deserializer = Callable[[bytes], Any]


class SerializationFailed(Exception):
    """A request could not be serialized: the call ends with this status, nothing is sent."""

    def __init__(self, code: StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


def _expected_bytes(request: Any) -> TypeError:
    return TypeError(
        f"Argument 'message' has incorrect type (expected bytes, got {type(request).__name__})"
    )


def serialize_request(serializer: Serializer | None, request: Any) -> bytes:
    """A unary request as the bytes to send, in the caller's thread, with grpcio's errors: a
    serializer that raises (or a None request) fails the call INTERNAL, a result that is not
    bytes raises TypeError at the call site."""
    if serializer is not None:
        try:
            request = serializer(request)
        except Exception:
            logger.exception(SERIALIZE_DETAILS)
            raise SerializationFailed(StatusCode.INTERNAL, SERIALIZE_DETAILS) from None
    if request is None:
        raise SerializationFailed(StatusCode.INTERNAL, SERIALIZE_DETAILS)
    if not isinstance(request, bytes):
        raise _expected_bytes(request)
    return request


def serialize_requests(serializer: Serializer | None, requests: Any) -> Any:
    """A list or tuple of requests, serialized up front; any failure fails the call UNKNOWN,
    as grpcio's iteration of such requests does."""
    try:
        if serializer is not None:
            requests = [serializer(request) for request in requests]
        for request in requests:
            if not isinstance(request, bytes):
                raise _expected_bytes(request)
    except Exception:
        logger.exception(REQUESTS_FAILED_DETAILS)
        raise SerializationFailed(StatusCode.UNKNOWN, REQUESTS_FAILED_DETAILS) from None
    return requests


def _no_loop(*args: Any) -> None:
    raise RuntimeError("no event loop")  # (a finished call from a pickle never posts)


class SyncCall(RpcError, Call, Future):
    """What every sync call shares: status, metadata, deadline, cancellation and callbacks."""

    _kind = "_MultiThreadedRendezvous"

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> None:
        super().__init__()
        self._loop = loop
        # Callbacks for the loop from other threads (RuntimeError once it is closed).
        self._post: Callable[..., object] = _loop.poster(loop) if loop is not None else _no_loop
        self._cond = _loop.WakeCondition()
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._code: StatusCode | None = None
        self._details: str | None = None
        self._initial: tuple[Metadatum, ...] | None = None
        self._trailing: tuple[Metadatum, ...] | None = None
        self._debug: str | None = None
        self._cancelled = False
        self._callbacks: list[Callable[[], Any]] | None = []
        self._response: Any = None
        self._aio: Any = None
        self._task: asyncio.Task[None] | None = None
        self._feed: RequestFeed | None = None
        self._deserialize: Deserializer | None = None
        #: A blocking call's start, left to its first wait (:meth:`start_here`).
        self._make: MakeCall | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # A failed call is also the error raised; errors cross process boundaries
        # (multiprocessing, Celery, logging handlers), so one pickles as what it says (status,
        # details, metadata), without the loop and lock behind it. grpcio's cannot be pickled.
        if self._code is None:
            raise TypeError(f"cannot pickle {type(self).__name__} of an RPC still in progress")
        return (
            _unpickle_error,
            (self._code, self._details, self._initial, self._trailing, self._debug),
        )

    # ------------------------------------------------------------------ loop side

    def _launch(self, make: MakeCall) -> None:
        """On the loop: start the aio call and the task that follows it."""
        if self._code is not None:  # cancelled before it started
            if self._feed is not None:
                self._feed.close()
            return
        try:
            self._aio = make()
        except RpcError as exc:
            self._finish_error(exc)
            return
        except Exception as exc:
            self._finish(StatusCode.INTERNAL, f"Exception serializing request! ({exc!r})")
            return
        self._follow()

    def start_here(self) -> None:
        """The first wait of a blocking call runs its start on the loop (this thread took it,
        as a loop callback would): the request is on its way one loop pass and one hand-off
        through the loop's inbox (an eventfd write and read) sooner."""
        make, self._make = self._make, None
        if make is not None:
            self._launch(make)

    def start_posted(self) -> None:
        """The first wait of a blocking call hands its start to the loop (another thread runs
        it, or the loop is not led)."""
        make, self._make = self._make, None
        if make is not None:
            try:
                self._post(self._launch, make)
            except RuntimeError:  # the loop was closed: interpreter exit
                raise ValueError("Cannot invoke RPC: Channel closed!") from None

    def _follow(self) -> None:
        """On the loop, once the aio call is started: follow it to its end."""
        self._task = self._loop.create_task(self._drive())

    async def _drive(self) -> None:
        raise NotImplementedError

    def _finish_error(self, exc: Any) -> None:
        self._finish(
            exc.code(),
            exc.details(),
            exc.initial_metadata(),
            exc.trailing_metadata(),
            exc.debug_error_string() if hasattr(exc, "debug_error_string") else None,
        )

    def _finish_cancelled(self) -> None:
        aio = self._aio
        if aio is not None and not aio.done():
            aio.cancel()
        self._finish(StatusCode.CANCELLED, CANCELLED_DETAILS)

    async def _finish_from_call(self) -> None:
        """The aio call ended OK: take its status and metadata."""
        aio = self._aio
        self._finish(
            await aio.code(),
            await aio.details(),
            await aio.initial_metadata(),
            await aio.trailing_metadata(),
        )

    def _finish(
        self,
        code: StatusCode,
        details: str | None,
        initial: Any = None,
        trailing: Any = None,
        debug: str | None = None,
    ) -> bool:
        """Settle the status (first one wins), wake every waiter, run the callbacks."""
        with self._cond:
            if self._code is not None:
                return False
            if self._initial is None:
                self._initial = metadata_tuple(initial)
            self._trailing = metadata_tuple(trailing)
            self._details = details if details is not None else ""
            self._debug = debug
            self._code = code
            self._cond.notify_all()
            callbacks, self._callbacks = self._callbacks, None
        self._after_finish(callbacks)
        return True

    def _after_finish(self, callbacks: list[Callable[[], Any]] | None) -> None:
        feed = self._feed
        if feed is not None:
            if _loop.on_loop():
                feed.close()
            else:
                self._post(feed.close)
        if callbacks:
            for callback in callbacks:
                _loop.dispatch(callback)

    def _cancel_on_loop(self) -> None:
        aio = self._aio
        if aio is not None and not aio.done():
            aio.cancel()

    def _requests_failed(
        self, code: StatusCode = StatusCode.UNKNOWN, details: str = REQUESTS_FAILED_DETAILS
    ) -> None:
        """On the loop: the request iterator raised (or was not iterable), or a request could
        not be serialized. As grpcio, the call ends at once (UNKNOWN, or INTERNAL for the
        serializer), and the stream is reset so the server never sees a complete request."""
        if self._finish(code, details):
            self._cancel_on_loop()

    def _deserialize_failed(self) -> None:
        """On the loop: a response could not be deserialized; the call ends INTERNAL."""
        logger.exception(DESERIALIZE_DETAILS)
        if self._finish(StatusCode.INTERNAL, DESERIALIZE_DETAILS):
            self._cancel_on_loop()

    # ------------------------------------------------------------------ grpc.RpcContext

    def is_active(self) -> bool:
        return self._code is None

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(self._deadline - time.monotonic(), 0.0)

    def cancel(self) -> bool:
        """Cancel the RPC (the server sees RST_STREAM CANCEL); False if it has already ended."""
        with self._cond:
            if self._code is not None:
                return False
            self._cancelled = True
            if self._initial is None:
                self._initial = ()
            self._trailing = ()
            self._code = StatusCode.CANCELLED
            self._details = CANCELLED_DETAILS
            self._cond.notify_all()
            callbacks, self._callbacks = self._callbacks, None
        with contextlib.suppress(RuntimeError):  # the loop has been closed (interpreter exit)
            self._post(self._cancel_on_loop)
        self._after_finish(callbacks)
        return True

    def add_callback(self, callback: Callable[[], Any]) -> bool:
        with self._cond:
            if self._callbacks is None:
                return False
            self._callbacks.append(callback)
        _loop.kick()  # it must run when the call ends, whether or not anyone waits
        return True

    # ------------------------------------------------------------------ grpc.Call

    def _wait(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait (signals get through) until ``predicate()``; cancel the RPC if interrupted."""
        try:
            with self._cond:
                start = self if self._make is not None else None
                done = _loop.wait_condition(self._cond, predicate, timeout, start)
        except BaseException:
            self.cancel()
            raise
        _loop.park_if_exiting()
        return done

    def _is_done(self) -> bool:
        return self._code is not None

    def initial_metadata(self) -> tuple[Metadatum, ...]:
        self._wait(lambda: self._initial is not None or self._code is not None)
        return self._initial or ()

    def trailing_metadata(self) -> tuple[Metadatum, ...]:
        self._wait(self._is_done)
        return self._trailing or ()

    def code(self) -> StatusCode:
        self._wait(self._is_done)
        assert self._code is not None
        return self._code

    def details(self) -> str | None:
        self._wait(self._is_done)
        return self._details

    def debug_error_string(self) -> str:
        self._wait(self._is_done)
        if self._debug:
            return self._debug
        code = self._code
        assert code is not None
        if code is StatusCode.OK:
            return ""  # as grpcio: nothing to debug
        return f"{code.name}: {self._details}"

    # ------------------------------------------------------------------ grpc.Future

    def cancelled(self) -> bool:
        return self._cancelled

    def running(self) -> bool:
        return self._code is None

    def done(self) -> bool:
        return self._code is not None

    def _wait_done(self, timeout: float | None) -> None:
        if not self._wait(self._is_done, timeout):
            raise FutureTimeoutError()

    def result(self, timeout: float | None = None) -> Any:
        self._wait_done(timeout)
        if self._code is StatusCode.OK:
            return self._response
        if self._cancelled:
            raise FutureCancelledError()
        raise self

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._wait_done(timeout)
        if self._code is StatusCode.OK:
            return None
        if self._cancelled:
            raise FutureCancelledError()
        return self

    def traceback(self, timeout: float | None = None) -> TracebackType | None:
        self._wait_done(timeout)
        if self._code is StatusCode.OK:
            return None
        if self._cancelled:
            raise FutureCancelledError()
        try:
            raise self
        except RpcError:
            return sys.exc_info()[2]

    def add_done_callback(self, fn: Callable[[Any], Any]) -> None:
        with self._cond:
            if self._callbacks is not None:
                self._callbacks.append(functools.partial(fn, self))
                added = True
            else:
                added = False
        if added:
            _loop.kick()  # it must run when the call ends, whether or not anyone waits
        else:
            fn(self)

    # ------------------------------------------------------------------ presentation

    def __repr__(self) -> str:
        if self._code is None:
            return f"<{self._kind} object of in-flight RPC>"
        return (
            f"<{self._kind} of RPC that terminated with:\n"
            f"\tstatus = {self._code}\n"
            f'\tdetails = "{self._details}"\n'
            f'\tdebug_error_string = "{self.debug_error_string()}"\n>'
        )

    __str__ = __repr__


class UnaryResponseCall(SyncCall):
    """A call with one response: unary-unary and stream-unary (``future()``, ``with_call``)."""

    def _follow(self) -> None:
        # Our own aio call (not one an interceptor returned): its start task ends with the
        # response and the status settled, so a done callback takes both without a task and
        # five awaits of its own per call (about a tenth of a blocking unary call's CPU).
        aio = self._aio
        start = aio._start if isinstance(aio, _UnaryResponse) else None
        if start is None:
            super()._follow()
        else:
            # A response settles this call from inside the task, in the pass that read it
            # (_on_result); the task's end (_on_start_done) then finds it settled.
            aio._follower = self

    def _on_start_done(self, start: asyncio.Task[Any]) -> None:
        """What ``_drive`` does, from the finished start task (as ``await aio`` would)."""
        aio = self._aio
        exc: BaseException | None
        if start.cancelled():
            # As the aio call's __await__: cancelled by its own end (a deadline) raises that.
            if aio._status is not None and not aio.cancelled():
                exc = aio._error()
            else:
                exc = asyncio.CancelledError()
        else:
            exc = start.exception()
        if exc is not None:
            if isinstance(exc, RpcError):
                self._finish_error(exc)
            elif isinstance(exc, asyncio.CancelledError):
                self._finish_cancelled()
            else:
                logger.error("asgi_grpc call failed", exc_info=exc)
                self._finish(StatusCode.INTERNAL, f"asgi_grpc internal error: {exc!r}")
            return
        if self._code is None:  # (else settled by _on_result, or cancelled meanwhile)
            self._on_result(start.result())

    def _on_result(self, response: Any) -> None:
        """The aio call ended OK with ``response`` (called by its start task, or by the done
        callback of that task)."""
        if self._code is not None:  # cancelled meanwhile: nothing to deserialize
            return
        deserialize = self._deserialize
        if deserialize is not None:
            try:
                response = deserialize(response)
            except Exception:
                self._deserialize_failed()
                return
        self._response = response
        aio = self._aio
        status = aio._status
        self._finish(status.code, status.details, aio._initial_metadata, status.metadata)

    async def _drive(self) -> None:
        aio = self._aio
        try:
            response = await aio
        except RpcError as exc:
            self._finish_error(exc)
            return
        except asyncio.CancelledError:
            self._finish_cancelled()
            return
        except Exception as exc:  # a bug below us: end the call rather than hang its waiters
            logger.exception("asgi_grpc call failed")
            self._finish(StatusCode.INTERNAL, f"asgi_grpc internal error: {exc!r}")
            return
        deserialize = self._deserialize
        if deserialize is not None:
            try:
                response = deserialize(response)
            except Exception:
                self._deserialize_failed()
                return
        self._response = response
        await self._finish_from_call()

    def _block(self) -> Any:
        """Wait for the end; the response, or raise the error (as ``_InactiveRpcError``)."""
        self._wait(self._is_done)
        if self._code is StatusCode.OK:
            return self._response
        raise InactiveRpcError(self)


class InactiveRpcError(SyncCall):
    """The error a blocking call raises: a finished call's status (grpcio's name for it)."""

    _kind = "_InactiveRpcError"

    def __init__(self, call: SyncCall) -> None:
        super().__init__(call._loop, None)
        self._code = call._code
        self._details = call._details
        self._initial = call._initial
        self._trailing = call._trailing
        self._debug = call._debug
        self._callbacks = None

    def cancel(self) -> bool:
        return False


_InactiveRpcError = InactiveRpcError


def _unpickle_error(
    code: StatusCode,
    details: str | None,
    initial: tuple[Metadatum, ...] | None,
    trailing: tuple[Metadatum, ...] | None,
    debug: str | None,
) -> InactiveRpcError:
    """A pickled sync error, back as the finished call it described (with no loop)."""
    error = InactiveRpcError.__new__(InactiveRpcError)
    SyncCall.__init__(error, None, None)  # type: ignore[arg-type]  # never touches a loop
    error._code, error._details, error._debug = code, details, debug
    error._initial, error._trailing = initial, trailing
    error._callbacks = None
    return error


class ResponseStreamCall(SyncCall, Iterator[Any]):
    """A call with streamed responses: an iterator that is also grpc.Call and grpc.Future."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> None:
        super().__init__(loop, timeout)
        self._responses: collections.deque[Any] = collections.deque()
        self._space: asyncio.Future[None] | None = None
        self._reading = False

    async def _drive(self) -> None:
        aio = self._aio
        cond = self._cond
        responses = self._responses
        loop = self._loop
        deserialize = self._deserialize
        try:
            initial = await aio.initial_metadata()
            with cond:
                if self._initial is None:
                    self._initial = metadata_tuple(initial)
                cond.notify_all()
            while True:
                message = await aio.read()
                if message is EOF:
                    break
                if deserialize is not None:
                    try:
                        message = deserialize(message)
                    except Exception:
                        self._deserialize_failed()
                        return
                with cond:
                    if self._code is not None:
                        return
                    responses.append(message)
                    if self._reading:
                        cond.notify()
                    waiter = None
                    if len(responses) >= RESPONSE_BUFFER:
                        waiter = self._space = loop.create_future()
                if waiter is not None:
                    await waiter
        except RpcError as exc:
            self._finish_error(exc)
            return
        except asyncio.CancelledError:
            self._finish_cancelled()
            return
        except Exception as exc:
            logger.exception("asgi_grpc call failed")
            self._finish(StatusCode.INTERNAL, f"asgi_grpc internal error: {exc!r}")
            return
        await self._finish_from_call()

    def _has_response(self) -> bool:
        return bool(self._responses) or self._code is not None

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        cond = self._cond
        try:
            with cond:
                waited = not self._responses and self._code is None
                if waited:
                    self._reading = True
                    try:
                        _loop.wait_condition(cond, self._has_response)
                    finally:
                        self._reading = False
            if waited:
                _loop.park_if_exiting()
            with cond:
                if self._cancelled:
                    raise self
                if self._responses:
                    message = self._responses.popleft()
                    waiter = self._space
                    if waiter is not None and len(self._responses) <= RESPONSE_BUFFER // 2:
                        self._space = None
                        self._post(_release, waiter)
                    return message
                if self._code is StatusCode.OK:
                    raise StopIteration
                raise self
        except (StopIteration, RpcError):
            raise
        except BaseException:
            self.cancel()
            raise

    def next(self) -> Any:
        """Python 2 spelling, kept by grpcio."""
        return self.__next__()

    def _cancel_on_loop(self) -> None:
        super()._cancel_on_loop()
        waiter, self._space = self._space, None
        if waiter is not None:
            _release(waiter)


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_END = object()


class RequestFeed:
    """A request iterator consumed on a daemon thread of its own (``next()`` may block), handed to
    the aio call as an async iterator; bounded, so a fast iterator waits for the connection."""

    def __init__(
        self, call: SyncCall, iterator: Iterable[Any], serializer: Serializer | None = None
    ) -> None:
        self._call = call
        self._iterator = iterator
        self._serializer = serializer
        self._queue: collections.deque[Any] = collections.deque()
        self._getter: asyncio.Future[None] | None = None
        self._producer_waiting = False
        self._closed = False
        # The producer waits for space on a condition of its own: on the call's, each request
        # taken would also stop a thread that runs the loop while it waits for the call
        # (asgi_grpc/_sync/_runner.py), and a notify meant for one could wake the other.
        self._space = _loop.WakeCondition()
        call._feed = self

    def start(self) -> None:
        threading.Thread(target=self._produce, name="asgi_grpc-requests", daemon=True).start()

    # ------------------------------------------------------------------ thread side

    def _has_space(self) -> bool:
        return len(self._queue) < REQUEST_BUFFER or self._closed

    def _put(self, item: Any) -> bool:
        cond = self._call._cond
        with cond:
            if self._closed:
                return False
            full = len(self._queue) >= REQUEST_BUFFER
            if full:
                self._producer_waiting = True
        if full:
            # Woken once the queue drained to half (or the call ended); the flag was set
            # first, so the loop side notifies under this condition's lock after it made space.
            space = self._space
            try:
                with space:
                    _loop.wait_condition(space, self._has_space)
            finally:
                self._producer_waiting = False
        with cond:
            if self._closed:
                return False
            self._queue.append(item)
            getter, self._getter = self._getter, None
        if getter is not None:
            try:
                self._call._post(_release, getter)
            except RuntimeError:  # loop closed at exit
                return False
        return True

    def _produce(self) -> None:
        serializer = self._serializer
        try:
            iterator = iter(self._iterator)
            while not self._closed:
                try:
                    request = next(iterator)
                except StopIteration:
                    self._put(_END)
                    return
                if serializer is not None:
                    # Serialized here, off the loop thread; a serializer that raises ends the
                    # call INTERNAL, as grpcio.
                    try:
                        request = serializer(request)
                    except Exception:
                        logger.exception(SERIALIZE_DETAILS)
                        self._fail(StatusCode.INTERNAL, SERIALIZE_DETAILS)
                        return
                if not isinstance(request, bytes):
                    raise _expected_bytes(request)
                if not self._put(request):
                    return
        except Exception:
            logger.exception(REQUESTS_FAILED_DETAILS)
            self._fail(StatusCode.UNKNOWN, REQUESTS_FAILED_DETAILS)

    def _fail(self, code: StatusCode, details: str) -> None:
        call = self._call
        with contextlib.suppress(RuntimeError):  # the loop was closed (interpreter exit)
            call._post(call._requests_failed, code, details)

    # ------------------------------------------------------------------ loop side

    def close(self) -> None:
        """On the loop, once the call has ended: stop both sides."""
        with self._call._cond:
            self._closed = True
            waiting = self._producer_waiting
            getter, self._getter = self._getter, None
        if waiting:
            self._wake_producer()
        if getter is not None:
            _release(getter)

    def _wake_producer(self) -> None:
        space = self._space
        with space:
            space.notify_all()

    async def iterate(self) -> AsyncIterator[Any]:
        """The requests, as the async iterator the aio call reads."""
        cond = self._call._cond
        queue = self._queue
        loop = self._call._loop
        while True:
            with cond:
                if queue:
                    item = queue.popleft()
                    wake = self._producer_waiting and len(queue) <= REQUEST_BUFFER // 2
                    if wake:
                        self._producer_waiting = False
                    getter = None
                elif self._closed:
                    return
                else:
                    getter = self._getter = loop.create_future()
            if getter is not None:
                await getter
                continue
            if wake:  # (set with the item taken)
                self._wake_producer()
            if item is _END:
                return
            yield item
