"""httpx event hooks for gRPC calls, on a channel made with a user's ``http_client``.

A channel's calls skip httpx's request machinery (about a millisecond of CPU per call), so the
client's ``event_hooks`` would never see them. When the client has hooks, the channel runs this
interceptor first: request hooks get each call as an ``httpx.Request`` (``POST`` to the method's
URL, gRPC's headers and the call's metadata) before it starts, and may raise to stop it;
response hooks get an ``httpx.Response`` (status 200, the initial metadata as headers,
``extensions["grpc_call"]`` the call, whose ``code()`` awaits the status) once the response
headers arrive. A response hook runs beside the call: what it raises is logged, not raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx

from ._interceptors import (
    ClientCallDetails,
    StreamStreamClientInterceptor,
    StreamUnaryClientInterceptor,
    UnaryStreamClientInterceptor,
    UnaryUnaryClientInterceptor,
)

logger = logging.getLogger("asgi_grpc.client")

_GRPC_HEADERS = [(b"content-type", b"application/grpc"), (b"te", b"trailers")]
_PENDING: set[asyncio.Task[None]] = set()


def has_hooks(client: httpx.AsyncClient) -> bool:
    hooks = client.event_hooks
    return bool(hooks.get("request") or hooks.get("response"))


class EventHooks(
    UnaryUnaryClientInterceptor,
    UnaryStreamClientInterceptor,
    StreamUnaryClientInterceptor,
    StreamStreamClientInterceptor,
):
    def __init__(self, client: httpx.AsyncClient, base_url: str) -> None:
        self._client = client
        self._base_url = base_url

    async def _intercept(
        self, continuation: Callable[..., Any], details: ClientCallDetails, request: Any
    ) -> Any:
        hooks = self._client.event_hooks  # read per call: hooks may change, as in httpx
        method = details.method
        path = method.decode("ascii") if isinstance(method, bytes) else method
        http_request = httpx.Request(
            "POST",
            self._base_url + path,
            headers=_GRPC_HEADERS + [(k.encode("ascii"), _raw(v)) for k, v in details.metadata],
        )
        for hook in hooks.get("request", ()):
            await hook(http_request)
        call = await continuation(details, request)
        responses = list(hooks.get("response", ()))
        if responses and callable(getattr(call, "initial_metadata", None)):
            task = asyncio.get_running_loop().create_task(_respond(call, http_request, responses))
            _PENDING.add(task)
            task.add_done_callback(_PENDING.discard)
        return call

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: ClientCallDetails, request: Any
    ) -> Any:
        return await self._intercept(continuation, client_call_details, request)

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: ClientCallDetails, request: Any
    ) -> Any:
        return await self._intercept(continuation, client_call_details, request)

    async def intercept_stream_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await self._intercept(continuation, client_call_details, request_iterator)

    async def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await self._intercept(continuation, client_call_details, request_iterator)


def _raw(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("ascii")


async def _respond(call: Any, request: httpx.Request, hooks: list[Any]) -> None:
    try:
        metadata = await call.initial_metadata()
    except Exception:  # the call failed before any response headers: nothing to hook
        return
    response = httpx.Response(
        200,
        headers=[(k.encode("ascii"), _raw(v)) for k, v in metadata or ()],
        request=request,
        extensions={"grpc_call": call, "http_version": b"HTTP/2"},
    )
    for hook in hooks:
        try:
            await hook(response)
        except Exception:  # noqa: PERF203 - a failing hook must not skip the next ones
            logger.exception("httpx response hook failed for %s", request.url)
