"""grpc.Channel and its multi-callables: blocking calls over a grpc.aio channel on the background
loop (asgi_grpc/_sync/_loop.py). The aio channel does the protocol work; this module only hands
calls to the loop and their results back (asgi_grpc/_sync/_calls.py)."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .._connectivity import ChannelConnectivity
from .._core import Compression, StatusCode, option_dict
from ..client._channel import INSECURE_CALL_CREDENTIALS
from ..client._channel import Channel as AioChannel
from . import _abc, _loop
from ._calls import (
    Deserializer,
    RequestFeed,
    ResponseStreamCall,
    SerializationFailed,
    Serializer,
    SyncCall,
    UnaryResponseCall,
    call_metadata,
    serialize_request,
    serialize_requests,
)

ChannelArgument = tuple[str, Any]
Callback = Callable[[ChannelConnectivity], Any]


class Channel(_abc.Channel):
    """grpc.Channel: thread-safe; every call runs on the shared background loop."""

    def __init__(
        self,
        target: str,
        options: Sequence[ChannelArgument] | None,
        credentials: Any,
        compression: Compression | None,
        *,
        aio_factory: Callable[[], AioChannel] | None = None,
    ) -> None:
        # ``aio_factory`` builds the aio channel instead (on the loop): asgi_grpc.testing's
        # in-memory channel comes in this way.
        # Bad options raise here, on the caller's thread, as grpcio's do (and once: an iterator
        # of options is read here only).
        options = list(option_dict(options).items())
        background = _loop.background()
        self._loop = background.loop
        self._closed = False
        self._lock = threading.Lock()
        # [callback, last state delivered to it]
        self._subscribers: list[list[Any]] = []
        self._watcher: Any = None

        def build() -> AioChannel:
            if aio_factory is not None:
                return aio_factory()
            return AioChannel(target, options, credentials, compression, None)

        async def create() -> AioChannel:
            return build()

        if _loop.on_loop():
            self._aio = build()
        else:
            self._aio = _loop.run(create)
        background.register(self)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("Cannot invoke RPC on closed channel!")

    # ------------------------------------------------------------------ multi-callables

    def unary_unary(
        self,
        method: str | bytes,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> UnaryUnaryMultiCallable:
        # (De)serialization happens in the sync layer: see _MultiCallable.
        aio = self._aio.unary_unary(_method(method), None, None)
        return UnaryUnaryMultiCallable(self, aio, request_serializer, response_deserializer)

    def unary_stream(
        self,
        method: str | bytes,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> UnaryStreamMultiCallable:
        # (De)serialization happens in the sync layer: see _MultiCallable.
        aio = self._aio.unary_stream(_method(method), None, None)
        return UnaryStreamMultiCallable(self, aio, request_serializer, response_deserializer)

    def stream_unary(
        self,
        method: str | bytes,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> StreamUnaryMultiCallable:
        # (De)serialization happens in the sync layer: see _MultiCallable.
        aio = self._aio.stream_unary(_method(method), None, None)
        return StreamUnaryMultiCallable(self, aio, request_serializer, response_deserializer)

    def stream_stream(
        self,
        method: str | bytes,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> StreamStreamMultiCallable:
        # (De)serialization happens in the sync layer: see _MultiCallable.
        aio = self._aio.stream_stream(_method(method), None, None)
        return StreamStreamMultiCallable(self, aio, request_serializer, response_deserializer)

    # ------------------------------------------------------------------ connectivity

    def subscribe(self, callback: Callback, try_to_connect: bool = False) -> None:
        """Call ``callback(state)`` (on a callback thread) now and on every state change."""
        with self._lock:
            if self._closed:
                return
            self._subscribers.append([callback, None])
        self._loop.call_soon_threadsafe(self._watch, try_to_connect)
        _loop.kick()

    def unsubscribe(self, callback: Callback) -> None:
        with self._lock:
            self._subscribers = [entry for entry in self._subscribers if entry[0] != callback]

    def _watch(self, try_to_connect: bool) -> None:
        """On the loop: make sure a task follows the state for the subscribers."""
        if self._closed:
            return
        state = self._aio.get_state(try_to_connect=try_to_connect)
        if self._watcher is None or self._watcher.done():
            self._watcher = self._loop.create_task(self._follow())
        else:
            self._deliver(state)

    async def _follow(self) -> None:
        aio = self._aio
        while not self._closed:
            state = aio.get_state()
            self._deliver(state)
            with self._lock:
                if not self._subscribers:
                    return
            if state is ChannelConnectivity.SHUTDOWN:
                return
            await aio.wait_for_state_change(state)

    def _deliver(self, state: ChannelConnectivity) -> None:
        with self._lock:
            due = [entry[0] for entry in self._subscribers if entry[1] is not state]
            for entry in self._subscribers:
                entry[1] = state
        for callback in due:
            _loop.dispatch(functools.partial(callback, state))

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Close the channel: calls in flight end CANCELLED, new ones raise ValueError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._subscribers = []
        if _loop.on_loop():
            self._loop.create_task(self._aclose())
            return
        # Past the timeout, connections are still torn down in the background.
        with contextlib.suppress(TimeoutError):
            _loop.run(self._aclose, timeout=_loop.EXIT_GRACE * 2)

    async def _aclose(self) -> None:
        watcher = self._watcher
        if watcher is not None:
            watcher.cancel()
        await self._aio.close()

    async def _close_at_exit(self) -> None:
        self._closed = True
        await self._aclose()

    def __del__(self) -> None:
        # As grpcio's channel does when collected: let go of the connections.
        try:
            if not self._closed and not self._loop.is_closed():
                self._closed = True
                self._loop.call_soon_threadsafe(lambda: self._loop.create_task(self._aio.close()))
        except Exception:  # nothing to do about it at collection time
            pass


def _method(method: str | bytes) -> str:
    """grpcio takes method names as bytes too."""
    return method.decode("ascii") if isinstance(method, bytes) else method


class _MultiCallable:
    """Requests are serialized in the caller's thread (or the request feed's) and responses
    deserialized here too, not by the aio call: grpcio's errors for each (a TypeError at the
    call site, INTERNAL "Exception serializing request!", ...) need to know which step failed,
    and serializing off the loop thread keeps the one loop free for I/O."""

    __slots__ = ("_aio", "_channel", "_deserialize", "_serialize")

    def __init__(
        self,
        channel: Channel,
        aio: Any,
        request_serializer: Serializer | None = None,
        response_deserializer: Deserializer | None = None,
    ) -> None:
        self._channel = channel
        self._aio = aio
        self._serialize = request_serializer
        self._deserialize = response_deserializer

    def _launch(
        self,
        call: SyncCall,
        request: Any,
        kwargs: dict[str, Any],
        streaming: bool = False,
        blocking: bool = False,
    ) -> None:
        """Check and serialize the request here, then hand the call's start to the loop.

        ``blocking``: the caller waits for the call next (``__call__``, ``with_call``), so the
        start is left to that wait (``SyncCall.start_here``), which runs it on this thread
        when it takes the loop instead of posting it."""
        channel = self._channel
        feed = call._feed
        aio = self._aio
        call._deserialize = self._deserialize
        if kwargs["credentials"] is not None and not channel._aio._secure:
            # As grpcio: the call fails, nothing is sent (no request is read).
            call._finish(StatusCode.UNAUTHENTICATED, INSECURE_CALL_CREDENTIALS)
            return
        try:
            if not streaming:
                request = serialize_request(self._serialize, request)
            elif feed is None:  # a list or tuple
                request = serialize_requests(self._serialize, request)
        except SerializationFailed as failed:
            call._finish(failed.code, failed.details)
            return

        def make() -> Any:
            return aio(feed.iterate() if feed is not None else request, **kwargs)

        if blocking and feed is None:
            if call._loop.is_closed():  # (as the post below would find it)
                raise ValueError("Cannot invoke RPC: Channel closed!")
            call._make = make
            return
        try:
            call._post(call._launch, make)
        except RuntimeError:  # the loop was closed: interpreter exit
            raise ValueError("Cannot invoke RPC: Channel closed!") from None
        if feed is not None:
            feed.start()

    def _feed(self, call: SyncCall, request_iterator: Any) -> None:
        """A request iterator that is not a plain list or tuple is read on a thread of its own."""
        if not isinstance(request_iterator, (list, tuple)):
            RequestFeed(call, request_iterator, self._serialize)


def _kwargs(
    timeout: float | None,
    metadata: Any,
    credentials: Any,
    wait_for_ready: bool | None,
    compression: Compression | None,
) -> dict[str, Any]:
    """A call's arguments, checked at the call site with grpcio's exception types."""
    if credentials is not None and not hasattr(credentials, "plugins"):
        raise AttributeError(
            f"{type(credentials).__name__!r} object has no attribute '_credentials'"
        )
    if compression is not None:
        try:
            Compression(compression)
        except ValueError:
            raise KeyError(compression) from None
    return {
        "timeout": timeout,
        "metadata": call_metadata(metadata),
        "credentials": credentials,
        "wait_for_ready": wait_for_ready,
        "compression": compression,
    }


class UnaryUnaryMultiCallable(_MultiCallable, _abc.UnaryUnaryMultiCallable):
    """grpc.UnaryUnaryMultiCallable."""

    __slots__ = ()

    def _start(
        self,
        request: Any,
        timeout: float | None,
        metadata: Any,
        credentials: Any,
        wait_for_ready: bool | None,
        compression: Compression | None,
        blocking: bool = False,
    ) -> UnaryResponseCall:
        channel = self._channel
        channel._check_open()
        kwargs = _kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        call = UnaryResponseCall(channel._loop, timeout)
        self._launch(call, request, kwargs, blocking=blocking)
        return call

    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> Any:
        _loop.check_not_loop_thread()
        return self._start(
            request, timeout, metadata, credentials, wait_for_ready, compression, blocking=True
        )._block()

    def with_call(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> tuple[Any, UnaryResponseCall]:
        _loop.check_not_loop_thread()
        call = self._start(
            request, timeout, metadata, credentials, wait_for_ready, compression, blocking=True
        )
        return call._block(), call

    def future(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> UnaryResponseCall:
        call = self._start(request, timeout, metadata, credentials, wait_for_ready, compression)
        _loop.kick()  # nobody may wait on it: the loop must run now
        return call


class UnaryStreamMultiCallable(_MultiCallable, _abc.UnaryStreamMultiCallable):
    """grpc.UnaryStreamMultiCallable."""

    __slots__ = ()

    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> ResponseStreamCall:
        channel = self._channel
        channel._check_open()
        kwargs = _kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        call = ResponseStreamCall(channel._loop, timeout)
        self._launch(call, request, kwargs)
        return call


class StreamUnaryMultiCallable(_MultiCallable, _abc.StreamUnaryMultiCallable):
    """grpc.StreamUnaryMultiCallable."""

    __slots__ = ()

    def _start(
        self,
        request_iterator: Any,
        timeout: float | None,
        metadata: Any,
        credentials: Any,
        wait_for_ready: bool | None,
        compression: Compression | None,
    ) -> UnaryResponseCall:
        channel = self._channel
        channel._check_open()
        kwargs = _kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        call = UnaryResponseCall(channel._loop, timeout)
        self._feed(call, request_iterator)
        self._launch(call, request_iterator, kwargs, streaming=True)
        return call

    def __call__(
        self,
        request_iterator: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> Any:
        _loop.check_not_loop_thread()
        return self._start(
            request_iterator, timeout, metadata, credentials, wait_for_ready, compression
        )._block()

    def with_call(
        self,
        request_iterator: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> tuple[Any, UnaryResponseCall]:
        _loop.check_not_loop_thread()
        call = self._start(
            request_iterator, timeout, metadata, credentials, wait_for_ready, compression
        )
        return call._block(), call

    def future(
        self,
        request_iterator: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> UnaryResponseCall:
        call = self._start(
            request_iterator, timeout, metadata, credentials, wait_for_ready, compression
        )
        _loop.kick()  # nobody may wait on it: the loop must run now
        return call


class StreamStreamMultiCallable(_MultiCallable, _abc.StreamStreamMultiCallable):
    """grpc.StreamStreamMultiCallable."""

    __slots__ = ()

    def __call__(
        self,
        request_iterator: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> ResponseStreamCall:
        channel = self._channel
        channel._check_open()
        kwargs = _kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        call = ResponseStreamCall(channel._loop, timeout)
        self._feed(call, request_iterator)
        self._launch(call, request_iterator, kwargs, streaming=True)
        return call


def insecure_channel(
    target: str,
    options: Sequence[ChannelArgument] | None = None,
    compression: Compression | None = None,
) -> Channel:
    """grpc.insecure_channel: h2c with prior knowledge."""
    return Channel(target, options, None, compression)


def secure_channel(
    target: str,
    credentials: Any,
    options: Sequence[ChannelArgument] | None = None,
    compression: Compression | None = None,
) -> Channel:
    """grpc.secure_channel: TLS (ALPN h2) with ``ssl_channel_credentials(...)``."""
    if credentials is None:
        raise ValueError("secure_channel needs ChannelCredentials; use insecure_channel instead")
    return Channel(target, options, credentials, compression)


# ---------------------------------------------------------------------- channel_ready_future


class _ChannelReadyFuture(_abc.Future):
    """A grpc.Future that matures when the channel is READY; cancelling it only unsubscribes."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        self._cond = threading.Condition()
        self._matured = False
        self._cancelled = False
        self._callbacks: list[Callable[[Any], Any]] | None = []

    def _start(self) -> None:
        self._channel.subscribe(self._update, try_to_connect=True)

    def _settle(self, *, matured: bool) -> bool:
        with self._cond:
            if self._matured or self._cancelled:
                return False
            if matured:
                self._matured = True
            else:
                self._cancelled = True
            self._cond.notify_all()
            callbacks, self._callbacks = self._callbacks, None
        self._channel.unsubscribe(self._update)
        for callback in callbacks or ():
            try:
                callback(self)
            except Exception:  # noqa: PERF203 - one failing callback must not skip the others
                _loop.logger.exception("channel_ready_future done callback failed")
        return True

    def _update(self, state: ChannelConnectivity) -> None:
        if state is ChannelConnectivity.READY:
            self._settle(matured=True)

    def _block(self, timeout: float | None) -> None:
        with self._cond:
            if not _loop.wait_condition(
                self._cond, lambda: self._matured or self._cancelled, timeout
            ):
                raise _abc.FutureTimeoutError()
            if self._cancelled:
                raise _abc.FutureCancelledError()

    def cancel(self) -> bool:
        return self._settle(matured=False)

    def cancelled(self) -> bool:
        return self._cancelled

    def running(self) -> bool:
        return not (self._matured or self._cancelled)

    def done(self) -> bool:
        return self._matured or self._cancelled

    def result(self, timeout: float | None = None) -> None:
        self._block(timeout)

    def exception(self, timeout: float | None = None) -> None:
        self._block(timeout)

    def traceback(self, timeout: float | None = None) -> None:
        self._block(timeout)

    def add_done_callback(self, fn: Callable[[Any], Any]) -> None:
        with self._cond:
            if self._callbacks is not None:
                self._callbacks.append(fn)
                return
        fn(self)


def channel_ready_future(channel: Any) -> _abc.Future:
    """grpc.channel_ready_future: a Future that matures once ``channel`` is READY."""
    future = _ChannelReadyFuture(channel)
    future._start()
    return future
