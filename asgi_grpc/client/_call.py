"""The base of grpc.aio's four client calls: one :class:`~._connection.Stream` each.

Every call starts at once (a task opens the stream and sends what it can), as grpc.aio's do.
Responses are pulled from the stream by whoever reads (``await call``, ``read()``, ``async for``);
the status arrives with the trailers. A deadline or ``cancel()`` resets the stream and settles
the status; readers then see it as ``AioRpcError`` (or ``CancelledError`` after ``cancel()``).
The four call classes, built on :class:`Call`, are in ``_call_kinds``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any

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
from .._errors import EOF, RpcError
from ._base import (
    CANCELLED_DETAILS,
    DEADLINE_DETAILS,
    EMPTY,
    CallHost,
    CallSettings,
    DoneCallback,
    RpcContext,
    Status,
)
from ._retry import RetryingStream
from ._rpc_error import AioRpcError, CallError
from ._transport_errors import ConnectError, TransportError

logger = logging.getLogger("asgi_grpc.client")

# Short local names: the call code below reads better with them.
_Status = Status
_CallError = CallError
_EMPTY = EMPTY
_CANCELLED_DETAILS = CANCELLED_DETAILS
_DEADLINE_DETAILS = DEADLINE_DETAILS


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
        channel: CallHost,
        method: bytes,
        request_serializer: Callable[[Any], bytes] | None,
        response_deserializer: Callable[[bytes], Any] | None,
        settings: CallSettings,
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

    async def debug_error_string(self) -> str:
        """What went wrong, for a human; empty when the call succeeded (as grpcio)."""
        status = await self._wait_status()
        if status.code is StatusCode.OK:
            return ""
        return status.debug or f"{status.code.name}: {status.details}"

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
            plan = self._settings.retry
            if plan is None:
                pool = await channel._pick_pool()
                headers = await self._headers()
                self._stream = await self._connect(pool, headers, body)
            else:
                # Attempts (and their connections) are made by the retrying stream; how the
                # first ones fail is for its policy to judge.
                headers = await self._headers()
                self._stream = RetryingStream(
                    plan, self._open_attempt, headers, body, self._deadline
                )
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

    async def _connect(self, pool: Any, headers: Headers, body: bytes | None) -> Any:
        channel = self._channel
        while True:
            try:
                if body is not None:
                    stream = await pool.request(self._method, headers, body)
                else:
                    stream = await pool.open_stream(self._method, headers)
                break
            except ConnectError:
                channel._connect_failed()
                if not self._settings.wait_for_ready:
                    raise
                # wait_for_ready: keep trying (with the channel's backoff) until the
                # deadline, which cancels this task.
                await asyncio.sleep(channel._backoff.next())
        channel._connected()
        return stream

    async def _open_attempt(self, headers: Headers, body: bytes | None) -> Any:
        """One attempt of a retried call: each picks its pool (round_robin spreads them)."""
        try:
            return await self._connect(await self._channel._pick_pool(), headers, body)
        except _CallError as exc:
            error = TransportError(exc.details)
            error.status = exc.code  # a bad target (UNKNOWN), a failed plugin...
            raise error from None

    async def _ensure_stream(self) -> Any:
        while self._stream is None:
            if self._status is not None:
                raise self._error()
            if self._stream_ready is None:
                self._stream_ready = self._loop.create_future()
            # Shielded: several tasks may wait here (a reader, code()); cancelling one of them
            # must not cancel the future the others wait on (only this path, before the stream
            # is open, pays for the shield).
            await asyncio.shield(self._stream_ready)
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
            parts = stream.read_parts_nowait()
            if parts is None:
                parts = await stream.read_parts()
            if parts:
                # Fed piece by piece: a message spanning them is joined once, by the reader.
                for part in parts:
                    self._messages.extend(self._reader.feed(part))
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
