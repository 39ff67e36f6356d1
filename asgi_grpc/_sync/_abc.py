"""grpc's abstract types of the synchronous API, name for name.

Users subclass some of them (interceptors, ``ClientCallDetails`` mixed into a namedtuple,
``AuthMetadataPlugin``) and test others with ``isinstance`` (``Future``, ``Call``, ``RpcError``).
asgi_grpc never requires grpcio's own classes: everything it is handed is read by method or
attribute name, so objects derived from grpcio's ABCs work as well.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from .._core import StatusCode

MetadataType = Any  # a sequence of (key, value) pairs


class FutureTimeoutError(Exception):
    """grpc.FutureTimeoutError: a method call on a Future timed out."""


class FutureCancelledError(Exception):
    """grpc.FutureCancelledError: the computation underlying a Future was cancelled."""


class Future(abc.ABC):
    """grpc.Future: a computation in another control flow (an RPC, a channel becoming ready)."""

    @abc.abstractmethod
    def cancel(self) -> bool:
        """Attempt to cancel; False if the computation has already ended."""

    @abc.abstractmethod
    def cancelled(self) -> bool: ...

    @abc.abstractmethod
    def running(self) -> bool: ...

    @abc.abstractmethod
    def done(self) -> bool: ...

    @abc.abstractmethod
    def result(self, timeout: float | None = None) -> Any:
        """The value, or raise the computation's exception (FutureTimeoutError on timeout)."""

    @abc.abstractmethod
    def exception(self, timeout: float | None = None) -> BaseException | None: ...

    @abc.abstractmethod
    def traceback(self, timeout: float | None = None) -> TracebackType | None: ...

    @abc.abstractmethod
    def add_done_callback(self, fn: Callable[[Any], Any]) -> None:
        """Call ``fn(self)`` once done (at once if already done)."""


class RpcContext(abc.ABC):
    """grpc.RpcContext: what both sides of an RPC can see and do."""

    @abc.abstractmethod
    def is_active(self) -> bool: ...

    @abc.abstractmethod
    def time_remaining(self) -> float | None: ...

    @abc.abstractmethod
    def cancel(self) -> Any: ...

    @abc.abstractmethod
    def add_callback(self, callback: Callable[[], Any]) -> bool:
        """Register ``callback()`` for when the RPC ends; False if it already has."""


class Call(RpcContext, metaclass=abc.ABCMeta):
    """grpc.Call: the client's view of one RPC."""

    @abc.abstractmethod
    def initial_metadata(self) -> MetadataType: ...

    @abc.abstractmethod
    def trailing_metadata(self) -> MetadataType: ...

    @abc.abstractmethod
    def code(self) -> StatusCode: ...

    @abc.abstractmethod
    def details(self) -> str | None: ...


class Status(abc.ABC):  # noqa: B024 - attributes only, as in grpc
    """grpc.Status: ``code``, ``details`` and ``trailing_metadata`` of an RPC's end."""


class ClientCallDetails(abc.ABC):  # noqa: B024 - an attribute-only ABC, as in grpc
    """grpc.ClientCallDetails: ``method``, ``timeout``, ``metadata``, ``credentials``,
    ``wait_for_ready`` and ``compression`` of a call being intercepted (usually mixed into a
    namedtuple by the user)."""


class UnaryUnaryClientInterceptor(abc.ABC):
    """grpc.UnaryUnaryClientInterceptor."""

    @abc.abstractmethod
    def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        """Return what ``continuation(details, request)`` returns: a Call that is a Future."""


class UnaryStreamClientInterceptor(abc.ABC):
    """grpc.UnaryStreamClientInterceptor."""

    @abc.abstractmethod
    def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        """Return a Call that is an iterator of responses."""


