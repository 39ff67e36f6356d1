"""The server API objects as grpcio has them: Server lifecycle (start, concurrent stops,
wait_for_termination), handler registration, method handlers, interceptor plumbing, ports.

Each scenario runs against grpcio and asgi_grpc (the ``grpc`` fixture) with the same assertions.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from types import ModuleType
from typing import Any

import pytest

from .conftest import SERVICE, generic_handler, method, stream_stream, unary_unary

REGISTER_AFTER_START = "Cannot register method handlers once server has started"
LONG_GRACE = 60.0  # a grace the test must never have to wait out


def _echo(request: bytes, context: Any) -> bytes:
    return request


async def _async_echo(request: bytes, context: Any) -> bytes:
    return request


def _blocking_server(grpc: ModuleType, **kwargs: Any) -> Any:
    return grpc.server(futures.ThreadPoolExecutor(max_workers=4), **kwargs)


async def _aio_call(grpc: ModuleType, target: str, name: str, request: bytes = b"x") -> Any:
    async with grpc.aio.insecure_channel(target) as channel:
        return await channel.unary_unary(method(name))(request, timeout=10)


def _call(grpc: ModuleType, target: str, name: str, request: bytes = b"x") -> Any:
    with grpc.insecure_channel(target) as channel:
        return channel.unary_unary(method(name))(request, timeout=10)


def _held_port() -> tuple[socket.socket, int]:
    """A port held by a plain listening socket of this process (no SO_REUSEPORT)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock, sock.getsockname()[1]


# ------------------------------------------------------------------ concurrent stop (item 13)


