"""Client interceptors, as grpc.aio defines them: the base classes and the call details.

An interceptor's ``intercept_*`` coroutine gets ``continuation(client_call_details, request)``,
which starts the next interceptor (or the real call) and returns a call object. It may change the
details, wrap or replace the call, or return a bare response (unary) / async iterator (streaming).
``_intercepted`` runs the chain and presents its result as one grpc.aio call object.
Interceptors are matched by the method they define, so classes derived from grpcio's own
interceptor bases work too.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .._core import Metadata


class ClientCallDetails(NamedTuple):
    """grpc.aio.ClientCallDetails: what an interceptor may inspect and change."""

    method: bytes
    timeout: float | None
    metadata: Metadata  # always a Metadata object, as in grpc.aio (empty when none was given)
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


def select(interceptors: Sequence[Any]) -> dict[str, tuple[Any, ...]]:
    """The interceptors of each kind. Unlike grpcio, which files an interceptor under the first
    of the four base classes it derives from, one object may intercept several kinds."""
    for interceptor in interceptors:
        if not any(callable(getattr(interceptor, a, None)) for a in ATTRIBUTES.values()):
            raise ValueError(
                f"Interceptor {interceptor!r} must be UnaryUnaryClientInterceptor or "
                "UnaryStreamClientInterceptor or StreamUnaryClientInterceptor or "
                "StreamStreamClientInterceptor."
            )
    return {
        kind: tuple(i for i in interceptors if callable(getattr(i, attribute, None)))
        for kind, attribute in ATTRIBUTES.items()
    }
