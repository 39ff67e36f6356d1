"""asgi_grpc's sync server (``asgi_grpc.server(thread_pool)``) with a sync servicer registered by
the grpcio-tools stub, driven by grpcio's own sync client (and by asgi_grpc's for the lifecycle)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

import asgi_grpc

from .conftest import Running, StartServer
from .servicer import pb2, pb2_grpc

Request = pb2.EchoRequest


@pytest.fixture(params=["h2c", "tls"])
def ours(request: pytest.FixtureRequest, start_server: StartServer) -> Running:
    return start_server("asgi_grpc", request.param)


def test_four_patterns_with_grpcio_client(ours: Running) -> None:
    stub = ours.stub(grpc)
    assert stub.Unary(Request(message="hi")).message == "hi"
    call = stub.ServerStream(Request(count=20))
    assert [m.index for m in call] == list(range(20))
    assert ("stream-initial", "yes") in call.initial_metadata()
    assert ("stream-trailing", "yes") in call.trailing_metadata()

    def requests() -> Iterator[Any]:
        for _ in range(7):
            time.sleep(0.005)
            yield Request(payload=b"abc")

    assert stub.ClientStream(requests()).message == "21"
    bidi = stub.BidiStream(iter([Request(message=str(i)) for i in range(30)]))
    assert [m.message for m in bidi] == [str(i) for i in range(30)]


def test_handlers_run_on_the_given_pool(start_server: StartServer) -> None:
    running = start_server("asgi_grpc")
    stub = running.stub(grpc)
    for _ in range(5):
        stub.Unary(Request(message="x"))
    names = {
        thread.name for thread in threading.enumerate() if thread.ident in running.events.thread_ids
    }
    assert names
    assert all(name.startswith("ThreadPoolExecutor") for name in names), names


def test_metadata_both_ways(ours: Running) -> None:
    stub = ours.stub(grpc)
    _, call = stub.Unary.with_call(Request(message="metadata"))
    assert ("initial-key", "sync") in call.initial_metadata()
    assert ("trailing-key", "sync") in call.trailing_metadata()
    echoed = stub.Unary(Request(message="invocation"), metadata=(("k", "v"), ("k-bin", b"\x01")))
    assert echoed.message == repr([("k", "v"), ("k-bin", b"\x01")])


@pytest.mark.parametrize(
    ("command", "code", "details"),
    [
        ("abort:NOT_FOUND:gone", grpc.StatusCode.NOT_FOUND, "gone"),
        ("set_code:OUT_OF_RANGE:far", grpc.StatusCode.OUT_OF_RANGE, "far"),
        ("abort_with_status", grpc.StatusCode.FAILED_PRECONDITION, "rich"),
        ("trailing_abort", grpc.StatusCode.PERMISSION_DENIED, "denied"),
        ("raise", grpc.StatusCode.UNKNOWN, None),
        ("none", grpc.StatusCode.UNKNOWN, None),
    ],
)
def test_status_from_sync_handlers(
    start_server: StartServer, command: str, code: grpc.StatusCode, details: str | None
) -> None:
    stub = start_server("asgi_grpc").stub(grpc)
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(Request(message=command))
    assert info.value.code() is code
    if details is not None:
        assert info.value.details() == details
    if command == "abort_with_status":
        assert ("detail-bin", b"\x01") in info.value.trailing_metadata()
    if command == "trailing_abort":
        assert ("why", "because") in info.value.trailing_metadata()


def test_context_peer_time_remaining_compression(ours: Running) -> None:
    stub = ours.stub(grpc)
    assert stub.Unary(Request(message="peer")).message.startswith("ipv4:127.0.0.1:")
    # grpcio rounds the grpc-timeout it sends up (5 s goes out as about 5.01 s).
    assert 3 < float(stub.Unary(Request(message="time_remaining"), timeout=5).message) <= 5.1
    payload = b"q" * 5000
    response = stub.Unary(Request(message="compress", payload=payload))
    assert response.payload == payload


def test_deadline_and_client_cancel_reach_the_handler(start_server: StartServer) -> None:
    running = start_server("asgi_grpc")
    stub = running.stub(grpc)
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(Request(message="wait_cancel"), timeout=0.3)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    # The handler's context went inactive and its add_callback ran.
    assert running.events.saw_inactive.wait(5)
    assert running.events.rpc_ended.wait(5)


def test_client_cancels_a_stream(start_server: StartServer) -> None:
    running = start_server("asgi_grpc")
    stub = running.stub(grpc)
    call = stub.ServerStream(Request(count=10_000, delay_ms=2))
    next(call)
    call.cancel()
    assert running.events.saw_inactive.wait(5)
    assert running.events.stream_sent < 10_000


class _Counting(asgi_grpc.ServerInterceptor):
    def __init__(self) -> None:
        self.methods: list[str] = []

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        self.methods.append(handler_call_details.method)
        if dict(handler_call_details.invocation_metadata).get("deny") == "yes":

            def deny(request: Any, context: Any) -> Any:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "denied by interceptor")

            return grpc.unary_unary_rpc_method_handler(deny)
        return continuation(handler_call_details)


def test_sync_server_interceptor(start_server: StartServer) -> None:
    interceptor = _Counting()
    running = start_server("asgi_grpc", interceptors=[interceptor])
    stub = running.stub(grpc)
    assert stub.Unary(Request(message="a")).message == "a"
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(Request(message="a"), metadata=(("deny", "yes"),))
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert interceptor.methods == ["/asgi_grpc.test.Echo/Unary"] * 2


def test_maximum_concurrent_rpcs(start_server: StartServer) -> None:
    running = start_server("asgi_grpc", maximum_concurrent_rpcs=1)
    stub = running.stub(grpc)
    slow = stub.Unary.future(Request(message="slow", delay_ms=500))
    time.sleep(0.2)
    with pytest.raises(grpc.RpcError) as info:
        stub.Unary(Request(message="x"))
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert slow.result(timeout=10).message == "slow"


@pytest.mark.parametrize("client", ["grpcio", "asgi_grpc"])
def test_stop_with_grace_lets_calls_finish(client: str) -> None:
    module = grpc if client == "grpcio" else asgi_grpc
    pool = futures.ThreadPoolExecutor(4)
    server = asgi_grpc.server(pool)
    from .servicer import SteeredEcho

    pb2_grpc.add_EchoServicer_to_server(SteeredEcho(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with pytest.raises(ValueError, match="already-started"):
        server.start()
    with module.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb2_grpc.EchoStub(channel)
        future = stub.Unary.future(Request(message="slow", delay_ms=300))
        time.sleep(0.1)
        assert server.wait_for_termination(timeout=0.05) is True  # still running
        event = server.stop(grace=5)
        assert isinstance(event, threading.Event)
        assert future.result(timeout=5).message == "slow"
        assert event.wait(5)
        assert server.wait_for_termination(timeout=1) is False
    pool.shutdown(wait=False)


def test_stop_without_grace_cancels_and_returns_a_set_event() -> None:
    pool = futures.ThreadPoolExecutor(4)
    server = asgi_grpc.server(pool)
    from .servicer import SteeredEcho

    pb2_grpc.add_EchoServicer_to_server(SteeredEcho(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        future = pb2_grpc.EchoStub(channel).Unary.future(Request(message="wait_cancel"))
        time.sleep(0.2)
        started = time.monotonic()
        event = server.stop(None)
        assert event.is_set()
        assert time.monotonic() - started < 3
        assert future.exception(timeout=5) is not None
        assert future.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    pool.shutdown(wait=False)


def test_wait_for_termination_wakes_on_stop_from_another_thread() -> None:
    server = asgi_grpc.server(futures.ThreadPoolExecutor(2))
    server.add_insecure_port("127.0.0.1:0")
    server.start()
    threading.Timer(0.2, server.stop, args=(0,)).start()
    started = time.monotonic()
    assert server.wait_for_termination(timeout=10) is False
    assert time.monotonic() - started < 5


def test_handlers_argument_and_generic_handler_check() -> None:
    handler = grpc.method_handlers_generic_handler(
        "t.S", {"M": grpc.unary_unary_rpc_method_handler(lambda request, context: request)}
    )
    server = asgi_grpc.server(futures.ThreadPoolExecutor(2), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert channel.unary_unary("/t.S/M")(b"echo", timeout=5) == b"echo"
    finally:
        server.stop(None)
    with pytest.raises(AttributeError):
        asgi_grpc.server(None, handlers=[object()])
