"""grpc.aio's UnaryUnaryCall, UnaryStreamCall, StreamUnaryCall and StreamStreamCall.

Response side: one response awaited (``_UnaryResponse``) or a stream read one by one
(``_ResponseStream``). Request side: one request sent with the headers, or a stream fed by an
iterator pumped in a task, or by ``write()`` / ``done_writing()`` (``_RequestStream``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Generator
from typing import Any, Generic, Protocol, TypeVar

from .._core import ProtocolError, StatusCode
from .._errors import EOF, UsageError
from ._base import CANCELLED_DETAILS, EMPTY, FINISHED_DETAILS, HALF_CLOSED_DETAILS, Status
from ._call import Call, logger
from ._rpc_error import AioRpcError, InvalidStateError
from ._transport_errors import TransportError

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

_CANCELLED_DETAILS = CANCELLED_DETAILS
_EMPTY = EMPTY
_Status = Status
_InvalidStateError = InvalidStateError


class _ResponseStream(Call):
    """Calls whose responses are read one by one (``read()`` / ``async for``)."""

    __slots__ = ("_iterating", "_read_used")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._iterating = False
        self._read_used = False

    async def read(self) -> Any:
        """The next response, or :data:`~asgi_grpc.aio.EOF` after the last one."""
        if self._iterating:
            if self._status is None or self._messages:
                raise UsageError("Cannot mix read() with async iteration over the call")
            # As grpc.aio: an ended call reads EOF (or raises its error) whatever the style.
            return await self._next_message()
        self._read_used = True
        return await self._read_cancellable()

    async def _read_cancellable(self) -> Any:
        try:
            return await self._next_message()
        except asyncio.CancelledError:
            # As grpc.aio: cancelling a task blocked in a read cancels the RPC.
            if self._status is None:
                self._abort(StatusCode.CANCELLED, _CANCELLED_DETAILS)
            raise

    def __aiter__(self) -> AsyncIterator[Any]:
        if self._read_used:
            raise UsageError("Cannot mix async iteration with read() on the call")
        self._iterating = True
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            message = await self._read_cancellable()
            if message is EOF:
                return
            yield message


class _UnaryResponse(Call):
    """Calls that end with one response: awaiting the call returns it."""

    __slots__ = ("_follower",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        #: The blocking API's call following this one (asgi_grpc/_sync/_calls.py), if any. The
        #: start task hands it the response once the call has ended OK, before returning it:
        #: it settles its call there, in the loop pass that read the response, not in a done
        #: callback of the task one pass later (a whole pass of the loop per blocking call).
        #: And it learns that the task is done from this call's own done callback (one
        #: callback scheduled per call, not two).
        self._follower: _Follower | None = None

    async def _wait_status(self) -> _Status:
        # The start task reads the response; wait for it to settle the status.
        while self._status is None:
            if self._status_waiter is None:
                self._status_waiter = self._loop.create_future()
            await asyncio.shield(self._status_waiter)
        return self._status

    async def _read_response(self) -> Any:
        """Read the one response message and the status (runs in the start task)."""
        await self._await_headers()
        response = await self._next_message()
        if response is EOF:  # the status was OK, but there is no response
            self._status = None
            self._settle(_Status(StatusCode.INTERNAL, "No response message received", _EMPTY))
            raise self._error()
        last = await self._next_message()
        if last is not EOF:
            self._protocol_error(
                ProtocolError(StatusCode.UNIMPLEMENTED, "Too many responses for a unary call")
            )
            raise self._error()
        return response

    def _cancelled_await(self) -> None:
        """The start task was cancelled: by ``cancel()`` or a deadline (the status is set), or
        because the task awaiting the call was cancelled, which cancels the RPC (grpc.aio)."""
        if self._status is None:
            self._abort(StatusCode.CANCELLED, _CANCELLED_DETAILS)

    def _watch_start(self) -> None:
        # Nobody may await the call (only code() or wait_for_connection()): its failure is
        # then reported by those, not as "Task exception was never retrieved".
        assert self._start is not None
        self._start.add_done_callback(self._start_done)

    def _start_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled():
            task.exception()  # (retrieved)
        follower = self._follower
        if follower is not None:
            self._follower = None  # (it refers back to this call: no cycle left for the GC)
            follower._on_start_done(task)

    def _result(self, response: Any) -> Any:
        """The start task's last step: ``response`` to the follower, then to the awaiter."""
        follower = self._follower
        if follower is not None:
            follower._on_result(response)
        return response

    def __await__(self) -> Generator[Any, None, Any]:
        start = self._start
        assert start is not None
        try:
            return (yield from start.__await__())
        except asyncio.CancelledError:
            if self._status is not None and not self.cancelled():
                raise self._error() from None
            raise


class UnaryUnaryCall(_UnaryResponse, Generic[RequestT, ResponseT]):
    """grpc.aio.UnaryUnaryCall."""

    __slots__ = ()

    def __init__(self, request: Any, *args: Any) -> None:
        super().__init__(*args)
        body = self._encode_first(request)
        self._start = self._loop.create_task(self._run(body))
        self._watch_start()

    async def _run(self, body: bytes | None) -> Any:
        if body is None:
            raise self._error()
        try:
            await self._open(body)
            response = await self._read_response()
        except TransportError:
            raise self._error() from None
        except asyncio.CancelledError:
            self._cancelled_await()
            raise self._error() from None
        return self._result(response)


