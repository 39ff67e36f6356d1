"""A blocking server's request iterator takes messages the client sent ahead in batches (one hop
to the loop per batch): what a handler sees must not change. Each scenario runs against grpcio
and asgi_grpc (the ``grpc`` fixture), blocking server and blocking client of the same library.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

from .conftest import method, serve_blocking


def test_messages_sent_ahead_arrive_in_order_and_all(grpc: ModuleType) -> None:
    """2,000 small requests, sent as fast as the client can: the handler reads every one, in
    order, and the requests iterated after each other in one handler see the same stream."""

    def collect(requests: Iterator[bytes], context: Any) -> bytes:
        seen = [int(request) for request in requests]
        return b"ok" if seen == list(range(2000)) else repr(seen[:20]).encode()

    server, target = serve_blocking(
        grpc, {"Collect": grpc.stream_unary_rpc_method_handler(collect)}
    )
    try:
        with grpc.insecure_channel(target) as channel:
            call = channel.stream_unary(method("Collect"))
            assert call(str(i).encode() for i in range(2000)) == b"ok"
    finally:
        server.stop(0)  # (grpcio's stop(None) can hang after a failed deserializer)


def test_a_bad_message_behind_good_ones_in_a_batch(grpc: ModuleType) -> None:
    """The request deserializer fails on the third message of a burst: the handler has read
    the first two, and the call ends INTERNAL (the timeout only bounds a hang)."""
    read: list[bytes] = []

    def deserialize(data: bytes) -> bytes:
        if data == b"bad":
            raise ValueError("cannot parse")
        return data

    def collect(requests: Iterator[bytes], context: Any) -> bytes:
        read.extend(requests)
        return b"done"

    handler = grpc.stream_unary_rpc_method_handler(collect, request_deserializer=deserialize)
    server, target = serve_blocking(grpc, {"Collect": handler})
    try:
        with grpc.insecure_channel(target) as channel:
            call = channel.stream_unary(method("Collect"))
            try:
                call(iter([b"a", b"b", b"bad", b"c", b"d"]), timeout=3)
            except grpc.RpcError as error:
                code = error.code()
            else:
                code = grpc.StatusCode.OK
    finally:
        server.stop(0)  # (grpcio's stop(None) can hang after a failed deserializer)
    assert read == [b"a", b"b"]
    assert code == grpc.StatusCode.INTERNAL


def test_bidi_ping_pong_then_burst(grpc: ModuleType) -> None:
    """Messages one at a time (the handler waits on the loop for each), then a burst the client
    sends ahead: every response in order."""

    def echo(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        yield from requests

    server, target = serve_blocking(grpc, {"Echo": grpc.stream_stream_rpc_method_handler(echo)})
    try:
        with grpc.insecure_channel(target) as channel:
            call = channel.stream_stream(method("Echo"))
            burst = [str(i).encode() for i in range(300)]
            assert list(call(iter(burst))) == burst
    finally:
        server.stop(0)  # (grpcio's stop(None) can hang after a failed deserializer)
