"""Client interceptors, as grpc.aio defines them.

An interceptor's ``intercept_*`` coroutine gets ``continuation(client_call_details, request)``,
which starts the next interceptor (or the real call) and returns a call object. It may change the
details, wrap or replace the call, or return a bare response (unary) / async iterator (streaming).
Whatever the chain returns is presented as an ``Intercepted*Call``, so the caller sees one
uniform grpc.aio call object. Interceptors are matched by the method they define, so classes
derived from grpcio's own interceptor bases work too.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from typing import Any, NamedTuple

from .._core import Metadata, StatusCode
from .._errors import EOF, UsageError
from ._call import AioRpcError, Call


class ClientCallDetails(NamedTuple):
    """grpc.aio.ClientCallDetails: what an interceptor may inspect and change."""

    method: bytes
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None


class ClientInterceptor(abc.ABC):  # noqa: B024 - a marker base, as in grpc.aio
    """grpc.aio.ClientInterceptor: base of the four kinds."""


class UnaryUnaryClientInterceptor(ClientInterceptor):
    @abc.abstractmethod
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: ClientCallDetails, request: Any
    ) -> Any:
        raise NotImplementedError


class UnaryStreamClientInterceptor(ClientInterceptor):
    @abc.abstractmethod
    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: ClientCallDetails, request: Any
    ) -> Any:
        raise NotImplementedError


class StreamUnaryClientInterceptor(ClientInterceptor):
    @abc.abstractmethod
    async def intercept_stream_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        raise NotImplementedError


class StreamStreamClientInterceptor(ClientInterceptor):
    @abc.abstractmethod
    async def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        raise NotImplementedError


ATTRIBUTES = {
    "unary_unary": "intercept_unary_unary",
    "unary_stream": "intercept_unary_stream",
    "stream_unary": "intercept_stream_unary",
    "stream_stream": "intercept_stream_stream",
}


def select(interceptors: Sequence[Any], kind: str) -> tuple[Any, ...]:
    attribute = ATTRIBUTES[kind]
    return tuple(i for i in interceptors if callable(getattr(i, attribute, None)))


async def run_chain(
    interceptors: Sequence[Any],
    kind: str,
    details: ClientCallDetails,
    request: Any,
    make_call: Callable[[ClientCallDetails, Any], Any],
) -> Any:
    attribute = ATTRIBUTES[kind]

    async def step(index: int, step_details: ClientCallDetails, step_request: Any) -> Any:
        if index == len(interceptors):
            return make_call(step_details, step_request)

        async def continuation(next_details: ClientCallDetails, next_request: Any) -> Any:
            return await step(index + 1, next_details, next_request)

        return await getattr(interceptors[index], attribute)(
            continuation, step_details, step_request
        )

    return await step(0, details, request)


def _is_call(value: Any) -> bool:
    return isinstance(value, (Call, InterceptedCall)) or (
        hasattr(value, "code") and hasattr(value, "cancel") and hasattr(value, "add_done_callback")
    )


_EMPTY = Metadata()


class InterceptedCall:
    """A call whose real call (or bare result) comes from running the interceptor chain."""

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self._task = task
        self._callbacks: list[Callable[[Any], None]] = []
        task.add_done_callback(self._on_chain_done)

    def _on_chain_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or task.exception() is not None:
            self._run_callbacks()
            return
        inner = task.result()
        if _is_call(inner):
            inner.add_done_callback(lambda _: self._run_callbacks())
        else:
            self._run_callbacks()

    def _run_callbacks(self) -> None:
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def _inner_now(self) -> Any:
        task = self._task
        if task.done() and not task.cancelled() and task.exception() is None:
            inner = task.result()
            return inner if _is_call(inner) else None
        return None

    async def _inner(self) -> Any:
        """The real call, or None when the chain returned a bare result; raises its error."""
        try:
            inner = await asyncio.shield(self._task)
        except AioRpcError:
            return None
        return inner if _is_call(inner) else None

    async def _chain_error(self) -> AioRpcError | None:
        try:
            await asyncio.shield(self._task)
        except AioRpcError as exc:
            return exc
        return None

    def cancel(self) -> bool:
        inner = self._inner_now()
        if inner is not None:
            return bool(inner.cancel())
        if not self._task.done():
            self._task.cancel()
            return True
        return False

    def cancelled(self) -> bool:
        inner = self._inner_now()
        return bool(inner.cancelled()) if inner is not None else self._task.cancelled()

    def done(self) -> bool:
        inner = self._inner_now()
        return bool(inner.done()) if inner is not None else self._task.done()

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        if self.done():
            callback(self)
        else:
            self._callbacks.append(callback)

    def time_remaining(self) -> float | None:
        inner = self._inner_now()
        return inner.time_remaining() if inner is not None else None

    async def _ask(self, name: str, default: Any) -> Any:
        """``name()`` of the real call; of the chain's error if it raised one; else ``default``."""
        inner = await self._inner()
        if inner is not None:
            return await getattr(inner, name)()
        error = await self._chain_error()
        return getattr(error, name)() if error is not None else default

    async def initial_metadata(self) -> Metadata:
        return await self._ask("initial_metadata", _EMPTY)  # type: ignore[no-any-return]

    async def trailing_metadata(self) -> Metadata:
        return await self._ask("trailing_metadata", _EMPTY)  # type: ignore[no-any-return]

    async def code(self) -> StatusCode:
        return await self._ask("code", StatusCode.OK)  # type: ignore[no-any-return]

    async def details(self) -> str | None:
        return await self._ask("details", "")  # type: ignore[no-any-return]

    async def wait_for_connection(self) -> None:
        inner = await self._inner()
        if inner is not None:
            await inner.wait_for_connection()


