"""Types that generated ``.pyi`` stubs refer to: typed multi-callables, call objects, servicer
signatures.

asgi_grpc's channel classes take ``Any`` requests (as grpcio's do); these Protocols describe what
a generated stub's attributes do for one method, with its request and response types filled in,
so ``await stub.Unary(request)`` is checked end to end under ``mypy --strict``.

One ``XStub`` class works with both kinds of channel. Its stub is generic over a mode
(:class:`Aio` or :class:`Sync`), picked by the ``__init__`` overload the channel matches, and each
method attribute is a descriptor (:class:`UnaryUnaryAttribute`...) whose ``__get__`` returns the
aio or the sync multi-callable for that mode::

    stub = EchoStub(asgi_grpc.aio.insecure_channel(target))   # EchoStub[Aio]
    call = stub.Unary(request)                                # AioUnaryUnaryCall[Req, Resp]
    response = await call                                     # Resp
"""

from __future__ import annotations

import abc
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Sequence,
)
from typing import Any, Generic, Protocol, TypeAlias, TypeVar, overload

from .._core import Compression, Metadata, StatusCode
from .._credentials import CallCredentials
from .._errors import _EOFType
from .._sync import ServicerContext as _SyncServicerContext
from ..server import ServicerContext as _AioServicerContext

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")
_Req_contra = TypeVar("_Req_contra", contravariant=True)
_Resp_co = TypeVar("_Resp_co", covariant=True)
_T = TypeVar("_T")

MetadataType: TypeAlias = Metadata | Sequence[tuple[str, str | bytes]]
"""What a call's ``metadata=`` accepts."""


# ------------------------------------------------------------------------------ modes


class Aio:
    """Mode marker: the stub was built on an ``asgi_grpc.aio.Channel``."""


class Sync:
    """Mode marker: the stub was built on a synchronous channel."""


ModeT = TypeVar("ModeT", Aio, Sync)


class Stub(Generic[ModeT]):
    """The typing-only base of generated stub classes (``XStub[Aio]`` / ``XStub[Sync]``)."""


class SyncChannel(Protocol):
    """A synchronous channel: grpcio's ``grpc.Channel`` methods, with a blocking ``close()``.

    ``close()`` returning ``None`` is what tells it from an aio channel, whose ``close()``
    returns a coroutine."""

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any: ...
    def close(self) -> None: ...


# ------------------------------------------------------------------------------ aio calls


class AioCall(Protocol):
    """grpc.aio.Call."""

    def cancel(self) -> bool: ...
    def cancelled(self) -> bool: ...
    def done(self) -> bool: ...
    def time_remaining(self) -> float | None: ...
    def add_done_callback(self, callback: Callable[[Any], None]) -> None: ...
    async def initial_metadata(self) -> Metadata: ...
    async def trailing_metadata(self) -> Metadata: ...
    async def code(self) -> StatusCode: ...
    async def details(self) -> str: ...
    async def wait_for_connection(self) -> None: ...


class AioUnaryUnaryCall(AioCall, Protocol[_Resp_co]):
    """grpc.aio.UnaryUnaryCall: await it for the response."""

    def __await__(self) -> Generator[Any, None, _Resp_co]: ...


class AioUnaryStreamCall(AioCall, Protocol[_Resp_co]):
    """grpc.aio.UnaryStreamCall: iterate it, or ``read()`` until ``asgi_grpc.aio.EOF``."""

    def __aiter__(self) -> AsyncIterator[_Resp_co]: ...
    async def read(self) -> _Resp_co | _EOFType: ...


class AioStreamUnaryCall(AioCall, Protocol[_Req_contra, _Resp_co]):
    """grpc.aio.StreamUnaryCall: ``write()`` requests, ``done_writing()``, await the response."""

    async def write(self, request: _Req_contra) -> None: ...
    async def done_writing(self) -> None: ...
    def __await__(self) -> Generator[Any, None, _Resp_co]: ...


class AioStreamStreamCall(AioCall, Protocol[_Req_contra, _Resp_co]):
    """grpc.aio.StreamStreamCall: full duplex."""

    async def write(self, request: _Req_contra) -> None: ...
    async def done_writing(self) -> None: ...
    def __aiter__(self) -> AsyncIterator[_Resp_co]: ...
    async def read(self) -> _Resp_co | _EOFType: ...


RequestSource: TypeAlias = Iterable[_T] | AsyncIterable[_T]


