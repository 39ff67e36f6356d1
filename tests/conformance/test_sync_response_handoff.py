"""A blocking server's streamed responses reach the connection's writer from the loop callback
that takes them from the handler's thread (the server's body sink), and go the ASGI way when
the sink does not take them (the first response, a large one, every 32nd unwritten one, 64 KiB
queued): what the client sees must not change. Each scenario runs against grpcio and asgi_grpc
(the ``grpc`` fixture), blocking server and blocking client of the same library."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from .conftest import method, serve_blocking

# Across every threshold of the hand-off: small, medium, over 64 KiB (sent as prefix and
# payload), and runs of small ones longer than 32.
_SIZES = [1, 100, 20_000, 70_000, 3, *([7] * 40), 40_000, 40_000, 0, 5]


def _response(index: int) -> bytes:
    return b"%d:" % index + b"x" * _SIZES[index % len(_SIZES)]


def test_streamed_responses_of_every_size_arrive_in_order(grpc: ModuleType) -> None:
    def stream(request: bytes, context: Any) -> Iterator[bytes]:
        for index in range(int(request)):
            yield _response(index)

    server, target = serve_blocking(grpc, {"Stream": grpc.unary_stream_rpc_method_handler(stream)})
    try:
        with grpc.insecure_channel(target) as channel:
            call = channel.unary_stream(method("Stream"))
            got = list(call(b"300", timeout=30))
    finally:
        server.stop(0)
    assert got == [_response(index) for index in range(300)]


def test_ping_pong_responses_in_order(grpc: ModuleType) -> None:
    """One response per request, each read before the next request is sent (the handler's
    thread hands each over alone, while the call's task waits)."""

    def echo(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        for request in requests:
            yield _response(int(request))

    server, target = serve_blocking(grpc, {"Echo": grpc.stream_stream_rpc_method_handler(echo)})
    outbox: list[bytes] = []
    try:
        with grpc.insecure_channel(target) as channel:
            requests: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

            def feed() -> Iterator[bytes]:
                while (item := requests.get()) is not None:
                    yield item

            call = channel.stream_stream(method("Echo"))(feed(), timeout=30)
            for index in range(200):
                requests.put(b"%d" % index)
                outbox.append(next(call))
            requests.put(None)
            assert list(call) == []
            assert call.code() == grpc.StatusCode.OK
    finally:
        server.stop(0)
    assert outbox == [_response(index) for index in range(200)]


def _serialize(response: bytes) -> bytes:
    if response == b"bad":
        raise ValueError("cannot serialize")
    return response


def test_a_response_that_fails_to_serialize_after_others(grpc: ModuleType) -> None:
    """The serializer fails on the sixth response: the client has the five before it, then
    INTERNAL, as grpcio's blocking server words it."""

    def stream(request: bytes, context: Any) -> Iterator[bytes]:
        yield from (b"a", b"b", b"c", b"d", b"e", b"bad", b"f")

    handler = grpc.unary_stream_rpc_method_handler(stream, response_serializer=_serialize)
    server, target = serve_blocking(grpc, {"Stream": handler})
    got: list[bytes] = []
    try:
        with grpc.insecure_channel(target) as channel:
            call = channel.unary_stream(method("Stream"))(b"", timeout=10)
            try:
                got.extend(call)
            except grpc.RpcError as error:
                code, details = error.code(), error.details()
            else:
                code, details = grpc.StatusCode.OK, None
    finally:
        server.stop(0)
    assert got == [b"a", b"b", b"c", b"d", b"e"]
    assert (code, details) == (grpc.StatusCode.INTERNAL, "Failed to serialize response!")


def test_a_unary_response_that_fails_to_serialize(grpc: ModuleType) -> None:
    handler = grpc.unary_unary_rpc_method_handler(
        lambda request, context: b"bad", response_serializer=_serialize
    )
    server, target = serve_blocking(grpc, {"Unary": handler})
    try:
        with grpc.insecure_channel(target) as channel:
            try:
                channel.unary_unary(method("Unary"))(b"", timeout=10)
            except grpc.RpcError as error:
                code, details = error.code(), error.details()
            else:
                code, details = grpc.StatusCode.OK, None
    finally:
        server.stop(0)
    assert (code, details) == (grpc.StatusCode.INTERNAL, "Failed to serialize response!")
