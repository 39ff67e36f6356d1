"""grpcio's handler vocabulary: method handlers, generic handlers, handler call details.

These are the objects that grpcio-tools' ``add_XServicer_to_server`` builds and hands to a server.
Generated code imports whichever ``grpc`` the user has, so a server must accept grpcio's own
``RpcMethodHandler`` namedtuples as readily as ours: everything here is read by field name.
"""

from __future__ import annotations

import abc
import collections
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, Protocol

Serializer = Callable[[Any], bytes]
Deserializer = Callable[[bytes], Any]


class RpcMethodHandler(abc.ABC):
    """grpc.RpcMethodHandler: how to run one method.

    An abstract base with no abstract methods, as in grpcio: servers read the attributes below
    from any object (a subclass that sets them in its ``__init__``, grpcio's own handlers, or a
    plain object), and exactly one of the four behaviours is set.
    """

    request_streaming: bool
    response_streaming: bool
    request_deserializer: Deserializer | None
    response_serializer: Serializer | None
    unary_unary: Callable[..., Any] | None
    unary_stream: Callable[..., Any] | None
    stream_unary: Callable[..., Any] | None
    stream_stream: Callable[..., Any] | None


_Fields = collections.namedtuple(
    "_Fields",
    (
        "request_streaming",
        "response_streaming",
        "request_deserializer",
        "response_serializer",
        "unary_unary",
        "unary_stream",
        "stream_unary",
        "stream_stream",
    ),
)


class _RpcMethodHandler(_Fields, RpcMethodHandler):
    """What the ``*_rpc_method_handler`` factories return: a namedtuple, so that interceptors
    can ``handler._replace(unary_unary=wrapped)`` as they do with grpcio's."""

    __slots__ = ()


def unary_unary_rpc_method_handler(
    behavior: Callable[..., Any],
    request_deserializer: Deserializer | None = None,
    response_serializer: Serializer | None = None,
) -> RpcMethodHandler:
    return _RpcMethodHandler(
        False, False, request_deserializer, response_serializer, behavior, None, None, None
    )


def unary_stream_rpc_method_handler(
    behavior: Callable[..., Any],
    request_deserializer: Deserializer | None = None,
    response_serializer: Serializer | None = None,
) -> RpcMethodHandler:
    return _RpcMethodHandler(
        False, True, request_deserializer, response_serializer, None, behavior, None, None
    )


def stream_unary_rpc_method_handler(
    behavior: Callable[..., Any],
    request_deserializer: Deserializer | None = None,
    response_serializer: Serializer | None = None,
) -> RpcMethodHandler:
    return _RpcMethodHandler(
        True, False, request_deserializer, response_serializer, None, None, behavior, None
    )


def stream_stream_rpc_method_handler(
    behavior: Callable[..., Any],
    request_deserializer: Deserializer | None = None,
    response_serializer: Serializer | None = None,
) -> RpcMethodHandler:
    return _RpcMethodHandler(
        True, True, request_deserializer, response_serializer, None, None, None, behavior
    )


class Metadatum(NamedTuple):
    """One (key, value) pair of invocation metadata, as grpcio gives them (``.key``, ``.value``)."""

    key: str
    value: str | bytes


def metadata_pairs(metadata: Iterable[tuple[str, str | bytes]]) -> tuple[Metadatum, ...]:
    """grpcio's shape of invocation metadata: a tuple of (key, value) named pairs."""
    return tuple(Metadatum(key, value) for key, value in metadata)


class HandlerCallDetails(abc.ABC):
    """grpc.HandlerCallDetails: what a generic handler or interceptor sees of an incoming call.

    An abstract base as in grpcio, so that users can subclass it (tests that call a generic
    handler directly do); the server hands out :class:`CallDetails`.
    """

    method: str
    invocation_metadata: tuple[Metadatum, ...]


class CallDetails(NamedTuple):
    """The server's HandlerCallDetails (registered as one; a NamedTuple cannot subclass an ABC)."""

    method: str
    invocation_metadata: tuple[Metadatum, ...]


HandlerCallDetails.register(CallDetails)


class GenericRpcHandler(abc.ABC):
    """grpc.GenericRpcHandler: maps call details to a method handler, or None."""

    @abc.abstractmethod
    def service(self, handler_call_details: HandlerCallDetails) -> RpcMethodHandler | None:
        raise NotImplementedError


class ServiceRpcHandler(GenericRpcHandler):
    """grpc.ServiceRpcHandler: a generic handler for one named service."""

    @abc.abstractmethod
    def service_name(self) -> str:
        raise NotImplementedError


class _DictionaryGenericHandler(ServiceRpcHandler):
    def __init__(self, service: str, method_handlers: Mapping[str, Any]) -> None:
        self._name = service
        self._method_handlers = {
            f"/{service}/{method}": handler for method, handler in method_handlers.items()
        }

    def service_name(self) -> str:
        return self._name

    def service(self, handler_call_details: HandlerCallDetails) -> Any:
        return self._method_handlers.get(handler_call_details.method)


def method_handlers_generic_handler(
    service: str, method_handlers: Mapping[str, Any]
) -> ServiceRpcHandler:
    """grpc.method_handlers_generic_handler: a generic handler over ``{method: handler}``."""
    return _DictionaryGenericHandler(service, method_handlers)


class GenericHandlerLike(Protocol):
    """Anything with grpcio's ``service(details)`` method, ours or grpcio's."""

    def service(self, handler_call_details: Any) -> Any: ...
