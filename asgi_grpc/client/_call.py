"""Client call objects: grpc.aio's UnaryUnaryCall, UnaryStreamCall, StreamUnaryCall and
StreamStreamCall, on one :class:`~._connection.Stream` each.

Every call starts at once (a task opens the stream and sends what it can), as grpc.aio's do.
Responses are pulled from the stream by whoever reads (``await call``, ``read()``, ``async for``);
the status arrives with the trailers. A deadline or ``cancel()`` resets the stream and settles
the status; readers then see it as ``AioRpcError`` (or ``CancelledError`` after ``cancel()``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._core import (
    IDENTITY,
    Headers,
    MessageReader,
    Metadata,
    ProtocolError,
    StatusCode,
    decode_metadata,
    encode_metadata,
    http_status_details,
    http_status_to_grpc,
    is_grpc_content_type,
    pack_message,
    parse_trailers,
    trailers_only_status,
    unpack_message,
)
from .._credentials import AuthMetadataContext
from .._errors import EOF, RpcError, UsageError
from ._transport_errors import ConnectError, TransportError

if TYPE_CHECKING:
    from ._channel import Channel, _CallSettings

logger = logging.getLogger("asgi_grpc.client")

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")
DoneCallback = Callable[[Any], None]

_CANCELLED_DETAILS = "Locally cancelled by application!"
_DEADLINE_DETAILS = "Deadline Exceeded"


class AioRpcError(RpcError):
    """grpc.aio.AioRpcError: a call ended with a non-OK status."""

    def __init__(
        self,
        code: StatusCode,
        initial_metadata: Metadata,
        trailing_metadata: Metadata,
        details: str | None = None,
        debug_error_string: str | None = None,
    ) -> None:
        super().__init__()
        self._code = code
        self._details = details
        self._initial_metadata = initial_metadata
        self._trailing_metadata = trailing_metadata
        self._debug_error_string = debug_error_string

    def code(self) -> StatusCode:
        return self._code

    def details(self) -> str | None:
        return self._details

    def initial_metadata(self) -> Metadata:
        return self._initial_metadata

    def trailing_metadata(self) -> Metadata:
        return self._trailing_metadata

    def debug_error_string(self) -> str:
        return self._debug_error_string or f"{self._code.name}: {self._details}"

    def _repr(self) -> str:
        return (
            f"<{type(self).__name__} of RPC that terminated with:\n"
            f'\tstatus = {self._code}\n\tdetails = "{self._details}"\n'
            f'\tdebug_error_string = "{self.debug_error_string()}"\n>'
        )

    __repr__ = _repr
    __str__ = _repr


class _InvalidStateError(UsageError, asyncio.InvalidStateError):
    """write() on a half-closed or ended call: grpc.aio raises ``asyncio.InvalidStateError``,
    so code written for it catches that; this is also our :class:`UsageError`."""


class _CallError(Exception):
    """A call fails before it is sent (credentials, for instance)."""

    def __init__(self, code: StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


async def _run_plugin(plugin: Any, context: AuthMetadataContext) -> list[tuple[str, Any]]:
    """Run a grpc metadata plugin (``plugin(context, callback)``) on a worker thread."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[list[tuple[str, Any]]] = loop.create_future()

    def callback(metadata: Any, error: BaseException | None) -> None:
        def settle() -> None:
            if result.done():
                return
            if error is not None:
                result.set_exception(error)
            else:
                result.set_result(list(metadata or ()))

        loop.call_soon_threadsafe(settle)

    try:
        await loop.run_in_executor(None, plugin, context, callback)
        return await result
    except Exception as exc:
        raise _CallError(
            StatusCode.UNAVAILABLE, f"Getting metadata from plugin failed with error: {exc}"
        ) from exc


class _Status:
    __slots__ = ("code", "debug", "details", "metadata")

    def __init__(
        self, code: StatusCode, details: str | None, metadata: Metadata, debug: str | None = None
    ) -> None:
        self.code = code
        self.details = details
        self.metadata = metadata
        self.debug = debug


_EMPTY = Metadata()


class RpcContext:
    """grpc.aio.RpcContext: what every call and servicer context can tell and do."""

    __slots__ = ()

    def cancelled(self) -> bool:
        raise NotImplementedError

    def done(self) -> bool:
        raise NotImplementedError

    def time_remaining(self) -> float | None:
        raise NotImplementedError

    def cancel(self) -> bool:
        raise NotImplementedError

    def add_done_callback(self, callback: DoneCallback) -> None:
        raise NotImplementedError