async def test_aio_concurrent_stops_share_one_shutdown_shortest_grace_wins(
    grpc: ModuleType,
) -> None:
    entered = asyncio.Event()

    async def hang(request: bytes, context: Any) -> bytes:
        entered.set()
        await asyncio.sleep(LONG_GRACE * 2)
        return request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([generic_handler(grpc, {"Hang": unary_unary(grpc, hang)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method("Hang"))(b"x")
        await asyncio.wait_for(entered.wait(), 10)
        # Several stops at once, the shortest grace last: none may crash, all return once the
        # server has stopped, and the in-flight call is cut after the shortest grace.
        stops = [server.stop(LONG_GRACE), server.stop(LONG_GRACE / 2), server.stop(0.1)]
        results = await asyncio.wait_for(asyncio.gather(*stops), LONG_GRACE / 4)
        assert results == [None, None, None]
        with pytest.raises(grpc.aio.AioRpcError):
            await asyncio.wait_for(call, 10)
    assert await server.wait_for_termination(0) is False
    await server.stop(None)  # and once more, after the fact


async def test_aio_stop_none_while_a_graceful_stop_waits(grpc: ModuleType) -> None:
    entered = asyncio.Event()

    async def hang(request: bytes, context: Any) -> bytes:
        entered.set()
        await asyncio.sleep(LONG_GRACE * 2)
        return request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([generic_handler(grpc, {"Hang": unary_unary(grpc, hang)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method("Hang"))(b"x")
        await asyncio.wait_for(entered.wait(), 10)
        graceful = asyncio.ensure_future(server.stop(LONG_GRACE))
        await asyncio.sleep(0.05)
        await asyncio.wait_for(server.stop(None), LONG_GRACE / 4)
        await asyncio.wait_for(graceful, LONG_GRACE / 4)
        with pytest.raises(grpc.aio.AioRpcError):
            await asyncio.wait_for(call, 10)


def test_blocking_concurrent_stops_shortest_grace_wins(grpc: ModuleType) -> None:
    entered = threading.Event()
    release = threading.Event()

    def hang(request: bytes, context: Any) -> bytes:
        entered.set()
        release.wait(LONG_GRACE * 2)
        return request

    server = _blocking_server(grpc)
    server.add_generic_rpc_handlers([generic_handler(grpc, {"Hang": unary_unary(grpc, hang)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            future = channel.unary_unary(method("Hang")).future(b"x")
            assert entered.wait(10)
            events: list[threading.Event] = []
            threads = [
                threading.Thread(target=lambda g=grace: events.append(server.stop(g)))
                for grace in (LONG_GRACE, LONG_GRACE / 2, 0.1)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(LONG_GRACE / 4)
            assert len(events) == 3
            assert all(event.wait(LONG_GRACE / 4) for event in events)
            with pytest.raises(grpc.RpcError):
                future.result(timeout=10)
    finally:
        release.set()
    assert server.wait_for_termination(0) is False


# ------------------------------------------------------------------ start, wait_for_termination


async def test_aio_start_without_ports_and_wait_for_termination(grpc: ModuleType) -> None:
    server = grpc.aio.server()
    await server.start()
    assert await server.wait_for_termination(0.05) is True  # timed out: True
    waiter = asyncio.ensure_future(server.wait_for_termination())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await server.stop(None)
    assert await asyncio.wait_for(waiter, 10) is False  # stopped: False
    assert await server.wait_for_termination(0.05) is False


async def test_aio_start_twice_is_a_no_op(grpc: ModuleType) -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await server.start()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _aio_call(grpc, f"127.0.0.1:{port}", "Missing")
        assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(None)


async def test_aio_stop_before_start_changes_nothing_and_start_after_stop_is_refused(
    grpc: ModuleType,
) -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await asyncio.wait_for(server.stop(None), 10)
    await asyncio.wait_for(server.stop(1), 10)
    await server.start()  # the port is still there, and now serves
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _aio_call(grpc, f"127.0.0.1:{port}", "Missing")
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
    await server.stop(None)
    with pytest.raises(grpc.aio.UsageError):
        await server.start()


def test_blocking_stop_before_start_changes_nothing(grpc: ModuleType) -> None:
    server = _blocking_server(grpc)
    port = server.add_insecure_port("127.0.0.1:0")
    assert server.stop(None).is_set()
    server.start()
    try:
        with pytest.raises(grpc.RpcError) as info:
            _call(grpc, f"127.0.0.1:{port}", "Missing")
        assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        assert server.stop(None).wait(10)
    with pytest.raises(ValueError, match="already"):
        server.start()


def test_blocking_start_without_ports_and_wait_for_termination(grpc: ModuleType) -> None:
    server = _blocking_server(grpc)
    server.start()
    assert server.wait_for_termination(timeout=0.05) is True  # timed out: True
    done = threading.Event()
    results: list[bool] = []

    def wait() -> None:
        results.append(server.wait_for_termination())
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    assert not done.wait(0.1)
    assert server.stop(None).wait(10)
    assert done.wait(10)
    assert results == [False]  # stopped: False


def test_blocking_start_twice_raises_value_error(grpc: ModuleType) -> None:
    server = _blocking_server(grpc)
    server.start()
    try:
        with pytest.raises(ValueError, match="already"):
            server.start()
    finally:
        server.stop(None)


def test_blocking_wait_for_termination_returns_when_the_server_is_deleted(
    grpc: ModuleType,
) -> None:
    server = _blocking_server(grpc)
    server.add_insecure_port("127.0.0.1:0")
    server.start()
    done = threading.Event()
    results: list[bool] = []

    def wait() -> None:
        results.append(server.wait_for_termination())
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    assert not done.wait(0.1)
    server.__del__()  # what the garbage collector does (the waiting thread holds a reference)
    assert done.wait(10)
    assert results == [False]


# ------------------------------------------------------------------ registration after start (15)


async def test_aio_registered_method_handlers_after_start_log_a_warning_and_are_ignored(
    grpc: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        with caplog.at_level(logging.WARNING):
            server.add_registered_method_handlers(
                SERVICE, {"Late": grpc.unary_unary_rpc_method_handler(_async_echo)}
            )
        records = [r for r in caplog.records if r.getMessage() == REGISTER_AFTER_START]
        assert len(records) == 1
        assert records[0].levelno == logging.WARNING
        assert records[0].name.split(".")[0] == grpc.__name__
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _aio_call(grpc, f"127.0.0.1:{port}", "Late")
        assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(None)


async def test_aio_generic_handlers_added_after_start_serve(grpc: ModuleType) -> None:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        server.add_generic_rpc_handlers(
            [generic_handler(grpc, {"Echo": unary_unary(grpc, _async_echo)})]
        )
        assert await _aio_call(grpc, f"127.0.0.1:{port}", "Echo", b"late") == b"late"
    finally:
        await server.stop(None)


def test_blocking_registered_method_handlers_after_start_log_a_warning(
    grpc: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    server = _blocking_server(grpc)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with caplog.at_level(logging.WARNING):
            server.add_registered_method_handlers(
                SERVICE, {"Late": grpc.unary_unary_rpc_method_handler(_echo)}
            )
        records = [r for r in caplog.records if r.getMessage() == REGISTER_AFTER_START]
        assert len(records) == 1
        assert records[0].levelno == logging.WARNING
        assert records[0].name.split(".")[0] == grpc.__name__
        with pytest.raises(grpc.RpcError) as info:
            _call(grpc, f"127.0.0.1:{port}", "Late")
        assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
        # Generic handlers still may be added, and serve.
        server.add_generic_rpc_handlers([generic_handler(grpc, {"Echo": unary_unary(grpc, _echo)})])
        assert _call(grpc, f"127.0.0.1:{port}", "Echo", b"late") == b"late"
    finally:
        server.stop(None)


def test_blocking_add_generic_rpc_handlers_refuses_a_non_handler(grpc: ModuleType) -> None:
    server = _blocking_server(grpc)
    with pytest.raises(AttributeError, match="GenericRpcHandler"):
        server.add_generic_rpc_handlers([object()])
    with pytest.raises(AttributeError, match="GenericRpcHandler"):
        _blocking_server(grpc, handlers=[object()])
    server.stop(None)


# ------------------------------------------------------------------ interceptors (16, 17)


class _Seen:
    def __init__(self) -> None:
        self.metadata: Any = None
        self.pair_found = False


def _aio_recording_interceptor(grpc: ModuleType, seen: _Seen) -> Any:
    class Recording(grpc.aio.ServerInterceptor):  # type: ignore[misc, name-defined]
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            seen.metadata = details.invocation_metadata
            seen.pair_found = ("k", "v") in details.invocation_metadata
            return await continuation(details)

    return Recording()


def _recording_interceptor(grpc: ModuleType, seen: _Seen) -> Any:
    class Recording(grpc.ServerInterceptor):  # type: ignore[misc, name-defined]
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            seen.metadata = details.invocation_metadata
            seen.pair_found = ("k", "v") in details.invocation_metadata
            return continuation(details)

    return Recording()


async def test_aio_handler_call_details_metadata_is_a_tuple_of_pairs(grpc: ModuleType) -> None:
    seen = _Seen()
    server = grpc.aio.server(interceptors=[_aio_recording_interceptor(grpc, seen)])
    server.add_generic_rpc_handlers([generic_handler(grpc, {"Echo": unary_unary(grpc, _echo)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await channel.unary_unary(method("Echo"))(b"x", metadata=(("k", "v"),), timeout=10)
    finally:
        await server.stop(None)
    assert isinstance(seen.metadata, tuple)
    assert seen.pair_found
    assert all(isinstance(pair, tuple) and len(pair) == 2 for pair in seen.metadata)
    assert ("k", "v") in [(pair.key, pair.value) for pair in seen.metadata]


def test_blocking_handler_call_details_metadata_is_a_tuple_of_pairs(grpc: ModuleType) -> None:
    seen = _Seen()
    server = _blocking_server(grpc, interceptors=[_recording_interceptor(grpc, seen)])
    server.add_generic_rpc_handlers([generic_handler(grpc, {"Echo": unary_unary(grpc, _echo)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            channel.unary_unary(method("Echo"))(b"x", metadata=(("k", "v"),), timeout=10)
    finally:
        server.stop(None)
    assert isinstance(seen.metadata, tuple)
    assert seen.pair_found
    assert ("k", "v") in [(pair.key, pair.value) for pair in seen.metadata]


@pytest.mark.parametrize("kind", ["object", "sync interceptor"])
async def test_aio_server_refuses_interceptors_that_are_not_aio_interceptors(
    grpc: ModuleType, kind: str
) -> None:
    interceptor = object() if kind == "object" else _recording_interceptor(grpc, _Seen())
    with pytest.raises(ValueError, match="ServerInterceptor"):
        grpc.aio.server(interceptors=[interceptor])


def _raising_generic_handler(grpc: ModuleType) -> Any:
    class Raising(grpc.GenericRpcHandler):  # type: ignore[misc, name-defined]
        def service(self, details: Any) -> Any:
            raise KeyError("lookup")

    return Raising()


@pytest.mark.parametrize("where", ["interceptor", "generic handler"])
async def test_aio_lookup_that_raises_ends_the_call_unknown(grpc: ModuleType, where: str) -> None:
    class Raising(grpc.aio.ServerInterceptor):  # type: ignore[misc, name-defined]
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            raise KeyError("lookup")

    if where == "interceptor":
        server = grpc.aio.server(interceptors=[Raising()])
    else:
        server = grpc.aio.server(handlers=[_raising_generic_handler(grpc)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _aio_call(grpc, f"127.0.0.1:{port}", "Any")
        assert info.value.code() is grpc.StatusCode.UNKNOWN
        assert info.value.details() == "Unexpected <class 'KeyError'>: 'lookup'"
    finally:
        await server.stop(None)


@pytest.mark.parametrize("where", ["interceptor", "generic handler", "not an interceptor"])
def test_blocking_lookup_that_raises_ends_the_call_unknown(grpc: ModuleType, where: str) -> None:
    class Raising(grpc.ServerInterceptor):  # type: ignore[misc, name-defined]
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            raise KeyError("lookup")

    if where == "generic handler":
        server = _blocking_server(grpc, handlers=[_raising_generic_handler(grpc)])
    else:
        # grpc.server takes any object as an interceptor; calling it fails each call.
        interceptor = Raising() if where == "interceptor" else object()
        server = _blocking_server(grpc, interceptors=[interceptor])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with pytest.raises(grpc.RpcError) as info:
            _call(grpc, f"127.0.0.1:{port}", "Any")
        assert info.value.code() is grpc.StatusCode.UNKNOWN
    finally:
        server.stop(None)


def test_handler_call_details_can_be_subclassed_to_query_a_generic_handler(
    grpc: ModuleType,
) -> None:
    class Details(grpc.HandlerCallDetails):  # type: ignore[misc, name-defined]
        def __init__(self, name: str) -> None:
            self.method = method(name)
            self.invocation_metadata = (("k", "v"),)

    echo = unary_unary(grpc, _echo)
    generic = generic_handler(grpc, {"Echo": echo})
    assert generic.service(Details("Echo")) is echo
    assert generic.service(Details("Other")) is None


def test_blocking_interceptors_get_handler_call_details(grpc: ModuleType) -> None:
    seen: list[Any] = []

    class Recording(grpc.ServerInterceptor):  # type: ignore[misc, name-defined]
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            seen.append(details)
            return continuation(details)

    server = _blocking_server(grpc, interceptors=[Recording()])
    server.add_generic_rpc_handlers([generic_handler(grpc, {"Echo": unary_unary(grpc, _echo)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        assert _call(grpc, f"127.0.0.1:{port}", "Echo") == b"x"
    finally:
        server.stop(None)
    assert isinstance(seen[0], grpc.HandlerCallDetails)
    assert seen[0].method == method("Echo")


# ------------------------------------------------------------------ wrap_server_method_handler (20)


def _upper(behavior: Any) -> Any:
    if asyncio.iscoroutinefunction(behavior):

        async def wrapped_async(request: Any, context: Any) -> Any:
            return (await behavior(request, context)).upper()

        return wrapped_async

    def wrapped(request: Any, context: Any) -> Any:
        result = behavior(request, context)
        if isinstance(result, bytes):
            return result.upper()
        return (item.upper() for item in result)

    return wrapped


def _wrapping_interceptor(grpc: ModuleType) -> Any:
    import importlib

    experimental = importlib.import_module(f"{grpc.__name__}.experimental")

    class Wrapping(grpc.ServerInterceptor):  # type: ignore[misc, name-defined]
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            return experimental.wrap_server_method_handler(_upper, continuation(details))

    return Wrapping()


def test_wrap_server_method_handler(grpc: ModuleType) -> None:
    import importlib

    experimental = importlib.import_module(f"{grpc.__name__}.experimental")
    assert experimental.wrap_server_method_handler(_upper, None) is None

    def chunks(request_iterator: Iterator[bytes], context: Any) -> Iterator[bytes]:
        yield from request_iterator

    server = _blocking_server(grpc, interceptors=[_wrapping_interceptor(grpc)])
    server.add_generic_rpc_handlers(
        [
            generic_handler(
                grpc,
                {"Echo": unary_unary(grpc, _echo), "Chunks": stream_stream(grpc, chunks)},
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert channel.unary_unary(method("Echo"))(b"abc", timeout=10) == b"ABC"
            responses = channel.stream_stream(method("Chunks"))(iter([b"a", b"b"]), timeout=10)
            assert list(responses) == [b"A", b"B"]
    finally:
        server.stop(None)


# ------------------------------------------------------------------ RpcMethodHandler (22)


def _subclassed_handler(grpc: ModuleType, behavior: Any, *, streaming: bool) -> Any:
    class Handler(grpc.RpcMethodHandler):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self.request_streaming = streaming
            self.response_streaming = streaming
            self.request_deserializer = None
            self.response_serializer = None
            self.unary_unary = None if streaming else behavior
            self.unary_stream = None
            self.stream_unary = None
            self.stream_stream = behavior if streaming else None

    return Handler()


class _PlainHandler:
    """Has the attributes of a method handler, and nothing else."""

    request_streaming = False
    response_streaming = False
    request_deserializer = None
    response_serializer = None
    unary_stream = None
    stream_unary = None
    stream_stream = None

    def __init__(self, behavior: Any) -> None:
        self.unary_unary = behavior


def test_rpc_method_handler_is_an_abstract_base_of_the_factories_results(
    grpc: ModuleType,
) -> None:
    handler = grpc.unary_unary_rpc_method_handler(_echo)
    assert isinstance(handler, grpc.RpcMethodHandler)
    assert (handler.request_streaming, handler.response_streaming) == (False, False)
    assert handler.unary_unary is _echo
    replaced = handler._replace(unary_unary=_async_echo)
    assert replaced.unary_unary is _async_echo
    assert isinstance(replaced, grpc.RpcMethodHandler)
    for factory, flags in [
        (grpc.unary_stream_rpc_method_handler, (False, True)),
        (grpc.stream_unary_rpc_method_handler, (True, False)),
        (grpc.stream_stream_rpc_method_handler, (True, True)),
    ]:
        made = factory(_echo, bytes, bytes)
        assert (made.request_streaming, made.response_streaming) == flags
        assert (made.request_deserializer, made.response_serializer) == (bytes, bytes)


def test_blocking_server_serves_subclassed_and_duck_typed_method_handlers(
    grpc: ModuleType,
) -> None:
    def chunks(request_iterator: Iterator[bytes], context: Any) -> Iterator[bytes]:
        for item in request_iterator:
            yield item + b"!"

    server = _blocking_server(grpc)
    server.add_generic_rpc_handlers(
        [
            generic_handler(
                grpc,
                {
                    "Echo": _subclassed_handler(grpc, _echo, streaming=False),
                    "Chunks": _subclassed_handler(grpc, chunks, streaming=True),
                    "Plain": _PlainHandler(_echo),
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert channel.unary_unary(method("Echo"))(b"a", timeout=10) == b"a"
            responses = channel.stream_stream(method("Chunks"))(iter([b"a", b"b"]), timeout=10)
            assert list(responses) == [b"a!", b"b!"]
            assert channel.unary_unary(method("Plain"))(b"p", timeout=10) == b"p"
    finally:
        server.stop(None)


async def test_aio_server_serves_subclassed_and_duck_typed_method_handlers(
    grpc: ModuleType,
) -> None:
    async def chunks(request_iterator: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for item in request_iterator:
            yield item + b"!"

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [
            generic_handler(
                grpc,
                {
                    "Echo": _subclassed_handler(grpc, _async_echo, streaming=False),
                    "Chunks": _subclassed_handler(grpc, chunks, streaming=True),
                    "Plain": _PlainHandler(_async_echo),
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert await channel.unary_unary(method("Echo"))(b"a", timeout=10) == b"a"
            call = channel.stream_stream(method("Chunks"))(iter([b"a", b"b"]), timeout=10)
            assert [item async for item in call] == [b"a!", b"b!"]
            assert await channel.unary_unary(method("Plain"))(b"p", timeout=10) == b"p"
    finally:
        await server.stop(None)


def test_blocking_experimental_non_blocking_stream_handler(grpc: ModuleType) -> None:
    def count(request: bytes, context: Any, send_response: Any) -> None:
        # Returns at once; the responses (and the end, None) come from another thread.
        def produce() -> None:
            for index in range(int(request)):
                send_response(b"%d" % index)
            send_response(None)

        threading.Thread(target=produce).start()

    count.experimental_non_blocking = True  # type: ignore[attr-defined]
    server = _blocking_server(grpc)
    server.add_generic_rpc_handlers(
        [generic_handler(grpc, {"Count": grpc.unary_stream_rpc_method_handler(count)})]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            responses = channel.unary_stream(method("Count"))(b"3", timeout=10)
            assert list(responses) == [b"0", b"1", b"2"]
            assert responses.code() is grpc.StatusCode.OK
    finally:
        server.stop(None)


# ------------------------------------------------------------------ ports (19, 27)


async def _stop_all(servers: list[Any]) -> None:
    for server in servers:
        stopped = server.stop(None)
        if asyncio.iscoroutine(stopped):
            await stopped


@pytest.mark.parametrize("api", ["aio", "blocking"])
async def test_add_insecure_port_on_a_port_in_use_raises_runtime_error(
    grpc: ModuleType, api: str
) -> None:
    holder, port = _held_port()
    server = grpc.aio.server() if api == "aio" else _blocking_server(grpc)
    try:
        with pytest.raises(RuntimeError):
            server.add_insecure_port(f"127.0.0.1:{port}")
    finally:
        holder.close()
        await _stop_all([server])


@pytest.mark.parametrize("address", ["nonsense", "203.0.113.7:0"])
@pytest.mark.parametrize("api", ["aio", "blocking"])
async def test_add_insecure_port_on_an_address_it_cannot_bind_raises_runtime_error(
    grpc: ModuleType, api: str, address: str
) -> None:
    server = grpc.aio.server() if api == "aio" else _blocking_server(grpc)
    try:
        with pytest.raises(RuntimeError):
            server.add_insecure_port(address)
    finally:
        await _stop_all([server])


@pytest.mark.parametrize("api", ["aio", "blocking"])
async def test_so_reuseport_is_on_by_default_and_off_with_the_option(
    grpc: ModuleType, api: str
) -> None:
    servers: list[Any] = []

    def make(options: Any = None) -> Any:
        made = (
            grpc.aio.server(options=options)
            if api == "aio"
            else _blocking_server(grpc, options=options)
        )
        servers.append(made)
        return made

    try:
        port = make().add_insecure_port("127.0.0.1:0")
        # By default both listening sockets have SO_REUSEPORT: a second server binds the port.
        assert make().add_insecure_port(f"127.0.0.1:{port}") == port
        # Without it on the second, the port is in use.
        with pytest.raises(RuntimeError):
            make(options=[("grpc.so_reuseport", 0)]).add_insecure_port(f"127.0.0.1:{port}")
        lone_port = make(options=[("grpc.so_reuseport", 0)]).add_insecure_port("127.0.0.1:0")
        with pytest.raises(RuntimeError):
            make().add_insecure_port(f"127.0.0.1:{lone_port}")
    finally:
        await _stop_all(servers)


# ------------------------------------------------------------------ library logger (27)


def test_the_library_logger_has_a_null_handler(grpc: ModuleType) -> None:
    handlers = logging.getLogger(grpc.__name__).handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)


def test_blocking_experimental_non_blocking_handler_ends_with_the_context_status(
    grpc: ModuleType,
) -> None:
    def fail_late(request: bytes, context: Any, send_response: Any) -> None:
        def produce() -> None:
            send_response(b"first")
            context.set_code(grpc.StatusCode.ABORTED)
            context.set_details("gave up")
            send_response(None)

        threading.Thread(target=produce).start()

    def raises(request: bytes, context: Any, send_response: Any) -> None:
        raise ValueError("no")

    fail_late.experimental_non_blocking = True  # type: ignore[attr-defined]
    raises.experimental_non_blocking = True  # type: ignore[attr-defined]
    server = _blocking_server(grpc)
    server.add_generic_rpc_handlers(
        [
            generic_handler(
                grpc,
                {
                    "FailLate": grpc.unary_stream_rpc_method_handler(fail_late),
                    "Raises": grpc.unary_stream_rpc_method_handler(raises),
                },
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            responses = channel.unary_stream(method("FailLate"))(b"", timeout=10)
            assert next(responses) == b"first"
            with pytest.raises(grpc.RpcError) as info:
                next(responses)
            assert info.value.code() is grpc.StatusCode.ABORTED
            assert info.value.details() == "gave up"
            with pytest.raises(grpc.RpcError) as info:
                list(channel.unary_stream(method("Raises"))(b"", timeout=10))
            assert info.value.code() is grpc.StatusCode.UNKNOWN
    finally:
        server.stop(None)
