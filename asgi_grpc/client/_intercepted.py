"""Calls that run a chain of client interceptors first: grpc.aio's Intercepted*Call.

One base, :class:`InterceptedCall`, holds the task that runs the chain and answers for all four
kinds: status, metadata, ``debug_error_string``, cancellation and done callbacks, from the call
the chain returned, or from the chain's own end (an ``AioRpcError`` it raised, or its
cancellation: CANCELLED). Two mixins add the response side (``await``; ``read()`` /
``async for``) and one the request side (``write()`` / ``done_writing()``, fed to the chain as
its request iterator). What an interceptor returns that is not a call is wrapped, as grpcio
does: a bare response as a finished OK call (:class:`ResponseCall`), a response iterator as a
call that iterates it and takes its status from the last real call (:class:`ResponseIterator`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import Any, ClassVar

from .._core import Metadata, StatusCode
from .._errors import EOF, UsageError
from ._base import CANCELLED_DETAILS, FINISHED_DETAILS, HALF_CLOSED_DETAILS, DoneCallback
from ._call import Call
from ._interceptors import ATTRIBUTES, ClientCallDetails
from ._rpc_error import AioRpcError, InvalidStateError

MakeCall = Callable[[ClientCallDetails, Any], Any]

_END = object()  # ends the request iterator fed by write()
_STYLE_ERROR = "The call was given a request iterator: {} is not allowed"


def is_call(value: Any) -> bool:
    return isinstance(value, (Call, InterceptedCall, ResponseCall, ResponseIterator)) or (
        hasattr(value, "code") and hasattr(value, "cancel") and hasattr(value, "add_done_callback")
    )


class InterceptedCall:
    """What the four intercepted calls share."""

    _kind: ClassVar[str]
    _unary_response: ClassVar[bool]

    def __init__(
        self,
        interceptors: Sequence[Any],
        details: ClientCallDetails,
        request: Any,
        make_call: MakeCall,
    ) -> None:
        self._interceptors = interceptors
        self._make_call = make_call
        self._last_call: Any = None  # the innermost call returned so far
        self._callbacks: list[DoneCallback] = []
        self._task = asyncio.get_running_loop().create_task(self._run(0, details, request))
        self._task.add_done_callback(self._chain_done)

    # ------------------------------------------------------------------ the chain

    async def _run(self, index: int, details: ClientCallDetails, request: Any) -> Any:
        if index == len(self._interceptors):
            self._last_call = self._make_call(details, request)
            return self._last_call

        async def continuation(next_details: ClientCallDetails, next_request: Any) -> Any:
            return await self._run(index + 1, next_details, next_request)

        intercept = getattr(self._interceptors[index], ATTRIBUTES[self._kind])
        result = await intercept(continuation, details, request)
        if not is_call(result):
            if self._unary_response:
                result = ResponseCall(result)
            else:
                result = ResponseIterator(self._last_call, result)
        self._last_call = result
        return result

    def _chain_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            # Cancelled after an interceptor started the call but before it returned it:
            # nobody else can reach that call now.
            last = self._last_call
            if last is not None and not last.done():
                last.cancel()
        else:
            task.exception()  # retrieved: reported by whoever asks the call
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            self.add_done_callback(callback)

    def _result(self) -> Any:
        """The chain's call, once it returned one; else None."""
        task = self._task
        if not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return task.result()

    async def _outcome(self) -> tuple[Any, BaseException | None]:
        """Wait for the chain: its call, or how it ended (AioRpcError or CancelledError)."""
        try:
            return await asyncio.shield(self._task), None
        except AioRpcError as exc:
            return None, exc
        except asyncio.CancelledError as exc:
            if not self._task.cancelled():
                raise  # the task asking was cancelled, not the call
            return None, exc

    # ------------------------------------------------------------------ grpc.aio.Call

    def cancel(self) -> bool:
        task = self._task
        if not task.done():
            return task.cancel()
        call = self._result()
        return call is not None and bool(call.cancel())

    def cancelled(self) -> bool:
        task = self._task
        if not task.done():
            return False
        if task.cancelled():
            return True
        exc = task.exception()
        if exc is not None:
            return isinstance(exc, AioRpcError) and exc.code() is StatusCode.CANCELLED
        return bool(task.result().cancelled())

    def done(self) -> bool:
        task = self._task
        if not task.done():
            return False
        call = self._result()
        return call is None or bool(call.done())

    def add_done_callback(self, callback: DoneCallback) -> None:
        if not self._task.done():
            self._callbacks.append(callback)
            return
        call = self._result()
        if call is None or call.done():
            callback(self)
        else:
            call.add_done_callback(lambda _: callback(self))

    def time_remaining(self) -> float | None:
        call = self._result()
        return call.time_remaining() if call is not None else None

    async def initial_metadata(self) -> Metadata | None:
        call, ended = await self._outcome()
        if isinstance(ended, AioRpcError):
            return ended.initial_metadata()
        return None if ended is not None else await call.initial_metadata()

    async def trailing_metadata(self) -> Metadata | None:
        call, ended = await self._outcome()
        if isinstance(ended, AioRpcError):
            return ended.trailing_metadata()
        return None if ended is not None else await call.trailing_metadata()

    async def code(self) -> StatusCode:
        call, ended = await self._outcome()
        if isinstance(ended, AioRpcError):
            return ended.code()
        return StatusCode.CANCELLED if ended is not None else await call.code()

    async def details(self) -> str | None:
        call, ended = await self._outcome()
        if isinstance(ended, AioRpcError):
            return ended.details()
        return CANCELLED_DETAILS if ended is not None else await call.details()

    async def debug_error_string(self) -> str | None:
        call, ended = await self._outcome()
        if isinstance(ended, AioRpcError):
            return ended.debug_error_string()
        if ended is not None:
            return ""
        debug = getattr(call, "debug_error_string", None)
        return await debug() if debug is not None else ""

    async def wait_for_connection(self) -> None:
        call = await asyncio.shield(self._task)
        await call.wait_for_connection()