class Call(RpcContext):
    """The state every call shares: its stream, metadata, status, deadline and callbacks."""

    __slots__ = (
        "_callbacks",
        "_channel",
        "_deadline",
        "_deadline_handle",
        "_encoding",
        "_initial_metadata",
        "_loop",
        "_messages",
        "_method",
        "_pump",
        "_reader",
        "_request_serializer",
        "_response_deserializer",
        "_response_encoding",
        "_settings",
        "_start",
        "_status",
        "_status_waiter",
        "_stream",
        "_stream_ready",
    )

    def __init__(
        self,
        channel: Channel,
        method: bytes,
        request_serializer: Callable[[Any], bytes] | None,
        response_deserializer: Callable[[bytes], Any] | None,
        settings: _CallSettings,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._channel = channel
        self._method = method
        self._request_serializer = request_serializer
        self._response_deserializer = response_deserializer
        self._settings = settings
        self._encoding = settings.encoding
        self._stream: Any = None
        self._stream_ready: asyncio.Future[None] | None = None
        self._initial_metadata: Metadata | None = None
        self._response_encoding = IDENTITY
        self._reader = MessageReader(channel._max_receive)
        self._messages: collections.deque[tuple[bool, bytes]] = collections.deque()
        self._status: _Status | None = None
        self._status_waiter: asyncio.Future[None] | None = None
        self._callbacks: list[DoneCallback] | None = None
        self._start: asyncio.Task[Any] | None = None
        self._pump: asyncio.Task[None] | None = None  # sends a request iterator
        self._deadline: float | None = None
        self._deadline_handle: asyncio.TimerHandle | None = None
        if settings.timeout is not None:
            self._deadline = self._loop.time() + settings.timeout
            self._deadline_handle = self._loop.call_at(self._deadline, self._expire)
        channel._calls.add(self)

    # ------------------------------------------------------------------ grpc.aio.Call

    def cancelled(self) -> bool:
        status = self._status
        return status is not None and status.code is StatusCode.CANCELLED

    def done(self) -> bool:
        return self._status is not None

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._loop.time())

    def cancel(self) -> bool:
        """Cancel the call (RST_STREAM CANCEL); False if it had already ended."""
        if self._status is not None:
            return False
        self._abort(StatusCode.CANCELLED, _CANCELLED_DETAILS)
        return True

    def add_done_callback(self, callback: DoneCallback) -> None:
        if self._status is not None:
            callback(self)
        elif self._callbacks is None:
            self._callbacks = [callback]
        else:
            self._callbacks.append(callback)

    async def initial_metadata(self) -> Metadata:
        while self._initial_metadata is None:
            if self._status is not None:
                return _EMPTY
            await self._await_headers()
        return self._initial_metadata

    async def trailing_metadata(self) -> Metadata:
        return (await self._wait_status()).metadata

    async def code(self) -> StatusCode:
        return (await self._wait_status()).code

    async def details(self) -> str | None:
        return (await self._wait_status()).details

    async def wait_for_connection(self) -> None:
        """Wait until the call has been sent (its stream is open), or raise its error."""
        await self._ensure_stream()

    def __repr__(self) -> str:
        status = self._status
        state = "active" if status is None else f"{status.code.name} {status.details!r}"
        return f"<{type(self).__name__} {self._method.decode()} {state}>"

    # ------------------------------------------------------------------ ending

    def _expire(self) -> None:
        self._deadline_handle = None
        if self._status is None:
            self._abort(StatusCode.DEADLINE_EXCEEDED, _DEADLINE_DETAILS)

    def _abort(self, code: StatusCode, details: str) -> None:
        """End the call from this side: settle the status, reset the stream, stop the task."""
        self._settle(_Status(code, details, _EMPTY))
        stream = self._stream
        if stream is not None:
            stream.close()
        start = self._start
        if start is not None and not start.done() and start is not asyncio.current_task():
            start.cancel()

    def _settle(self, status: _Status) -> None:
        if self._status is not None:
            return
        self._status = status
        self._channel._calls.discard(self)
        pump = self._pump
        if pump is not None and not pump.done() and pump is not asyncio.current_task():
            pump.cancel()  # nobody will read what it sends; its iterator may never end
        handle = self._deadline_handle
        if handle is not None:
            handle.cancel()
            self._deadline_handle = None
        waiter = self._status_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        ready = self._stream_ready
        if ready is not None and not ready.done():
            ready.set_result(None)
        callbacks = self._callbacks
        if callbacks:
            self._callbacks = None
            for callback in callbacks:
                try:
                    callback(self)
                except Exception:  # noqa: PERF203 - one failing callback must not stop the rest
                    logger.exception("done callback of %r failed", self)

    def _error(self) -> BaseException:
        """What a reader raises once the call has ended without success."""
        status = self._status
        assert status is not None
        if status.code is StatusCode.CANCELLED and status.details == _CANCELLED_DETAILS:
            return asyncio.CancelledError()
        return AioRpcError(
            status.code,
            self._initial_metadata if self._initial_metadata is not None else _EMPTY,
            status.metadata,
            status.details,
            status.debug,
        )

    def _fail_transport(self, exc: TransportError) -> None:
        self._settle(_Status(exc.status, exc.message, _EMPTY, repr(exc)))

    # ------------------------------------------------------------------ opening

    async def _headers(self) -> Headers:
        settings = self._settings
        if not settings.plugins:
            return settings.headers
        extra: list[tuple[str, Any]] = []
        service, _, name = self._method.decode().rpartition("/")
        context = AuthMetadataContext(f"https://{self._channel._authority}{service}", name)
        for plugin in settings.plugins:
            extra += await _run_plugin(plugin, context)
        try:
            return settings.headers + encode_metadata(extra)
        except (ValueError, TypeError) as exc:
            raise _CallError(StatusCode.INTERNAL, f"Invalid metadata from credentials: {exc}")

    async def _open(self, body: bytes | None) -> None:
        """Open the stream; with ``body``, send it and half-close (a unary request)."""
        channel = self._channel
        try:
            pool = await channel._pick_pool()
            headers = await self._headers()
            while True:
                try:
                    if body is not None:
                        self._stream = await pool.request(self._method, headers, body)
                    else:
                        self._stream = await pool.open_stream(self._method, headers)
                    break
                except ConnectError:
                    channel._connect_failed()
                    if not self._settings.wait_for_ready:
                        raise
                    # wait_for_ready: keep trying (with the channel's backoff) until the
                    # deadline, which cancels this task.
                    await asyncio.sleep(channel._backoff.next())
            channel._connected()
        except _CallError as exc:
            self._settle(_Status(exc.code, exc.details, _EMPTY))
            raise TransportError(exc.details) from None
        except TransportError as exc:
            self._fail_transport(exc)
            raise
        finally:
            ready = self._stream_ready
            if ready is not None and not ready.done():
                ready.set_result(None)
        if self._status is not None:  # cancelled or expired while opening
            self._stream.close()

    async def _ensure_stream(self) -> Any:
        while self._stream is None:
            if self._status is not None:
                raise self._error()
            if self._stream_ready is None:
                self._stream_ready = self._loop.create_future()
            await self._stream_ready
        return self._stream

    # ------------------------------------------------------------------ response side

    async def _await_headers(self) -> None:
        """Read the response headers (or the trailers-only status)."""
        try:
            stream = await self._ensure_stream()
            headers = await stream.headers()
        except TransportError as exc:
            self._fail_transport(exc)
            return
        except (RpcError, asyncio.CancelledError):
            if self._status is None:
                raise
            return
        self._on_headers(stream, headers)

    def _on_headers(self, stream: Any, headers: Headers) -> None:
        if self._initial_metadata is not None:
            return
        if stream.trailers_only:
            self._initial_metadata = _EMPTY
            inferred = trailers_only_status(headers)  # no grpc-status: from the HTTP status
            if inferred is not None:
                self._settle(_Status(*inferred, _EMPTY))
                return
            self._finish(headers)
            return
        status = stream.status
        content_type = None
        for name, value in headers:
            if name == b"content-type":
                content_type = value
            elif name == b"grpc-encoding":
                self._response_encoding = value.decode("latin-1")
        if status != 200:
            self._initial_metadata = _EMPTY
            self._settle(
                _Status(
                    http_status_to_grpc(status),
                    http_status_details(status),
                    _EMPTY,
                )
            )
            stream.close()
            return
        if not is_grpc_content_type(content_type):
            self._initial_metadata = _EMPTY
            self._settle(
                _Status(
                    StatusCode.UNKNOWN,
                    f"Received http2 header with content-type: {content_type!r}",
                    _EMPTY,
                )
            )
            stream.close()
            return
        try:
            self._initial_metadata = decode_metadata(headers)
        except ProtocolError as exc:
            self._initial_metadata = _EMPTY
            self._protocol_error(exc)

    def _finish(self, trailers: Headers) -> None:
        try:
            parsed = parse_trailers(trailers)
        except ProtocolError as exc:
            self._protocol_error(exc)
            return
        self._settle(_Status(parsed.code, parsed.details, parsed.metadata))

    def _protocol_error(self, exc: ProtocolError) -> None:
        self._settle(_Status(exc.code, exc.message, _EMPTY))
        if self._stream is not None:
            self._stream.close()

    async def _fill(self) -> None:
        """Read the next chunk of the response into ``_messages``, or end the call with its
        status. Readers and status-waiters may call it concurrently: whatever one of them reads
        stays queued for the others, so no message is lost to a concurrent ``code()``."""
        if self._initial_metadata is None:
            await self._await_headers()
            return
        stream = self._stream
        try:
            chunk = stream.read_nowait()
            if chunk is None:
                chunk = await stream.read()
            if chunk:
                self._messages.extend(self._reader.feed(chunk))
                return
            self._reader.close()
            trailers = await stream.trailers()
        except TransportError as exc:
            self._fail_transport(exc)
            return
        except ProtocolError as exc:
            self._protocol_error(exc)
            return
        except asyncio.CancelledError:
            if self._status is None:
                raise
            return
        self._finish(trailers)

    async def _next_message(self) -> Any:
        """The next response message, or EOF once the status is OK; raises on errors."""
        messages = self._messages
        while not messages:
            if self._status is not None:
                if self._status.code is StatusCode.OK:
                    return EOF
                raise self._error()
            await self._fill()
        compressed, payload = messages.popleft()
        try:
            return unpack_message(
                compressed,
                payload,
                self._response_encoding,
                self._channel._max_receive,
                self._response_deserializer,
            )
        except ProtocolError as exc:
            self._protocol_error(exc)
            raise self._error() from None

    async def _wait_status(self) -> _Status:
        """Wait for the call to end; responses read meanwhile stay queued for later reads."""
        while self._status is None:
            await self._fill()
        return self._status

    # ------------------------------------------------------------------ request side

    def _encode(self, request: Any) -> bytes:
        return pack_message(
            request, self._request_serializer, self._encoding, self._channel._max_send
        )

    def _encode_first(self, request: Any) -> bytes | None:
        """The request of a unary-request call, or None with the call failed (as grpcio)."""
        try:
            return self._encode(request)
        except ProtocolError as exc:
            self._settle(_Status(exc.code, exc.message, _EMPTY))
        except Exception as exc:
            self._settle(
                _Status(StatusCode.INTERNAL, f"Exception serializing request! {exc!r}", _EMPTY)
            )
        return None


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

    __slots__ = ()

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
        self._start.add_done_callback(_retrieve)

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
            return await self._read_response()
        except TransportError:
            raise self._error() from None
        except asyncio.CancelledError:
            self._cancelled_await()
            raise self._error() from None


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
            raise _InvalidStateError("RPC already finished.")
        if self._writer_done:
            raise _InvalidStateError('RPC is half closed after calling "done_writing".')
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
            return _InvalidStateError("RPC already finished.")
        return self._error()  # type: ignore[no-any-return]

    async def done_writing(self: Any) -> None:
        """Half-close: no more requests."""
        if self._requests_from_iterator:
            raise UsageError("The call was given a request iterator: done_writing() is not allowed")
        if self._writer_done:
            return
        self._writer_done = True
        stream = await self._ensure_stream()
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
            return await self._read_response()
        except asyncio.CancelledError:
            self._cancelled_await()
            raise self._error() from None


class StreamStreamCall(_RequestStream, _ResponseStream, Generic[RequestT, ResponseT]):
    """grpc.aio.StreamStreamCall."""

    __slots__ = ("_requests_from_iterator", "_writer_done")

    def __init__(self, request_iterator: Any, *args: Any) -> None:
        _ResponseStream.__init__(self, *args)
        self._setup_requests(request_iterator)


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
