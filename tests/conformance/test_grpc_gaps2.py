"""More behaviours that grpcio's own unit tests found different: how each server API words a
handler's exception (grpc: "Exception calling application: ...", grpc.aio: "Unexpected <class>:
..."), a generic handler whose ``service()`` raises, a behaviour's ``experimental_thread_pool``
(grpc's blocking server runs the behaviour there), and grpc.aio's checks of trailing metadata
(``set_trailing_metadata`` and ``abort(trailing_metadata=...)``).

Servers listen on 127.0.0.1; each scenario runs against grpcio and asgi_grpc (``grpc`` fixture).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest

from .conftest import (
    generic_handler,
    method,
    stream_stream,
    stream_unary,
    unary_stream,
    unary_unary,
)

TIMEOUT = 10.0


class Boom(Exception):
    pass


@contextmanager
def _server(grpc: ModuleType, handlers: list[Any]) -> Iterator[Any]:
    """A blocking server on 127.0.0.1 with ``handlers``; yields a channel to it."""
    pool = futures.ThreadPoolExecutor(4, thread_name_prefix="server-pool")
    running = grpc.server(pool, handlers=handlers)
    port = running.add_insecure_port("127.0.0.1:0")
    running.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        running.stop(None)
        pool.shutdown(wait=False)


def _call(grpc: ModuleType, channel: Any, kind: str, name: str) -> Any:
    """Make one call of ``kind`` and return its outcome: the response(s) or the RpcError."""
    try:
        if kind == "uu":
            return channel.unary_unary(method(name))(b"req", timeout=TIMEOUT)
        if kind == "us":
            return list(channel.unary_stream(method(name))(b"req", timeout=TIMEOUT))
        if kind == "su":
            return channel.stream_unary(method(name))(iter([b"a", b"b"]), timeout=TIMEOUT)
        return list(channel.stream_stream(method(name))(iter([b"a", b"b"]), timeout=TIMEOUT))
    except grpc.RpcError as error:
        return error


# ---------------------------------------------------------------------- a handler that raises


def _raise_now(request: Any, context: Any) -> bytes:
    raise Boom("went wrong")


def _raise_while_iterating(request: Any, context: Any) -> Iterator[bytes]:
    yield b"first"
    raise Boom("went wrong")


_MAKERS: dict[str, Callable[..., Any]] = {
    "uu": unary_unary,
    "us": unary_stream,
    "su": stream_unary,
    "ss": stream_stream,
}


@pytest.mark.parametrize(
    ("kind", "behavior", "wording"),
    [
        ("uu", _raise_now, "Exception calling application: went wrong"),
        ("su", _raise_now, "Exception calling application: went wrong"),
        ("us", _raise_while_iterating, "Exception iterating responses: went wrong"),
        ("ss", _raise_while_iterating, "Exception iterating responses: went wrong"),
    ],
)
def test_a_blocking_handler_exception_ends_unknown_in_grpc_wording(
    grpc: ModuleType,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    behavior: Callable[..., Any],
    wording: str,
) -> None:
    handlers = [generic_handler(grpc, {"Raise": _MAKERS[kind](grpc, behavior)})]
    caplog.set_level(logging.ERROR)
    with _server(grpc, handlers) as channel:
        error = _call(grpc, channel, kind, "Raise")
    assert isinstance(error, grpc.RpcError)
    assert error.code() is grpc.StatusCode.UNKNOWN
    assert error.details() == wording
    # The server logs the exception itself (with its traceback).
    logged = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], Boom)]
    assert logged
    assert logged[0].levelno == logging.ERROR


@pytest.mark.parametrize("sync_handler", [False, True], ids=["async", "sync"])
async def test_an_aio_handler_exception_ends_unknown_in_aio_wording(
    grpc: ModuleType, sync_handler: bool
) -> None:
    async def raising(request: bytes, context: Any) -> bytes:
        raise Boom("went wrong")

    pool = futures.ThreadPoolExecutor(2)
    server = grpc.aio.server(migration_thread_pool=pool)
    behavior = _raise_now if sync_handler else raising
    server.add_generic_rpc_handlers([generic_handler(grpc, {"Raise": unary_unary(grpc, behavior)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await channel.unary_unary(method("Raise"))(b"req", timeout=TIMEOUT)
    finally:
        await server.stop(None)
        pool.shutdown(wait=False)
    assert caught.value.code() is grpc.StatusCode.UNKNOWN
    assert caught.value.details() == f"Unexpected {Boom}: went wrong"


class _ExplodingLookup:
    """A generic handler whose ``service()`` raises for every call."""

    def service(self, handler_call_details: Any) -> Any:
        raise Boom("lookup failed")


def test_a_raising_service_lookup_ends_unknown_error_in_service_handler(
    grpc: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    with _server(grpc, [_ExplodingLookup()]) as channel:
        error = _call(grpc, channel, "uu", "Any")
        # The server is unharmed by it.
        assert isinstance(_call(grpc, channel, "uu", "Any"), grpc.RpcError)
    assert isinstance(error, grpc.RpcError)
    assert error.code() is grpc.StatusCode.UNKNOWN
    assert error.details() == "Error in service handler!"
    assert any(r.exc_info and isinstance(r.exc_info[1], Boom) for r in caplog.records)


# ---------------------------------------------------------------------- experimental_thread_pool


def _thread_recorder() -> tuple[list[str], dict[str, Callable[..., Any]]]:
    """Behaviours of each shape (and a non-blocking one) that record the thread they run on."""
    threads: list[str] = []

    def unary(request: bytes, context: Any) -> bytes:
        threads.append(threading.current_thread().name)
        return request

    def client_stream(requests: Iterator[bytes], context: Any) -> bytes:
        threads.append(threading.current_thread().name)
        return b"".join(requests)

    def streaming(request: bytes, context: Any) -> Iterator[bytes]:
        threads.append(threading.current_thread().name)
        yield request

    def non_blocking(request: bytes, context: Any, send_response: Callable[[Any], None]) -> None:
        threads.append(threading.current_thread().name)
        send_response(request)
        send_response(None)

    non_blocking.experimental_non_blocking = True  # type: ignore[attr-defined]
    return threads, {
        "Unary": unary,
        "ClientStream": client_stream,
        "Streaming": streaming,
        "NonBlocking": non_blocking,
    }


def _handlers(grpc: ModuleType, behaviors: dict[str, Callable[..., Any]]) -> list[Any]:
    return [
        generic_handler(
            grpc,
            {
                "Unary": unary_unary(grpc, behaviors["Unary"]),
                "ClientStream": stream_unary(grpc, behaviors["ClientStream"]),
                "Streaming": unary_stream(grpc, behaviors["Streaming"]),
                "NonBlocking": unary_stream(grpc, behaviors["NonBlocking"]),
            },
        )
    ]


def _call_each(grpc: ModuleType, channel: Any) -> None:
    assert _call(grpc, channel, "uu", "Unary") == b"req"
    assert _call(grpc, channel, "su", "ClientStream") == b"ab"
    assert _call(grpc, channel, "us", "Streaming") == [b"req"]
    assert _call(grpc, channel, "us", "NonBlocking") == [b"req"]


def test_a_behaviour_runs_on_its_experimental_thread_pool(grpc: ModuleType) -> None:
    own = futures.ThreadPoolExecutor(2, thread_name_prefix="own-pool")
    threads, behaviors = _thread_recorder()
    for behavior in behaviors.values():
        behavior.experimental_thread_pool = own  # type: ignore[attr-defined]
    try:
        with _server(grpc, _handlers(grpc, behaviors)) as channel:
            _call_each(grpc, channel)
    finally:
        own.shutdown(wait=False)
    assert len(threads) == 4
    assert all(name.startswith("own-pool") for name in threads), threads


class _ForwardingPool(futures.ThreadPoolExecutor):
    """A ThreadPoolExecutor whose ``submit`` hands the work on and returns None, as pools that
    wrap another may: grpc only submits to it."""

    def __init__(self) -> None:
        super().__init__(1)
        self.inner = futures.ThreadPoolExecutor(2, thread_name_prefix="forwarded")

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.inner.submit(fn, *args, **kwargs)
        return None


def test_an_experimental_thread_pool_whose_submit_returns_none(grpc: ModuleType) -> None:
    own = _ForwardingPool()
    threads, behaviors = _thread_recorder()
    for behavior in behaviors.values():
        behavior.experimental_thread_pool = own  # type: ignore[attr-defined]
    try:
        with _server(grpc, _handlers(grpc, behaviors)) as channel:
            _call_each(grpc, channel)
    finally:
        own.inner.shutdown(wait=False)
        own.shutdown(wait=False)
    assert len(threads) == 4
    assert all(name.startswith("forwarded") for name in threads), threads


def test_without_a_thread_pool_there_the_server_pool_runs_the_behaviour(
    grpc: ModuleType,
) -> None:
    threads, behaviors = _thread_recorder()
    # Not a ThreadPoolExecutor: grpc ignores it.
    behaviors["Unary"].experimental_thread_pool = "not a pool"  # type: ignore[attr-defined]
    with _server(grpc, _handlers(grpc, behaviors)) as channel:
        _call_each(grpc, channel)
    assert len(threads) == 4
    assert all(name.startswith("server-pool") for name in threads), threads


async def test_a_raising_service_lookup_on_an_aio_server_ends_unknown(grpc: ModuleType) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([_ExplodingLookup()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await channel.unary_unary(method("Any"))(b"req", timeout=TIMEOUT)
    finally:
        await server.stop(None)
    assert caught.value.code() is grpc.StatusCode.UNKNOWN
    assert caught.value.details() == f"Unexpected {Boom}: lookup failed"


# ---------------------------------------------------------------------- grpc.aio trailing metadata


async def _aio_call(grpc: ModuleType, handler: Callable[..., Any], request: bytes) -> Any:
    """One unary call to an aio server serving ``handler``; its response or AioRpcError."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([generic_handler(grpc, {"M": unary_unary(grpc, handler)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(method("M"))(request, timeout=TIMEOUT)
            try:
                return await call
            except grpc.aio.AioRpcError as error:
                return error
    finally:
        await server.stop(None)