class _UnaryResponse:
    """``await call``: the chain's call, then its response."""

    _task: asyncio.Task[Any]
    _unary_response = True

    def __await__(self) -> Generator[Any, None, Any]:
        call = yield from self._task.__await__()
        return (yield from call.__await__())


class _StreamResponse:
    """``read()`` and ``async for`` over one iterator of the chain's call."""

    _task: asyncio.Task[Any]
    _unary_response = False
    _responses: AsyncIterator[Any] | None = None

    async def _iterate(self) -> AsyncIterator[Any]:
        call = await self._task
        async for response in call:
            yield response

    def __aiter__(self) -> AsyncIterator[Any]:
        if self._responses is None:
            self._responses = self._iterate()
        return self._responses

    async def read(self) -> Any:
        try:
            return await self.__aiter__().__anext__()
        except StopAsyncIteration:
            return EOF


class _RequestStream:
    """``write()`` / ``done_writing()``: requests queued for the iterator the chain was given
    (when the caller gave none). Each waits for the chain's call, and stops waiting for room
    in the queue when that call ends, so a write on a failed or cancelled call raises at once."""

    _task: asyncio.Task[Any]
    _queue: asyncio.Queue[Any] | None
    _half_closed = False
    _ended: asyncio.Future[None] | None = None

    def _requests(self, request_iterator: Any) -> Any:
        if request_iterator is not None:
            self._queue = None
            return request_iterator
        self._queue = asyncio.Queue(maxsize=1)
        return self._queued(self._queue)

    @staticmethod
    async def _queued(queue: asyncio.Queue[Any]) -> AsyncIterator[Any]:
        while True:
            request = await queue.get()
            if request is _END:
                return
            yield request

    async def _chain_call(self, what: str, refuse: tuple[type[BaseException], ...]) -> Any:
        if self._queue is None:
            raise UsageError(_STYLE_ERROR.format(what))
        try:
            return await asyncio.shield(self._task)
        except refuse:
            if not self._task.done():
                raise  # the writing task itself was cancelled
            raise InvalidStateError(FINISHED_DETAILS) from None

    async def _put(self, item: Any, call: Any) -> None:
        queue = self._queue
        assert queue is not None
        if not queue.full():
            queue.put_nowait(item)
            return
        ended = self._ended
        if ended is None:
            ended = self._ended = asyncio.get_running_loop().create_future()

            def on_done(_: Any) -> None:
                if not ended.done():
                    ended.set_result(None)

            call.add_done_callback(on_done)
        put = asyncio.ensure_future(queue.put(item))
        try:
            await asyncio.wait((put, ended), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not put.done():
                put.cancel()  # the call ended first: the request is not sent

    async def write(self, request: Any) -> None:
        call = await self._chain_call("write()", (asyncio.CancelledError, AioRpcError))
        if call.done():
            raise InvalidStateError(FINISHED_DETAILS)
        if self._half_closed:
            raise InvalidStateError(HALF_CLOSED_DETAILS)
        await self._put(request, call)
        if call.done():
            raise InvalidStateError(FINISHED_DETAILS)

    async def done_writing(self) -> None:
        """Half-close; idempotent, and a no-op once the call has ended (as grpc.aio)."""
        call = await self._chain_call("done_writing()", (asyncio.CancelledError,))
        if self._half_closed:
            return
        self._half_closed = True
        await self._put(_END, call)


class InterceptedUnaryUnaryCall(_UnaryResponse, InterceptedCall):
    """grpc.aio.InterceptedUnaryUnaryCall."""

    _kind = "unary_unary"


class InterceptedUnaryStreamCall(_StreamResponse, InterceptedCall):
    """grpc.aio's intercepted unary-stream call."""

    _kind = "unary_stream"


class InterceptedStreamUnaryCall(_UnaryResponse, _RequestStream, InterceptedCall):
    """grpc.aio's intercepted stream-unary call."""

    _kind = "stream_unary"

    def __init__(
        self, interceptors: Sequence[Any], details: ClientCallDetails, request: Any, make: MakeCall
    ) -> None:
        super().__init__(interceptors, details, self._requests(request), make)


class InterceptedStreamStreamCall(_StreamResponse, _RequestStream, InterceptedCall):
    """grpc.aio's intercepted stream-stream call."""

    _kind = "stream_stream"

    def __init__(
        self, interceptors: Sequence[Any], details: ClientCallDetails, request: Any, make: MakeCall
    ) -> None:
        super().__init__(interceptors, details, self._requests(request), make)


INTERCEPTED = {
    cls._kind: cls
    for cls in (
        InterceptedUnaryUnaryCall,
        InterceptedUnaryStreamCall,
        InterceptedStreamUnaryCall,
        InterceptedStreamStreamCall,
    )
}


class ResponseCall:
    """An interceptor's bare response, as a call that finished OK (grpcio's
    UnaryUnaryCallResponse), so the next interceptor out can ``await`` it."""

    def __init__(self, response: Any) -> None:
        self._response = response

    def cancel(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def done(self) -> bool:
        return True

    def add_done_callback(self, callback: DoneCallback) -> None:
        callback(self)

    def time_remaining(self) -> float | None:
        return None

    async def initial_metadata(self) -> Metadata | None:
        return None

    async def trailing_metadata(self) -> Metadata | None:
        return None

    async def code(self) -> StatusCode:
        return StatusCode.OK

    async def details(self) -> str:
        return ""

    async def debug_error_string(self) -> str | None:
        return None

    async def wait_for_connection(self) -> None:
        return None

    def __await__(self) -> Generator[Any, None, Any]:
        return self._response
        yield  # a generator: awaiting it returns the response at once


class ResponseIterator:
    """An interceptor's response iterator, as a call: iteration is the interceptor's; status,
    metadata and cancellation are the last real call's (grpcio's ...CallResponseIterator)."""

    def __init__(self, call: Any, responses: Any) -> None:
        self._call = call if call is not None else ResponseCall(None)
        self._responses = responses
        self._iterator: AsyncIterator[Any] | None = None

    def __aiter__(self) -> AsyncIterator[Any]:
        if self._iterator is None:
            self._iterator = self._responses.__aiter__()
        return self._iterator

    async def read(self) -> Any:
        try:
            return await self.__aiter__().__anext__()
        except StopAsyncIteration:
            return EOF

    def __getattr__(self, name: str) -> Any:
        # cancel, cancelled, done, add_done_callback, code, details, metadata...: the call's.
        return getattr(self._call, name)
