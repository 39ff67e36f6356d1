"""The interop TestService, written once against the grpc.aio server API.

It runs unchanged on ``grpc.aio.server()`` and ``asgi_grpc.aio.server()``: the only things it
takes from a library are the ``StatusCode`` and ``Compression`` enums, and those come from the
module passed in (``grpc`` or ``asgi_grpc``), never from an import here.

Server features implemented, as doc/interop-test-descriptions.md of grpc/grpc names them:
EmptyCall, UnaryCall, CacheableUnaryCall, StreamingInputCall, StreamingOutputCall,
FullDuplexCall, HalfDuplexCall, CompressedRequest, CompressedResponse, Echo Status, Echo Metadata,
and ResponseParameters.interval_us. UnimplementedCall is deliberately left to the generated base
class (whose default answers UNIMPLEMENTED), and UnimplementedService is never registered.

CompressedRequest needs to know whether a request message arrived compressed, which neither
server API tells (grpcio strips ``grpc-encoding`` and inflates messages before the handler sees
them). The servicer therefore takes a ``request_compressed`` probe: given a request's serialized
bytes it answers from the wire (see :mod:`tests.interop.wire`). Without a probe that knows, it
falls back on a ``grpc-encoding`` entry in the invocation metadata, and failing that it refuses
the check with FAILED_PRECONDITION rather than pass a call it could not judge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from types import ModuleType
from typing import Any

from ._protos import Protos

ECHO_INITIAL_KEY = "x-grpc-test-echo-initial"
ECHO_TRAILING_KEY = "x-grpc-test-echo-trailing-bin"

RequestCompressedProbe = Callable[[bytes], "bool | None"]


def status_code(grpc_module: ModuleType, code: int) -> Any:
    """The ``grpc_module.StatusCode`` member for a numeric code (``EchoStatus.code``)."""
    for member in grpc_module.StatusCode:
        value = member.value[0] if isinstance(member.value, tuple) else member.value
        if value == code:
            return member
    raise ValueError(f"no status code {code}")


class _InteropService:
    """The behaviour; :func:`make_servicer` mixes it over the generated servicer base."""

    def __init__(
        self,
        protos: Protos,
        grpc_module: ModuleType,
        request_compressed: RequestCompressedProbe | None = None,
    ) -> None:
        self._messages = protos.messages
        self._empty = protos.empty
        self._grpc = grpc_module
        self._request_compressed = request_compressed

    # -- the RPCs --------------------------------------------------------------------------

    async def EmptyCall(self, request: Any, context: Any) -> Any:
        await self._echo_metadata(context)
        return self._empty.Empty()

    async def UnaryCall(self, request: Any, context: Any) -> Any:
        # Compression first: a server may only choose it before initial metadata goes out,
        # and echoing metadata sends it.
        if request.HasField("response_compressed"):
            self._compress_call(context, request.response_compressed.value)
        await self._echo_metadata(context)
        await self._check_compressed(context, request, request.expect_compressed)
        await self._maybe_echo_status(context, request)
        await self._check_payload_type(context, request.response_type)
        return self._messages.SimpleResponse(payload=self._payload(request.response_size))

    async def CacheableUnaryCall(self, request: Any, context: Any) -> Any:
        # The request is ignored; a timestamp makes each fresh answer differ, so a caching proxy
        # in front is the only way two calls can see the same body.
        await context.send_initial_metadata((("cache-control", "max-age=60, public"),))
        body = str(time.time_ns()).encode()
        return self._messages.SimpleResponse(payload=self._messages.Payload(body=body))

    async def StreamingInputCall(self, request_iterator: AsyncIterator[Any], context: Any) -> Any:
        await self._echo_metadata(context)
        total = 0
        async for request in request_iterator:
            await self._check_compressed(context, request, request.expect_compressed)
            total += len(request.payload.body)
        return self._messages.StreamingInputCallResponse(aggregated_payload_size=total)

    async def StreamingOutputCall(self, request: Any, context: Any) -> AsyncIterator[Any]:
        compressed = self._prepare_stream_compression(context, request.response_parameters)
        await self._echo_metadata(context)
        await self._check_payload_type(context, request.response_type)
        async for response in self._responses(context, request.response_parameters, compressed):
            yield response
        await self._maybe_echo_status(context, request)

    async def FullDuplexCall(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        first, compressed = True, False
        async for request in request_iterator:
            if first:
                # The call's compression is decided with the first request: grpc only lets a
                # server pick it before its initial metadata is sent.
                compressed = self._prepare_stream_compression(context, request.response_parameters)
                await self._echo_metadata(context)
                first = False
            await self._maybe_echo_status(context, request)
            params = request.response_parameters
            async for response in self._responses(context, params, compressed):
                yield response
        if first:  # half-closed without a single request: still echo the metadata
            await self._echo_metadata(context)

    async def HalfDuplexCall(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        await self._echo_metadata(context)
        requests = [request async for request in request_iterator]
        for request in requests:
            await self._maybe_echo_status(context, request)
            async for response in self._responses(context, request.response_parameters, False):
                yield response

    # -- features shared by the RPCs -------------------------------------------------------

    def _payload(self, size: int) -> Any:
        return self._messages.Payload(type=self._messages.COMPRESSABLE, body=bytes(size))

    async def _responses(
        self, context: Any, parameters: Iterable[Any], call_compressed: bool
    ) -> AsyncIterator[Any]:
        for params in parameters:
            if params.interval_us > 0:
                # interval_us is a sleep before each response, relative to the previous one.
                await asyncio.sleep(params.interval_us / 1e6)
            if call_compressed and not params.compressed.value:
                context.disable_next_message_compression()
            yield self._messages.StreamingOutputCallResponse(payload=self._payload(params.size))

    def _prepare_stream_compression(self, context: Any, parameters: Iterable[Any]) -> bool:
        """CompressedResponse on a stream: gzip the call when any response asks for it; the
        ones that do not are then sent with compression disabled message by message."""
        compressed = any(params.compressed.value for params in parameters)
        if compressed:
            self._compress_call(context, True)
        return compressed

    def _compress_call(self, context: Any, compressed: bool) -> None:
        compression = self._grpc.Compression
        context.set_compression(compression.Gzip if compressed else compression.NoCompression)

    async def _echo_metadata(self, context: Any) -> None:
        initial, trailing = [], []
        for key, value in context.invocation_metadata() or ():
            if key == ECHO_INITIAL_KEY:
                initial.append((key, value))
            elif key == ECHO_TRAILING_KEY:
                trailing.append((key, value))
        if initial:
            await context.send_initial_metadata(tuple(initial))
        if trailing:
            context.set_trailing_metadata(tuple(trailing))

    async def _maybe_echo_status(self, context: Any, request: Any) -> None:
        status = request.response_status
        if request.HasField("response_status") and status.code != 0:
            await context.abort(status_code(self._grpc, status.code), status.message)

    async def _check_payload_type(self, context: Any, response_type: int) -> None:
        if response_type != self._messages.COMPRESSABLE:
            await context.abort(
                self._grpc.StatusCode.INVALID_ARGUMENT, f"unsupported response_type {response_type}"
            )

    async def _check_compressed(self, context: Any, request: Any, expect: Any) -> None:
        """CompressedRequest: ``expect_compressed`` set and true means the message must have
        arrived with its compressed flag; anything else is INVALID_ARGUMENT."""
        if not expect.value:
            return
        compressed = None
        if self._request_compressed is not None:
            compressed = self._request_compressed(request.SerializeToString())
        if compressed is None:
            encoding = dict(context.invocation_metadata() or ()).get("grpc-encoding")
            if encoding is not None:
                compressed = encoding != "identity"
        if compressed is None:
            await context.abort(
                self._grpc.StatusCode.FAILED_PRECONDITION,
                "this interop server cannot observe request compression (no wire probe)",
            )
        if not compressed:
            await context.abort(
                self._grpc.StatusCode.INVALID_ARGUMENT,
                "expected a compressed request but got an uncompressed one",
            )


def make_servicer(
    protos: Protos,
    grpc_module: ModuleType,
    request_compressed: RequestCompressedProbe | None = None,
) -> Any:
    """A TestService servicer for a server built from ``grpc_module`` (``grpc`` or
    ``asgi_grpc``); register it with ``protos.services.add_TestServiceServicer_to_server``."""
    base = protos.services.TestServiceServicer
    cls = type("InteropTestService", (_InteropService, base), {})
    return cls(protos, grpc_module, request_compressed)