@pytest.mark.parametrize(
    "bad",
    [{}, [{"k": "v", "l": "w"}], [["k", "v"]], (["k", "v"],)],
    ids=["empty-dict", "dict-pairs", "list-pairs", "tuple-of-lists"],
)
async def test_aio_set_trailing_metadata_wants_tuple_pairs(grpc: ModuleType, bad: Any) -> None:
    seen: list[str] = []

    async def handler(request: bytes, context: Any) -> bytes:
        try:
            context.set_trailing_metadata(bad)
        except TypeError:
            seen.append("TypeError")
        context.set_trailing_metadata(iter([("k", "v")]))  # any iterable of tuples will do
        return b"ok"

    assert await _aio_call(grpc, handler, b"") == b"ok"
    assert seen == ["TypeError"]


@pytest.mark.parametrize(
    "metadata",
    [[("k", "v")], {"k": ("v", "w")}, None, (["k", "v"],), (("k", 1),)],
    ids=["list", "dict", "none", "tuple-of-lists", "bad-value"],
)
async def test_aio_abort_with_trailing_metadata_not_a_tuple_of_pairs_ends_unknown(
    grpc: ModuleType, metadata: Any
) -> None:
    async def handler(request: bytes, context: Any) -> bytes:
        await context.abort(grpc.StatusCode.DATA_LOSS, "lost", trailing_metadata=metadata)
        raise AssertionError("abort returned")

    error = await _aio_call(grpc, handler, b"")
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() is grpc.StatusCode.UNKNOWN
    assert error.details().startswith(f"Unexpected {TypeError}: ")
    assert "trailing_metadata" in error.details() or "trailing metadata" in error.details()


async def test_aio_abort_with_a_tuple_of_pairs_sends_them(grpc: ModuleType) -> None:
    async def handler(request: bytes, context: Any) -> bytes:
        await context.abort(grpc.StatusCode.DATA_LOSS, "lost", trailing_metadata=(("k", "v"),))
        raise AssertionError("abort returned")

    error = await _aio_call(grpc, handler, b"")
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() is grpc.StatusCode.DATA_LOSS
    assert error.details() == "lost"
    assert [pair for pair in error.trailing_metadata() if pair[0] == "k"] == [("k", "v")]
