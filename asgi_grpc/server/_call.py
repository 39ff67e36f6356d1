"""One server-side call: reading requests, writing responses, ending with a status.

:class:`ServicerContext` is both the handler's view of the call (grpc.aio.ServicerContext) and the
call's state machine. It talks ASGI: request body chunks come from ``receive()``, responses go out
as ``http.response.start`` / ``http.response.body`` / ``http.response.trailers``.

The ASGI task that runs the call is the task that runs the handler; a deadline or a client reset
(``http.disconnect``) cancels that task, and :meth:`run` turns the cancellation into the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NoReturn

from .._core import (
    IDENTITY,
    Compression,
    MessageReader,
    MetadataLike,
    ProtocolError,
    RequestHead,
    StatusCode,
    coerce_status,
    encoding_name,
    pack_message_parts,
    response_headers,
    trailers,
    unpack_message,
)
from .._credentials import AUTH_CONTEXT_KEY
from .._errors import EOF, AbortError, UsageError
from ._metadata_check import checked_abort_metadata, checked_metadata
from ._requests import RequestBuffer
from ._sync_context import BlockingRequestIterator, run_sync_stream
from ._sync_context import _SyncContext as _SyncContext  # also used by asgi_grpc._sync
from ._types import (
    BODY_PARTS_EXTENSION,
    BODY_SINK_EXTENSION,
    RESPONSE_EXTENSION,
    STREAM_CLOSED_EXTENSION,
    TRAILERS_ONLY_EXTENSION,
    ASGIReceive,
    ASGISend,
    Scope,
)

if TYPE_CHECKING:
    from ._app import GrpcApp

logger = logging.getLogger("asgi_grpc.server")

_BODY_END: dict[str, Any] = {"type": "http.response.body", "body": b"", "more_body": False}

# grpc's per-behaviour executor (a ThreadPoolExecutor in ``behavior.experimental_thread_pool``)
# for the call running in this task. Set by ServicerContext.run, read by GrpcApp.run_sync: a
# ContextVar because the call's blocking work (behaviour, response stream, done callbacks)
# reaches run_sync from several places, all in the call's own task.
CALL_POOL: contextvars.ContextVar[Executor | None] = contextvars.ContextVar(
    "asgi_grpc_call_pool", default=None
)

# Why the call's task was cancelled by the call itself (as opposed to by the server stopping).
_DEADLINE = "deadline"
# Messages from this size on are sent as prefix and payload apart (see _write).
_SEND_APART = 64 * 1024
_CLIENT = "client"
_SHUTDOWN = "shutdown"
_TLS_LEVEL = b"TSI_PRIVACY_AND_INTEGRITY"
_NO_SECURITY = b"TSI_SECURITY_NONE"
_CANCEL_STATUS = {
    _DEADLINE: (StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
    _SHUTDOWN: (StatusCode.UNAVAILABLE, "Server shutting down"),
    "cancelled": (StatusCode.CANCELLED, "Cancelled"),  # grpc.ServicerContext.cancel()
}


class ServicerContext:
    """grpc.aio.ServicerContext: the handler's window onto its call."""

    __slots__ = (
        "_abort_called",
        "_app",
        "_body_closed",
        "_callbacks",
        "_cancel_reason",
        "_code",
        "_deadline_handle",
        "_deadline_when",
        "_details",
        "_disable_next_compression",
        "_done",
        "_encoding",
        "_head",
        "_held",
        "_initial_metadata",
        "_loop",
        "_method",
        "_reader",
        "_receive",
        "_request_deserializer",
        "_request_iterating",
        "_requests",
        "_response_serializer",
        "_scope",
        "_send",
        "_sent_headers",
        "_task",
        "_trailing_metadata",
        "_watcher",
    )

    def __init__(
        self,
        app: GrpcApp,
        scope: Scope,
        receive: ASGIReceive,
        send: ASGISend,
        method: str,
        head: RequestHead,
        request_deserializer: Callable[[bytes], Any] | None,
        response_serializer: Callable[[Any], bytes] | None,
    ) -> None:
        self._app = app
        self._scope = scope
        self._receive = receive
        self._send = send
        self._method = method
        self._head = head
        self._request_deserializer = request_deserializer
        self._response_serializer = response_serializer
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[Any] | None = asyncio.current_task()
        self._reader = MessageReader(app.config.max_receive_message_length)
        self._encoding = app.response_encoding(head)
        self._disable_next_compression = False
        self._initial_metadata: MetadataLike = None
        self._trailing_metadata: MetadataLike = None
        self._code: StatusCode | None = None
        self._details: str | None = None
        self._abort_called = False
        self._sent_headers = False
        self._body_closed = False
        # A unary response's headers and body, held for _end to send with the trailers in one
        # message (RESPONSE_EXTENSION), where the server offers it.
        self._held: tuple[Any, list[bytes]] | None = None
        self._done = False
        self._cancel_reason: str | None = None
        self._callbacks: list[Callable[[ServicerContext], Any]] = []
        # Request side: for streaming requests, the buffer between receive() and the handler.
        self._requests: RequestBuffer | None = None
        self._request_iterating = False
        # What learns that the client went away: the request pump, or for a unary request a
        # task reading receive() (_watch), or a callback on the stream-closed future.
        self._watcher: asyncio.Task[None] | asyncio.Future[Any] | None = None
        self._deadline_handle: asyncio.TimerHandle | None = None
        self._deadline_when: float | None = None
        if head.timeout is not None:
            self._deadline_when = self._loop.time() + head.timeout
            self._deadline_handle = self._loop.call_at(self._deadline_when, self._expire)

    # ------------------------------------------------------------------ running the call

    async def run(self, handler: Any) -> None:
        """Run ``handler`` (a method handler, ours or grpcio's) to the end and send the status."""
        try:
            await self._run(handler)
        finally:
            if CALL_POOL.get() is not None:  # only this call set it: leave the task as it was
                CALL_POOL.set(None)

    async def _run(self, handler: Any) -> None:
        code = StatusCode.OK
        details: str | None = None
        behavior: Any = None
        try:
            if handler.request_streaming:
                requests = self._requests = RequestBuffer(
                    self._scope,
                    self._receive,
                    self._reader,
                    self._app.config.max_buffered_request_bytes,
                    self._client_gone,
                )
                self._watcher = self._loop.create_task(requests.pump())
                request: Any = _RequestIterator(self)
            else:
                request = await self._read_unary_request()
                self._watch_disconnect()
            if handler.response_streaming:
                if handler.request_streaming:
                    behavior = handler.stream_stream
                else:
                    behavior = handler.unary_stream
                self._use_behavior_pool(behavior)
                await self._run_streaming_response(behavior, request)
            else:
                behavior = (
                    handler.stream_unary if handler.request_streaming else handler.unary_unary
                )
                self._use_behavior_pool(behavior)
                response = await self._invoke(behavior, request)
                if self._code is None or self._code is StatusCode.OK:
                    if response is None:
                        # grpcio: a unary handler returning None without a status is an error.
                        if not self._abort_called:
                            code = StatusCode.UNKNOWN
                            details = "Unexpected None response from the servicer"
                    else:
                        await self._write(response, last=True)
        except AbortError:
            if not self._abort_called:  # raised by hand, not through abort()
                code, details = StatusCode.UNKNOWN, "Unexpected AbortError"
        except asyncio.CancelledError:
            reason = self._cancel_reason
            if reason is None:
                # The server is going away (stop() past its grace): end as UNAVAILABLE if the
                # stream still exists, then let the cancellation continue.
                self._finish_callbacks()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await self._end(StatusCode.UNAVAILABLE, "Server shutting down")
                raise
            _uncancel(self._task)
            if reason == _CLIENT:
                self._finish_callbacks()
                return
            code, details = _CANCEL_STATUS[reason]
        except ProtocolError as exc:
            code, details = exc.code, exc.message
        except Exception as exc:
            if self._code is not None and self._code is not StatusCode.OK:
                code = self._code
                details = self._details
            else:
                logger.exception("Exception in handler for %s", self._method)
                code = StatusCode.UNKNOWN
                details = self._error_details(behavior, exc)
        else:
            if self._cancel_reason is not None:  # cancelled while finishing up
                _uncancel(self._task)
                if self._cancel_reason == _CLIENT:
                    self._finish_callbacks()
                    return
                code, details = _CANCEL_STATUS[self._cancel_reason]
        if code is StatusCode.OK and self._code is not None:
            code = self._code
            details = self._details
        elif details is None:
            details = self._details
        self._finish_callbacks()
        try:
            await self._end(code, details)
        except asyncio.CancelledError:
            if self._cancel_reason is None:
                raise
            _uncancel(self._task)

    def _use_behavior_pool(self, behavior: Any) -> None:
        """grpc's blocking server runs a behaviour on its ``experimental_thread_pool`` when that
        is a ThreadPoolExecutor (grpc.aio's server has no such attribute, so its calls don't)."""
        pool = getattr(behavior, "experimental_thread_pool", None)
        if self._app.config.blocking_api and isinstance(pool, ThreadPoolExecutor):
            CALL_POOL.set(pool)

    def _error_details(self, behavior: Any, exc: Exception) -> str:
        """The details of a call whose handler raised, worded as each grpcio API words them."""
        try:
            if not self._app.config.blocking_api:
                return f"Unexpected {type(exc)}: {exc}"  # grpc.aio
            # grpc: a generator's exception comes while its responses are iterated. (A plain
            # function returning an iterator that raises later is worded as a call failure.)
            if inspect.isgeneratorfunction(behavior):
                return f"Exception iterating responses: {exc}"
            return f"Exception calling application: {exc}"
        except Exception:  # str(exc) raised
            return "Calling application raised unprintable Exception!"

    async def _invoke(self, behavior: Callable[..., Any], request: Any) -> Any:
        """Call a unary-response behaviour: coroutine function, or plain function on a thread."""
        if inspect.iscoroutinefunction(behavior):
            return await behavior(request, self)
        result = await self._app.run_sync(behavior, self._sync_request(request), _SyncContext(self))
        if inspect.isawaitable(result):  # a plain function that returned a coroutine
            return await result
        return result

    async def _run_streaming_response(self, behavior: Callable[..., Any], request: Any) -> None:
        if inspect.isasyncgenfunction(behavior):
            agen = behavior(request, self)
            try:
                async for response in agen:
                    await self._write(response)
            finally:
                await agen.aclose()
        elif inspect.iscoroutinefunction(behavior):
            await behavior(request, self)  # writes through context.write()
        else:
            await run_sync_stream(self, behavior, self._sync_request(request))

    def _sync_request(self, request: Any) -> Any:
        """For sync behaviours, a request stream becomes a blocking iterator."""
        if isinstance(request, _RequestIterator):
            return BlockingRequestIterator(self)
        return request

    def _expire(self) -> None:
        self._deadline_handle = None
        if not self._done and self._cancel_reason is None:
            self._cancel_reason = _DEADLINE
            if self._task is not None:
                self._task.cancel()

    def _shutdown(self) -> None:
        if not self._done and self._cancel_reason is None:
            self._cancel_reason = _SHUTDOWN
            if self._task is not None:
                self._task.cancel()

    def _client_gone(self) -> None:
        if not self._done and self._cancel_reason is None:
            self._cancel_reason = _CLIENT
            if self._task is not None:
                self._task.cancel()

    def _finish_callbacks(self) -> None:
        if self._done:
            return
        self._done = True
        if self._deadline_handle is not None:
            self._deadline_handle.cancel()
            self._deadline_handle = None
        watcher = self._watcher
        if watcher is not None and not watcher.done():
            if isinstance(watcher, asyncio.Task):
                watcher.cancel()
            else:  # the server's stream-closed future: not ours to cancel
                watcher.remove_done_callback(self._stream_closed)
        if self._requests is not None:
            self._requests.clear()  # nobody will read them: free them now, not at the end
        # As grpcio: the first callback that raises is logged and ends the run (the ones
        # registered after it are not called); the call's outcome is not changed.
        try:
            for callback in self._callbacks:
                callback(self)
        except Exception:
            logger.exception("Error in callback for method [%s]", self._method)
        self._callbacks.clear()

    # ------------------------------------------------------------------ request side

    async def _read_unary_request(self) -> Any:
        """Read the whole body of a unary request: exactly one message."""
        receive = self._receive
        reader = self._reader
        messages: list[tuple[bool, bytes]] = []
        offer = self._scope.get("extensions", {}).get(BODY_PARTS_EXTENSION)
        if offer is not None and offer["owner"] == id(getattr(receive, "__self__", None)):
            # The body as its pieces: a large message is joined once, by the reader (the
            # server would join each DATA frame's pieces, and the reader the frames). Only
            # from the server's own receive: a middleware's might rewrite the body.
            offer["wanted"] = True
        while True:
            event = await receive()
            if event["type"] != "http.request":  # http.disconnect
                self._cancel_reason = _CLIENT
                raise asyncio.CancelledError
            for body in event.get(BODY_PARTS_EXTENSION) or (event.get("body"),):
                if body:
                    messages += reader.feed(body)
                    if len(messages) > 1:
                        # At once: waiting for the end of the body would let a client queue
                        # messages here without bound.
                        raise ProtocolError(
                            StatusCode.INTERNAL, "Received too many messages for a unary request"
                        )
            if not event.get("more_body", False):
                break
        reader.close()
        if not messages:
            raise ProtocolError(
                StatusCode.UNIMPLEMENTED, "Missing request message for a unary call"
            )
        compressed, payload = messages[0]
        return self._deserialize(compressed, payload)

    def _deserialize(self, compressed: bool, payload: bytes) -> Any:
        return unpack_message(
            compressed,
            payload,
            self._head.encoding,
            self._app.config.max_receive_message_length,
            self._request_deserializer,
        )

    def _watch_disconnect(self) -> None:
        """After a unary request: cancel the call if the client goes away.

        Where the server offers the stream-closed extension (ours), a callback on its future
        does it; else a task waiting on receive() for ``http.disconnect``. The task costs a
        task per call and, cancelled at the call's end, a CancelledError whose traceback ties
        the call's objects into a reference cycle that only the garbage collector frees.
        """
        extension = self._scope.get("extensions", {}).get(STREAM_CLOSED_EXTENSION)
        if extension is None:
            self._watcher = self._loop.create_task(self._watch())
            return
        future: asyncio.Future[Any] = extension["future"]()
        self._watcher = future
        future.add_done_callback(self._stream_closed)

    def _stream_closed(self, _future: asyncio.Future[Any]) -> None:
        self._client_gone()

    async def _watch(self) -> None:
        """After a unary request: wait for the client to go away, and cancel the call if it does."""
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                event = await self._receive()
                if event["type"] == "http.disconnect":
                    self._client_gone()
                    return

    async def _next_request(self) -> Any:
        """The next request message, or EOF."""
        assert self._requests is not None
        message = await self._requests.next()
        if message is None:
            return EOF
        return self._deserialize(*message)

    # ------------------------------------------------------------------ response side

    def _response_headers(self) -> Any:
        self._sent_headers = True
        try:
            return response_headers(self._encoding, self._initial_metadata)
        except (ValueError, TypeError) as exc:
            raise ProtocolError(StatusCode.INTERNAL, f"invalid initial metadata: {exc}") from exc

    async def _send_headers(self) -> None:
        headers = self._response_headers()
        await self._send(
            {"type": "http.response.start", "status": 200, "headers": headers, "trailers": True}
        )

    async def _write(self, message: Any, last: bool = False) -> None:
        head, payload = self._frame(message)
        # (_send_framed's steps, not an await of it: a coroutine less per message, 3% of the
        # async server's instructions per streamed message, 41.4 -> 40.2 k)
        if not self._sent_headers:
            if last and self._whole_response():
                # A unary response: held for _end, which sends it with the trailers in one
                # message (the same frames; _end follows without a yield in between, so the
                # response leaves no later than before).
                headers = self._response_headers()
                parts = [head, payload] if len(payload) >= _SEND_APART else [head + payload]
                self._held = (headers, parts)
                self._body_closed = True
                return
            await self._send_headers()
        if len(payload) >= _SEND_APART:
            await self._send({"type": "http.response.body", "body": head, "more_body": True})
            body = payload
        else:
            body = head + payload
        await self._send({"type": "http.response.body", "body": body, "more_body": not last})
        self._body_closed = last

    def _frame(self, message: Any) -> tuple[bytes, bytes]:
        """``message`` serialized (and compressed), as its prefix and payload."""
        compressed = True
        if self._disable_next_compression:
            self._disable_next_compression = compressed = False
        try:
            return pack_message_parts(
                message,
                self._response_serializer,
                self._encoding,
                self._app.config.max_send_message_length,
                compressed=compressed,
            )
        except ProtocolError:
            raise
        except Exception as exc:
            if not self._app.config.blocking_api:
                raise  # grpc.aio: the call ends UNKNOWN, naming the exception
            # grpcio's blocking server: logged, and the call ends INTERNAL.
            logger.exception("Exception serializing message!")
            raise ProtocolError(StatusCode.INTERNAL, "Failed to serialize response!") from exc

    async def _send_framed(self, head: bytes, payload: bytes, last: bool = False) -> None:
        if not self._sent_headers:
            await self._send_headers()
        if len(payload) >= _SEND_APART:
            # Prefix and payload as two body events: a large payload is framed by the server
            # as it is, not copied behind its prefix into one framed message first.
            await self._send({"type": "http.response.body", "body": head, "more_body": True})
            body = payload
        else:
            body = head + payload
        await self._send({"type": "http.response.body", "body": body, "more_body": not last})
        # Only once the server took it: a send cancelled midway leaves the body open.
        self._body_closed = last

    def _whole_response(self) -> bool:
        """Whether the server offers RESPONSE_EXTENSION and ``send`` is its own."""
        offer = self._scope.get("extensions", {}).get(RESPONSE_EXTENSION)
        return offer is not None and offer["owner"] == id(getattr(self._send, "__self__", None))

    def _body_sink(self) -> tuple[Callable[[bytes], bool], Callable[[], None]] | None:
        """The server's body sink (BODY_SINK_EXTENSION: push, flush), if ``send`` is the
        server's own."""
        offer = self._scope.get("extensions", {}).get(BODY_SINK_EXTENSION)
        if offer is not None and offer["owner"] == id(getattr(self._send, "__self__", None)):
            return offer["push"], offer["flush"]
        return None

    def _push(self, sink: Callable[[bytes], bool], message: Any) -> tuple[bytes, bytes] | None:
        """A sync handler's response, on the loop: framed and queued through the server's body
        sink at once; None if it was, else its framed parts, for :meth:`_send_framed`. Only
        between the headers and the body's end (the sink takes body bytes only)."""
        head, payload = self._frame(message)
        if (
            self._sent_headers
            and not self._body_closed
            and len(payload) < _SEND_APART
            and sink(head + payload)
        ):
            return None
        return head, payload

    async def _end(self, code: StatusCode, details: str | None) -> None:
        """Send the status (and trailing metadata) that ends the call."""
        trailer_headers = trailers(code, details, self._trailing_metadata)
        send = self._send
        held = self._held
        if held is not None:
            self._held = None
            await send(
                {
                    "type": RESPONSE_EXTENSION,
                    "headers": held[0],
                    "body": held[1],
                    "trailers": trailer_headers,
                }
            )
            return
        if not self._sent_headers:
            if TRAILERS_ONLY_EXTENSION in self._scope.get("extensions", {}):
                trailer_headers[:0] = response_headers(IDENTITY)
                await send({"type": "http.response.trailers", "headers": trailer_headers})
                return
            await self._send_headers()
        if not self._body_closed:
            self._body_closed = True
            await send(_BODY_END)
        await send(
            {"type": "http.response.trailers", "headers": trailer_headers, "more_trailers": False}
        )

    # ------------------------------------------------------------------ grpc.aio.ServicerContext

    async def read(self) -> Any:
        """The next request message, or :data:`EOF` when the client is done writing."""
        if self._request_iterating:
            raise UsageError("Cannot mix read() with iterating over the request stream")
        return await self._next_request()

    async def write(self, message: Any) -> None:
        """Send one response message."""
        if self._done or self._body_closed:
            raise UsageError("The call has already ended")
        await self._write(message)

    async def send_initial_metadata(self, initial_metadata: MetadataLike) -> None:
        if self._sent_headers:
            raise UsageError("Initial metadata has already been sent")
        self._initial_metadata = initial_metadata
        await self._send_headers()
        # On the wire when this returns, as grpcio's server sends them, not queued for the
        # writer until the handler yields (a status that follows at once, an abort, would leave
        # in the same write). A client that retries (gRFC A6) can only take the call as begun
        # if it has the headers before the status.
        sink = self._body_sink()
        if sink is not None:
            sink[1]()

    async def abort(
        self,
        code: Any,
        details: str = "",
        trailing_metadata: MetadataLike = (),
    ) -> NoReturn:
        """End the call with ``code`` and ``details``: raises :class:`AbortError`."""
        if self._abort_called:
            raise UsageError("Abort already called!")
        # As grpc.aio: metadata that is not a tuple of pairs raises TypeError here (the call
        # then ends UNKNOWN, naming it), before anything is sent.
        trailing_metadata = checked_abort_metadata(trailing_metadata)
        status = coerce_status(code)
        if status is StatusCode.OK:
            logger.error("abort() called with StatusCode.OK; sending UNKNOWN instead")
            status = StatusCode.UNKNOWN
        self._abort_called = True
        self._code = status
        self._details = details
        if trailing_metadata:
            self._trailing_metadata = trailing_metadata
        raise AbortError(f"Locally aborted: {status.name} {details}")

    async def abort_with_status(self, status: Any) -> NoReturn:
        """End the call with a grpc.Status (code, details, trailing_metadata)."""
        await self.abort(status.code, status.details, status.trailing_metadata)

    def set_trailing_metadata(self, trailing_metadata: MetadataLike) -> None:
        self._trailing_metadata = checked_metadata(trailing_metadata, tuple_pairs=True)

    def trailing_metadata(self) -> MetadataLike:
        return self._trailing_metadata

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return tuple(self._head.metadata)

    def set_code(self, code: Any) -> None:
        self._code = coerce_status(code)

    def code(self) -> StatusCode | None:
        return self._code

    def set_details(self, details: str) -> None:
        self._details = details

    def details(self) -> str:
        return self._details or ""  # grpc.aio: an empty str until details are set

    def set_compression(self, compression: Compression) -> None:
        """Compress the responses of this call with ``compression`` if the client accepts it."""
        if self._sent_headers:
            # grpcio's type and words (grpc.aio raises a plain RuntimeError here).
            raise RuntimeError(
                "Compression setting must be specified before sending initial metadata"
            )
        name = encoding_name(compression)
        self._encoding = name if name in self._head.accept_encoding else IDENTITY

    def disable_next_message_compression(self) -> None:
        self._disable_next_compression = True

    def peer(self) -> str:
        return _peer(self._scope)

    def peer_identities(self) -> Iterable[bytes] | None:
        """The client certificate's SANs (or CN) under mutual TLS, else None."""
        auth = self.auth_context()
        key = self.peer_identity_key()
        return auth[key] if key is not None else None

    def peer_identity_key(self) -> str | None:
        auth = self.auth_context()
        for key in ("x509_subject_alternative_name", "x509_common_name"):
            if auth.get(key):
                return key
        return None

    def auth_context(self) -> dict[str, list[bytes]]:
        """grpcio's auth context (transport security, peer certificate names), as far as the
        server could see it: an asgi_grpc ``Server`` records it per TLS connection; anything
        else is an insecure connection, described as grpcio describes one."""
        state = self._scope.get("state")
        auth: dict[str, list[bytes]] | None = state.get(AUTH_CONTEXT_KEY) if state else None
        if auth is None:
            if self._scope.get("scheme") == "https":  # TLS, by a server that did not say more
                return {"transport_security_type": [b"ssl"], "security_level": [_TLS_LEVEL]}
            return {"transport_security_type": [b"insecure"], "security_level": [_NO_SECURITY]}
        return auth

    def time_remaining(self) -> float | None:
        if self._deadline_when is None:
            return None
        return max(0.0, self._deadline_when - self._loop.time())

    def cancelled(self) -> bool:
        return self._cancel_reason is not None

    def done(self) -> bool:
        return self._done

    def add_done_callback(self, callback: Callable[[ServicerContext], Any]) -> None:
        if self._done:
            callback(self)
        else:
            self._callbacks.append(callback)

    # grpcio exposes these on the aio context too.
    def is_active(self) -> bool:
        return not self._done and self._cancel_reason is None

    def method(self) -> str:
        return self._method


class _RequestIterator:
    """The async iterator over request messages that streaming-request handlers receive."""

    __slots__ = ("_call",)

    def __init__(self, call: ServicerContext) -> None:
        self._call = call

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        self._call._request_iterating = True
        message = await self._call._next_request()
        if message is EOF:
            raise StopAsyncIteration
        return message


def _uncancel(task: asyncio.Task[Any] | None) -> None:
    """Forget a cancellation this call requested itself (Python 3.11+ counts them)."""
    if task is not None and sys.version_info >= (3, 11):
        task.uncancel()


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    if not client:
        return "unix:"  # ASGI servers give no client address for unix sockets
    host, port = client[0], client[1]
    if not port and host.startswith("/"):
        return f"unix:{host}"
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]  # an IPv4 client of a dual-stack socket: reported as IPv4, as grpcio
    elif ":" in host:
        return f"ipv6:[{host}]:{port}"
    return f"ipv4:{host}:{port}"
