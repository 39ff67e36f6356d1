"""The interop cases that grpclib can express, with grpclib as the client, against both servers.

grpclib is a third HTTP/2 stack (pure-Python h2, its own flow control, base64 ``-bin`` metadata,
no ``grpc-accept-encoding``, RST_STREAM for cancel), so it catches server behaviour that only
suits grpcio's C core. It has no compression and no per-call status for a local cancel, so
those cases are left out or checked from the wire instead; compression shows up once more as
a check that a server does not compress for a client that never offered to decompress.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from ._protos import Protos, load_protos
from .cases import (
    ECHO_INITIAL_VALUE,
    ECHO_TRAILING_VALUE,
    LARGE_REQUEST,
    LARGE_RESPONSE,
    SPECIAL_STATUS_MESSAGE,
    STATUS_MESSAGE,
    STREAM_REQUESTS,
    STREAM_RESPONSES,
    STREAMING_OUTPUT,
)
from .harness import assert_wire_ok, serve
from .service import ECHO_INITIAL_KEY, ECHO_TRAILING_KEY
from .test_interop import SERVER_IMPLS
from .wire import WireTap

GrpclibCase = Callable[[Protos, Channel, WireTap], Awaitable[None]]
GRPCLIB_CASES: dict[str, GrpclibCase] = {}


def case(fn: GrpclibCase) -> GrpclibCase:
    GRPCLIB_CASES[fn.__name__] = fn
    return fn


def _stub(protos: Protos, channel: Channel) -> Any:
    return protos.grpclib_services.TestServiceStub(channel)


def _payload(protos: Protos, size: int) -> Any:
    return protos.messages.Payload(body=bytes(size))


def _streaming_request(protos: Protos, sizes: list[int], payload: int = 0) -> Any:
    messages = protos.messages
    return messages.StreamingOutputCallRequest(
        response_parameters=[messages.ResponseParameters(size=size) for size in sizes],
        payload=_payload(protos, payload),
    )


async def _expect_status(call: Awaitable[Any], status: Status) -> GRPCError:
    try:
        response = await call
    except GRPCError as caught:
        error = caught
    else:
        raise AssertionError(f"expected {status}, but the call succeeded with {response!r}")
    assert error.status == status, f"expected {status}, got {error.status}: {error.message!r}"
    return error


@case
async def empty_unary(protos: Protos, channel: Channel, tap: WireTap) -> None:
    response = await _stub(protos, channel).EmptyCall(protos.empty.Empty())
    assert isinstance(response, protos.empty.Empty)


@case
async def large_unary(protos: Protos, channel: Channel, tap: WireTap) -> None:
    request = protos.messages.SimpleRequest(
        response_size=LARGE_RESPONSE, payload=_payload(protos, LARGE_REQUEST)
    )
    response = await _stub(protos, channel).UnaryCall(request)
    assert response.payload.body == bytes(LARGE_RESPONSE)


@case
async def client_streaming(protos: Protos, channel: Channel, tap: WireTap) -> None:
    async with _stub(protos, channel).StreamingInputCall.open() as stream:
        for size in STREAM_REQUESTS:
            request = protos.messages.StreamingInputCallRequest(payload=_payload(protos, size))
            await stream.send_message(request)
        await stream.end()
        response = await stream.recv_message()
    assert response is not None
    assert response.aggregated_payload_size == 74922


@case
async def server_streaming(protos: Protos, channel: Channel, tap: WireTap) -> None:
    request = _streaming_request(protos, list(STREAM_RESPONSES))
    responses = await _stub(protos, channel).StreamingOutputCall(request)
    assert [len(r.payload.body) for r in responses] == list(STREAM_RESPONSES)


@case
async def ping_pong(protos: Protos, channel: Channel, tap: WireTap) -> None:
    async with _stub(protos, channel).FullDuplexCall.open() as stream:
        for request_size, response_size in zip(STREAM_REQUESTS, STREAM_RESPONSES, strict=True):
            await stream.send_message(_streaming_request(protos, [response_size], request_size))
            response = await stream.recv_message()
            assert response is not None, "stream ended before its reply"
            assert response.payload.body == bytes(response_size)
        await stream.end()
        assert await stream.recv_message() is None


@case
async def empty_stream(protos: Protos, channel: Channel, tap: WireTap) -> None:
    async with _stub(protos, channel).FullDuplexCall.open() as stream:
        await stream.send_request(end=True)
        assert await stream.recv_message() is None


@case
async def server_compressed_streaming(protos: Protos, channel: Channel, tap: WireTap) -> None:
    """A response that asks for compression, to a client that never said it can decompress
    (grpclib sends no grpc-accept-encoding): the server must send it uncompressed."""
    messages = protos.messages
    request = messages.StreamingOutputCallRequest(
        response_parameters=[
            messages.ResponseParameters(size=31415, compressed=messages.BoolValue(value=True))
        ]
    )
    responses = await _stub(protos, channel).StreamingOutputCall(request)
    assert [len(r.payload.body) for r in responses] == [31415]
    call = tap.last_call(STREAMING_OUTPUT)
    assert "grpc-accept-encoding" not in dict(call.request_headers)
    assert [m.compressed for m in call.responses] == [False]


@case
async def custom_metadata(protos: Protos, channel: Channel, tap: WireTap) -> None:
    metadata = [(ECHO_INITIAL_KEY, ECHO_INITIAL_VALUE), (ECHO_TRAILING_KEY, ECHO_TRAILING_VALUE)]
    stub = _stub(protos, channel)
    async with stub.UnaryCall.open(metadata=metadata) as unary:
        await unary.send_message(
            protos.messages.SimpleRequest(
                response_size=LARGE_RESPONSE, payload=_payload(protos, LARGE_REQUEST)
            ),
            end=True,
        )
        assert (await unary.recv_message()) is not None
        await unary.recv_trailing_metadata()
    _assert_echoed(unary)
    async with stub.FullDuplexCall.open(metadata=metadata) as duplex:
        await duplex.send_message(_streaming_request(protos, [LARGE_RESPONSE], LARGE_REQUEST))
        await duplex.end()
        response = await duplex.recv_message()
        assert response is not None
        assert await duplex.recv_message() is None
        await duplex.recv_trailing_metadata()
    _assert_echoed(duplex)


def _assert_echoed(stream: Any) -> None:
    initial = stream.initial_metadata
    trailing = stream.trailing_metadata
    assert initial.getall(ECHO_INITIAL_KEY, []) == [ECHO_INITIAL_VALUE], f"initial: {initial}"
    assert trailing.getall(ECHO_TRAILING_KEY, []) == [ECHO_TRAILING_VALUE], f"trailing: {trailing}"


@case
async def status_code_and_message(protos: Protos, channel: Channel, tap: WireTap) -> None:
    await _echo_status(protos, channel, STATUS_MESSAGE)
    status = protos.messages.EchoStatus(code=2, message=STATUS_MESSAGE)

    async def duplex() -> None:
        async with _stub(protos, channel).FullDuplexCall.open() as stream:
            await stream.send_message(
                protos.messages.StreamingOutputCallRequest(response_status=status), end=True
            )
            await stream.recv_message()

    error = await _expect_status(duplex(), Status.UNKNOWN)
    assert error.message == STATUS_MESSAGE


@case
async def special_status_message(protos: Protos, channel: Channel, tap: WireTap) -> None:
    await _echo_status(protos, channel, SPECIAL_STATUS_MESSAGE)


async def _echo_status(protos: Protos, channel: Channel, message: str) -> None:
    status = protos.messages.EchoStatus(code=2, message=message)
    call = _stub(protos, channel).UnaryCall(protos.messages.SimpleRequest(response_status=status))
    error = await _expect_status(call, Status.UNKNOWN)
    assert error.message == message, f"{error.message!r} != {message!r}"


@case
async def unimplemented_method(protos: Protos, channel: Channel, tap: WireTap) -> None:
    call = _stub(protos, channel).UnimplementedCall(protos.empty.Empty())
    await _expect_status(call, Status.UNIMPLEMENTED)


@case
async def unimplemented_service(protos: Protos, channel: Channel, tap: WireTap) -> None:
    stub = protos.grpclib_services.UnimplementedServiceStub(channel)
    await _expect_status(stub.UnimplementedCall(protos.empty.Empty()), Status.UNIMPLEMENTED)


@case
async def cancel_after_first_response(protos: Protos, channel: Channel, tap: WireTap) -> None:
    """grpclib has no client-side status for a local cancel: check what reached the wire."""
    async with _stub(protos, channel).FullDuplexCall.open() as stream:
        await stream.send_message(_streaming_request(protos, [31415], 27182))
        response = await stream.recv_message()
        assert response is not None
        await stream.cancel()
    call = tap.last_call("/grpc.testing.TestService/FullDuplexCall")
    # The reset leaves grpclib's socket buffer on the next loop turns: give it a moment.
    for _ in range(100):
        if call.reset_by_client is not None:
            break
        await asyncio.sleep(0.01)
    assert call.reset_by_client is not None, "no RST_STREAM went out for the cancel"


@case
async def timeout_on_sleeping_server(protos: Protos, channel: Channel, tap: WireTap) -> None:
    async def sleeping() -> None:
        async with _stub(protos, channel).FullDuplexCall.open(timeout=0.2) as stream:
            await stream.send_message(protos.messages.StreamingOutputCallRequest())
            await stream.recv_message()

    # Whichever ends the call first: grpclib's own deadline (TimeoutError) or the server's
    # DEADLINE_EXCEEDED status.
    status: Status | None = None
    try:
        await sleeping()
    except GRPCError as error:
        status = error.status
    except asyncio.TimeoutError:
        status = Status.DEADLINE_EXCEEDED
    assert status == Status.DEADLINE_EXCEEDED, f"the sleeping call ended with {status}"


async def _run_named(name: str, case_run: Awaitable[None]) -> None:
    try:
        await asyncio.wait_for(case_run, 15)
    except BaseException as exc:
        raise AssertionError(f"case {name} failed: {exc!r}") from exc


# What grpcio's server does differently from what these cases hold it to; strict, so a change
# in grpcio shows up.
REFERENCE_DEVIATIONS = {
    ("server_compressed_streaming", "grpcio"): (
        "grpcio's server compresses for a client that sent no grpc-accept-encoding (C core "
        "takes a missing header as 'accepts everything'); grpclib then fails the call with "
        "NotImplementedError('Compression not implemented')"
    ),
}


async def _open(endpoint_target: str) -> Channel:
    host, port = endpoint_target.rsplit(":", 1)
    return Channel(host, int(port))


@pytest.mark.parametrize("server_impl", SERVER_IMPLS)
@pytest.mark.parametrize("name", list(GRPCLIB_CASES))
async def test_grpclib_client(name: str, server_impl: str, request: pytest.FixtureRequest) -> None:
    deviation = REFERENCE_DEVIATIONS.get((name, server_impl))
    if deviation is not None:
        request.applymarker(pytest.mark.xfail(strict=True, reason=deviation))
    protos = load_protos()
    async with serve(protos, server_impl) as endpoint:
        assert endpoint.tap is not None
        channel = await _open(endpoint.target)
        try:
            await asyncio.wait_for(GRPCLIB_CASES[name](protos, channel, endpoint.tap), 15)
            await asyncio.wait_for(_stub(protos, channel).EmptyCall(protos.empty.Empty()), 5)
        finally:
            channel.close()
        await assert_wire_ok(endpoint.tap)


@pytest.mark.parametrize("server_impl", SERVER_IMPLS)
async def test_grpclib_all_cases_on_one_connection(server_impl: str) -> None:
    protos = load_protos()
    async with serve(protos, server_impl) as endpoint:
        assert endpoint.tap is not None
        channel = await _open(endpoint.target)
        try:
            for name, grpclib_case in GRPCLIB_CASES.items():
                if (name, server_impl) not in REFERENCE_DEVIATIONS:
                    await _run_named(name, grpclib_case(protos, channel, endpoint.tap))
        finally:
            channel.close()
        tap = endpoint.tap
        assert {call.connection for call in tap.calls} == {1}, tap.describe()
        await assert_wire_ok(tap)