class StreamUnaryClientInterceptor(abc.ABC):
    """grpc.StreamUnaryClientInterceptor."""

    @abc.abstractmethod
    def intercept_stream_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Return a Call that is a Future."""


class StreamStreamClientInterceptor(abc.ABC):
    """grpc.StreamStreamClientInterceptor."""

    @abc.abstractmethod
    def intercept_stream_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request_iterator: Any
    ) -> Any:
        """Return a Call that is an iterator of responses."""


class AuthMetadataPluginCallback(abc.ABC):  # noqa: B024 - as in grpc
    """grpc.AuthMetadataPluginCallback: what a metadata plugin calls with its metadata."""

    def __call__(self, metadata: MetadataType, error: BaseException | None) -> None:
        raise NotImplementedError


class AuthMetadataPlugin(abc.ABC):  # noqa: B024 - as in grpc
    """grpc.AuthMetadataPlugin: ``plugin(context, callback)`` supplies per-call metadata."""

    def __call__(self, context: Any, callback: Any) -> None:
        raise NotImplementedError


class UnaryUnaryMultiCallable(abc.ABC):
    """grpc.UnaryUnaryMultiCallable."""

    @abc.abstractmethod
    def __call__(self, request: Any, *args: Any, **kwargs: Any) -> Any: ...

    @abc.abstractmethod
    def with_call(self, request: Any, *args: Any, **kwargs: Any) -> tuple[Any, Call]: ...

    @abc.abstractmethod
    def future(self, request: Any, *args: Any, **kwargs: Any) -> Any: ...


class UnaryStreamMultiCallable(abc.ABC):
    """grpc.UnaryStreamMultiCallable."""

    @abc.abstractmethod
    def __call__(self, request: Any, *args: Any, **kwargs: Any) -> Any: ...


class StreamUnaryMultiCallable(abc.ABC):
    """grpc.StreamUnaryMultiCallable."""

    @abc.abstractmethod
    def __call__(self, request_iterator: Any, *args: Any, **kwargs: Any) -> Any: ...

    @abc.abstractmethod
    def with_call(self, request_iterator: Any, *args: Any, **kwargs: Any) -> tuple[Any, Call]: ...

    @abc.abstractmethod
    def future(self, request_iterator: Any, *args: Any, **kwargs: Any) -> Any: ...


class StreamStreamMultiCallable(abc.ABC):
    """grpc.StreamStreamMultiCallable."""

    @abc.abstractmethod
    def __call__(self, request_iterator: Any, *args: Any, **kwargs: Any) -> Iterator[Any]: ...


class Channel(abc.ABC):
    """grpc.Channel: creates multi-callables; a context manager that closes on exit."""

    @abc.abstractmethod
    def subscribe(self, callback: Callable[[Any], Any], try_to_connect: bool = False) -> None: ...

    @abc.abstractmethod
    def unsubscribe(self, callback: Callable[[Any], Any]) -> None: ...

    @abc.abstractmethod
    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> UnaryUnaryMultiCallable: ...

    @abc.abstractmethod
    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> UnaryStreamMultiCallable: ...

    @abc.abstractmethod
    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> StreamUnaryMultiCallable: ...

    @abc.abstractmethod
    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> StreamStreamMultiCallable: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Server(abc.ABC):
    """grpc.Server."""

    @abc.abstractmethod
    def add_generic_rpc_handlers(self, generic_rpc_handlers: Any) -> None: ...

    def add_registered_method_handlers(  # noqa: B027 - optional, as in grpc
        self, service_name: str, method_handlers: Any
    ) -> None:
        """Register ``{method: handler}`` for one service (faster lookup than generic)."""

    @abc.abstractmethod
    def add_insecure_port(self, address: str) -> int: ...

    @abc.abstractmethod
    def add_secure_port(self, address: str, server_credentials: Any) -> int: ...

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def stop(self, grace: float | None) -> Any: ...

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Block until the server stops; True if ``timeout`` ran out first."""
        raise NotImplementedError


class ServicerContext(RpcContext, metaclass=abc.ABCMeta):
    """grpc.ServicerContext: a sync servicer's window onto its RPC."""

    @abc.abstractmethod
    def invocation_metadata(self) -> MetadataType: ...

    @abc.abstractmethod
    def peer(self) -> str: ...

    @abc.abstractmethod
    def peer_identities(self) -> Any: ...

    @abc.abstractmethod
    def peer_identity_key(self) -> str | None: ...

    @abc.abstractmethod
    def auth_context(self) -> dict[str, list[bytes]]: ...

    def set_compression(self, compression: Any) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def send_initial_metadata(self, initial_metadata: MetadataType) -> None: ...

    @abc.abstractmethod
    def set_trailing_metadata(self, trailing_metadata: MetadataType) -> None: ...

    def trailing_metadata(self) -> MetadataType:
        raise NotImplementedError

    @abc.abstractmethod
    def abort(self, code: Any, details: str) -> Any: ...

    @abc.abstractmethod
    def abort_with_status(self, status: Any) -> Any: ...

    @abc.abstractmethod
    def set_code(self, code: Any) -> None: ...

    @abc.abstractmethod
    def set_details(self, details: str) -> None: ...

    def code(self) -> Any:
        raise NotImplementedError

    def details(self) -> Any:
        raise NotImplementedError

    def disable_next_message_compression(self) -> None:
        raise NotImplementedError
