"""Server interceptors: grpc.ServerInterceptor (sync) and grpc.aio.ServerInterceptor (async).

``grpc.aio.server`` takes grpc.aio interceptors only (ours or grpcio's; ValueError otherwise, as
grpcio), ``grpc.server`` grpc ones; the ASGI app runs both: an interceptor whose
``intercept_service`` is a coroutine function gets an async continuation (grpc.aio style), any
other gets a plain one (grpc style). Method lookup itself never blocks, so both run on the loop.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable

from ._handlers import HandlerCallDetails, RpcMethodHandler


class ServerInterceptor(abc.ABC):
    """grpc.ServerInterceptor: wraps method-handler lookup (synchronous continuation)."""

    @abc.abstractmethod
    def intercept_service(
        self,
        continuation: Callable[[HandlerCallDetails], RpcMethodHandler | None],
        handler_call_details: HandlerCallDetails,
    ) -> RpcMethodHandler | None:
        raise NotImplementedError


class AioServerInterceptor(abc.ABC):
    """grpc.aio.ServerInterceptor: wraps method-handler lookup (asynchronous continuation)."""

    @abc.abstractmethod
    async def intercept_service(
        self,
        continuation: Callable[[HandlerCallDetails], Awaitable[RpcMethodHandler | None]],
        handler_call_details: HandlerCallDetails,
    ) -> RpcMethodHandler | None:
        raise NotImplementedError