class InterceptedUnaryUnaryCall(InterceptedCall):
    """grpc.aio.InterceptedUnaryUnaryCall."""

    def __await__(self) -> Generator[Any, None, Any]:
        result = yield from self._task.__await__()
        if _is_call(result):
            return (yield from result.__await__())
        return result


class _Writable:
    """``write()`` / ``done_writing()`` for intercepted request streams: they feed the queue the
    chain received as its request iterator."""

    _writer: _RequestQueue | None

    async def write(self, request: Any) -> None:
        if self._writer is None:
            raise UsageError("The call was given a request iterator: write() is not allowed")
        await self._writer.put(request)

    async def done_writing(self) -> None:
        if self._writer is None:
            raise UsageError("The call was given a request iterator: done_writing() is not allowed")
        await self._writer.close()


class InterceptedStreamUnaryCall(_Writable, InterceptedUnaryUnaryCall):
    """grpc.aio's intercepted stream-unary call."""

    def __init__(self, task: asyncio.Task[Any], writer: _RequestQueue | None) -> None:
        super().__init__(task)
        self._writer = writer


class InterceptedUnaryStreamCall(InterceptedCall):
    """An intercepted call with streamed responses (``async for`` / ``read()``)."""

    def __init__(self, task: asyncio.Task[Any]) -> None:
        super().__init__(task)
        self._iterator: AsyncIterator[Any] | None = None

    async def _responses(self) -> AsyncIterator[Any]:
        if self._iterator is None:
            result = await self._task
            self._iterator = result.__aiter__()
        return self._iterator

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        responses = await self._responses()
        async for response in responses:
            yield response

    async def read(self) -> Any:
        result = await self._task
        if _is_call(result) and hasattr(result, "read"):
            return await result.read()
        responses = await self._responses()
        try:
            return await responses.__anext__()
        except StopAsyncIteration:
            return EOF


class InterceptedStreamStreamCall(_Writable, InterceptedUnaryStreamCall):
    """An intercepted bidirectional call."""

    def __init__(self, task: asyncio.Task[Any], writer: _RequestQueue | None) -> None:
        super().__init__(task)
        self._writer = writer


_END = object()


class _RequestQueue:
    """Requests written with ``write()``, as the async iterator the chain passes on."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
        self._closed = False

    async def put(self, request: Any) -> None:
        if self._closed:
            raise UsageError("write() after done_writing()")
        await self._queue.put(request)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._queue.put(_END)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            request = await self._queue.get()
            if request is _END:
                return
            yield request


def intercept(
    interceptors: Sequence[Any],
    kind: str,
    details: ClientCallDetails,
    request: Any,
    make_call: Callable[[ClientCallDetails, Any], Any],
) -> Any:
    """Run ``interceptors`` over a new call and return the intercepted call object."""
    writer: _RequestQueue | None = None
    if kind in ("stream_unary", "stream_stream") and request is None:
        writer = _RequestQueue()
        request = writer
    task = asyncio.get_running_loop().create_task(
        run_chain(interceptors, kind, details, request, make_call)
    )
    if kind == "unary_unary":
        return InterceptedUnaryUnaryCall(task)
    if kind == "unary_stream":
        return InterceptedUnaryStreamCall(task)
    if kind == "stream_unary":
        return InterceptedStreamUnaryCall(task, writer)
    return InterceptedStreamStreamCall(task, writer)