class UnaryStreamCall(_ResponseStream, Generic[RequestT, ResponseT]):
    """grpc.aio.UnaryStreamCall."""

    __slots__ = ()

    def __init__(self, request: Any, *args: Any) -> None:
        super().__init__(*args)
        body = self._encode_first(request)
        if body is not None:
            self._start = self._loop.create_task(self._open_quietly(body))

    async def _open_quietly(self, body: bytes) -> None:
        with contextlib.suppress(TransportError, asyncio.CancelledError):
            await self._open(body)  # a failure settles the status; readers raise it


class _RequestStream:
    """Request-streaming side: an iterator pumped by a task, or write()/done_writing()."""

    __slots__ = ()

    def _setup_requests(self: Any, request_iterator: Any) -> None:
        self._writer_done = False
        self._requests_from_iterator = request_iterator is not None
        self._pump = self._loop.create_task(self._open_and_pump(request_iterator))

    async def _open_and_pump(self: Any, request_iterator: Any) -> None:
        try:
            await self._open(None)
        except (TransportError, asyncio.CancelledError):
            return
        if request_iterator is None:
            return
        stream = self._stream
        try:
            if isinstance(request_iterator, AsyncIterable):
                async for request in request_iterator:
                    await stream.send(self._encode(request))
            else:
                for request in request_iterator:
                    await stream.send(self._encode(request))
            await stream.end()
        except TransportError:
            pass  # the response side reports what happened
        except ProtocolError as exc:
            self._protocol_error(exc)
        except asyncio.CancelledError:
            if self._status is None:
                self.cancel()
        except Exception as exc:
            # grpc.aio cancels the RPC when the client's request iterator raises.
            logger.exception("request iterator of %r failed: cancelling the call (%r)", self, exc)
            self._abort(StatusCode.CANCELLED, _CANCELLED_DETAILS)

    async def write(self: Any, request: Any) -> None:
        """Send one request message."""
        if self._requests_from_iterator:
            raise UsageError("The call was given a request iterator: write() is not allowed")
        if self._status is not None:
            raise _InvalidStateError(FINISHED_DETAILS)
        if self._writer_done:
            raise _InvalidStateError(HALF_CLOSED_DETAILS)
        stream = await self._ensure_stream()
        if self._status is not None:
            raise self._ended_error()
        try:
            await stream.send(self._encode(request))
        except TransportError:
            if self._status is None:
                await self._wait_status()
            raise self._ended_error() from None
        except ProtocolError as exc:
            self._protocol_error(exc)
            raise self._error() from None

    def _ended_error(self: Any) -> BaseException:
        """What ``write()`` raises on an ended call: its error, or, ended OK, grpc.aio's
        InvalidStateError (the server answered and closed without reading the rest)."""
        if self._status is not None and self._status.code is StatusCode.OK:
            return _InvalidStateError(FINISHED_DETAILS)
        return self._error()  # type: ignore[no-any-return]

    async def done_writing(self: Any) -> None:
        """Half-close: no more requests."""
        if self._requests_from_iterator:
            raise UsageError("The call was given a request iterator: done_writing() is not allowed")
        if self._writer_done or self._status is not None:
            return  # as grpc.aio: idempotent, and a no-op on an ended (or cancelled) call
        self._writer_done = True
        try:
            stream = await self._ensure_stream()
        except (AioRpcError, asyncio.CancelledError):
            if self._status is None:
                raise  # the task calling done_writing() was cancelled
            return  # the call ended meanwhile: readers report how
        if self._status is not None:
            return
        with contextlib.suppress(TransportError):  # the response side reports it
            await stream.end()


class StreamUnaryCall(_RequestStream, _UnaryResponse, Generic[RequestT, ResponseT]):
    """grpc.aio.StreamUnaryCall."""

    __slots__ = ("_requests_from_iterator", "_writer_done")

    def __init__(self, request_iterator: Any, *args: Any) -> None:
        _UnaryResponse.__init__(self, *args)
        self._setup_requests(request_iterator)
        self._start = self._loop.create_task(self._run())
        self._watch_start()

    async def _run(self) -> Any:
        try:
            response = await self._read_response()
        except asyncio.CancelledError:
            self._cancelled_await()
            raise self._error() from None
        return self._result(response)


class StreamStreamCall(_RequestStream, _ResponseStream, Generic[RequestT, ResponseT]):
    """grpc.aio.StreamStreamCall."""

    __slots__ = ("_requests_from_iterator", "_writer_done")

    def __init__(self, request_iterator: Any, *args: Any) -> None:
        _ResponseStream.__init__(self, *args)
        self._setup_requests(request_iterator)


class _Follower(Protocol):
    """What follows a unary-response call from the blocking API (``_UnaryResponse._follower``)."""

    def _on_result(self, response: Any) -> None: ...

    def _on_start_done(self, task: asyncio.Task[Any]) -> None: ...