class AioUnaryUnaryMultiCallable(Protocol[_Req_contra, _Resp_co]):
    def __call__(
        self,
        request: _Req_contra,
        *,
        timeout: float | None = None,
        metadata: MetadataType | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> AioUnaryUnaryCall[_Resp_co]: ...


class AioUnaryStreamMultiCallable(Protocol[_Req_contra, _Resp_co]):
    def __call__(
        self,
        request: _Req_contra,
        *,
        timeout: float | None = None,
        metadata: MetadataType | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> AioUnaryStreamCall[_Resp_co]: ...


class AioStreamUnaryMultiCallable(Protocol[_Req_contra, _Resp_co]):
    def __call__(
        self,
        request_iterator: RequestSource[_Req_contra] | None = None,
        timeout: float | None = None,
        metadata: MetadataType | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> AioStreamUnaryCall[_Req_contra, _Resp_co]: ...


class AioStreamStreamMultiCallable(Protocol[_Req_contra, _Resp_co]):
    def __call__(
        self,
        request_iterator: RequestSource[_Req_contra] | None = None,
        timeout: float | None = None,
        metadata: MetadataType | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> AioStreamStreamCall[_Req_contra, _Resp_co]: ...


# ------------------------------------------------------------------------------ sync calls


class Call(Protocol):
    """grpc.Call (sync)."""

    def is_active(self) -> bool: ...
    def time_remaining(self) -> float | None: ...
    def cancel(self) -> bool: ...
    def add_callback(self, callback: Callable[[], None]) -> bool: ...
    def initial_metadata(self) -> Metadata: ...
    def trailing_metadata(self) -> Metadata: ...
    def code(self) -> StatusCode: ...
    def details(self) -> str: ...


class CallFuture(Call, Protocol[_Resp_co]):
    """grpc.Call and grpc.Future in one: what ``multicallable.future(...)`` returns."""

    def cancelled(self) -> bool: ...
    def running(self) -> bool: ...
    def done(self) -> bool: ...
    def result(self, timeout: float | None = None) -> _Resp_co: ...
    def exception(self, timeout: float | None = None) -> BaseException | None: ...
    def add_done_callback(self, fn: Callable[[Any], None]) -> None: ...


class ResponseIterator(Call, Protocol[_Resp_co]):
    """What a response-streaming sync call returns: an iterator that is also the call."""

    def __iter__(self) -> Iterator[_Resp_co]: ...
    def __next__(self) -> _Resp_co: ...


class UnaryUnaryMultiCallable(Protocol[_Req_contra, _Resp_co]):
    def __call__(
        self,
        request: _Req_contra,
        timeout: float | None = None,
        metadata: MetadataType | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> _Resp_co: ...
    def with_call(
        self,
        request: _Req_contra,
        timeout: float | None = None,
        metadata: MetadataType | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> tuple[_Resp_co, Call]: ...
    def future(
        self,
        request: _Req_contra,
        timeout: float | None = None,
        metadata: MetadataType | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> CallFuture[_Resp_co]: ...


class UnaryStreamMultiCallable(Protocol[_Req_contra, _Resp_co]):
    def __call__(
        self,
        request: _Req_contra,
        timeout: float | None = None,
        metadata: MetadataType | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> ResponseIterator[_Resp_co]: ...


class StreamUnaryMultiCallable(Protocol[_Req_contra, _Resp_co]):
    def __call__(
        self,
        request_iterator: Iterator[_Req_contra],
        timeout: float | None = None,
        metadata: MetadataType | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> _Resp_co: ...
    def with_call(
        self,
        request_iterator: Iterator[_Req_contra],
        timeout: float | None = None,
        metadata: MetadataType | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> tuple[_Resp_co, Call]: ...
    def future(
        self,
        request_iterator: Iterator[_Req_contra],
        timeout: float | None = None,
        metadata: MetadataType | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> CallFuture[_Resp_co]: ...


class StreamStreamMultiCallable(Protocol[_Req_contra, _Resp_co]):
    def __call__(
        self,
        request_iterator: Iterator[_Req_contra],
        timeout: float | None = None,
        metadata: MetadataType | None = None,
        credentials: CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: Compression | None = None,
    ) -> ResponseIterator[_Resp_co]: ...


# ------------------------------------------------------------------------------ stub attributes
# Descriptors exist for the type checker only: generated modules assign plain multi-callables.


class UnaryUnaryAttribute(Generic[RequestT, ResponseT]):
    @overload
    def __get__(
        self, stub: Stub[Aio], owner: Any
    ) -> AioUnaryUnaryMultiCallable[RequestT, ResponseT]: ...
    @overload
    def __get__(
        self, stub: Stub[Sync], owner: Any
    ) -> UnaryUnaryMultiCallable[RequestT, ResponseT]: ...
    def __get__(self, stub: Any, owner: Any) -> Any:
        raise NotImplementedError  # typing only


class UnaryStreamAttribute(Generic[RequestT, ResponseT]):
    @overload
    def __get__(
        self, stub: Stub[Aio], owner: Any
    ) -> AioUnaryStreamMultiCallable[RequestT, ResponseT]: ...
    @overload
    def __get__(
        self, stub: Stub[Sync], owner: Any
    ) -> UnaryStreamMultiCallable[RequestT, ResponseT]: ...
    def __get__(self, stub: Any, owner: Any) -> Any:
        raise NotImplementedError  # typing only


class StreamUnaryAttribute(Generic[RequestT, ResponseT]):
    @overload
    def __get__(
        self, stub: Stub[Aio], owner: Any
    ) -> AioStreamUnaryMultiCallable[RequestT, ResponseT]: ...
    @overload
    def __get__(
        self, stub: Stub[Sync], owner: Any
    ) -> StreamUnaryMultiCallable[RequestT, ResponseT]: ...
    def __get__(self, stub: Any, owner: Any) -> Any:
        raise NotImplementedError  # typing only


class StreamStreamAttribute(Generic[RequestT, ResponseT]):
    @overload
    def __get__(
        self, stub: Stub[Aio], owner: Any
    ) -> AioStreamStreamMultiCallable[RequestT, ResponseT]: ...
    @overload
    def __get__(
        self, stub: Stub[Sync], owner: Any
    ) -> StreamStreamMultiCallable[RequestT, ResponseT]: ...
    def __get__(self, stub: Any, owner: Any) -> Any:
        raise NotImplementedError  # typing only


# ------------------------------------------------------------------------------ servicers


# The two contexts disagree on purpose (``abort`` is a coroutine on one, blocking on the other);
# the intersection is never instantiated, it only gives overrides room to take either.
class ServicerContext(_AioServicerContext, _SyncServicerContext):  # type: ignore[misc]
    """The context a generated servicer method is declared to take.

    Servicer methods run on sync and aio servers alike, so the declared type is the
    intersection of both contexts: an override may take either (parameters are contravariant).
    """


class RequestIterator(Iterator[_T], AsyncIterator[_T], abc.ABC):
    """What a request-streaming servicer method receives: an iterator on sync servers, an async
    iterator on aio servers. Declared as both (an intersection), so overrides may take either."""


UnaryResult: TypeAlias = _T | Awaitable[_T]
"""A unary response: returned by a ``def`` method, or by an ``async def`` one."""

StreamResult: TypeAlias = Iterator[_T] | AsyncIterator[_T]
"""A response stream: a generator, or an async generator."""


class Server(Protocol):
    """Anything ``add_XServicer_to_server`` registers on: asgi_grpc's servers and app, grpcio's."""

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Any, /) -> None: ...


__all__ = [
    "Aio",
    "AioCall",
    "AioStreamStreamCall",
    "AioStreamStreamMultiCallable",
    "AioStreamUnaryCall",
    "AioStreamUnaryMultiCallable",
    "AioUnaryStreamCall",
    "AioUnaryStreamMultiCallable",
    "AioUnaryUnaryCall",
    "AioUnaryUnaryMultiCallable",
    "Call",
    "CallFuture",
    "MetadataType",
    "ModeT",
    "RequestIterator",
    "RequestSource",
    "RequestT",
    "ResponseIterator",
    "ResponseT",
    "Server",
    "ServicerContext",
    "StreamResult",
    "StreamStreamAttribute",
    "StreamStreamMultiCallable",
    "StreamUnaryAttribute",
    "StreamUnaryMultiCallable",
    "Stub",
    "Sync",
    "SyncChannel",
    "UnaryResult",
    "UnaryStreamAttribute",
    "UnaryStreamMultiCallable",
    "UnaryUnaryAttribute",
    "UnaryUnaryMultiCallable",
]
