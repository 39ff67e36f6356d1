"""grpcio behaviours that grpcio's own unit tests found missing: ContextVars across interceptors,
handlers and metadata plugins; channel option checks; ``grpc.experimental.aio``; the xDS and
Compute Engine credential factories and ``from grpc import *``; server done callbacks that raise.

Servers listen on 127.0.0.1; each scenario runs against grpcio and asgi_grpc (``grpc`` fixture).
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import grpc as grpcio
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

# One variable for every scenario: each sets it where grpcio's contract says it is seen.
TRACE: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)


def _local(grpc: ModuleType) -> tuple[Any, Any]:
    kind = grpc.LocalConnectionType.LOCAL_TCP
    return grpc.local_server_credentials(kind), grpc.local_channel_credentials(kind)


@contextmanager
def _server(
    grpc: ModuleType,
    handlers: dict[str, Any],
    interceptors: tuple[Any, ...] = (),
    credentials: Any = None,
    **kwargs: Any,
) -> Iterator[int]:
    running = grpc.server(
        futures.ThreadPoolExecutor(4),
        handlers=[generic_handler(grpc, handlers)],
        interceptors=interceptors,
        **kwargs,
    )
    if credentials is None:
        port = running.add_insecure_port("127.0.0.1:0")
    else:
        port = running.add_secure_port("127.0.0.1:0", credentials)
    running.start()
    try:
        yield port
    finally:
        running.stop(None)


# ---------------------------------------------------------------------- ContextVars, server side


def _tracing_interceptor(grpc: ModuleType) -> Any:
    """Puts the call's ``trace`` metadata into TRACE before the handler is looked up."""

    class Tracing(grpc.ServerInterceptor):  # type: ignore[name-defined,misc]
        def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
            TRACE.set(dict(details.invocation_metadata).get("trace"))
            return continuation(details)

    return Tracing()


def _traced_handlers(grpc: ModuleType) -> dict[str, Any]:
    def seen() -> bytes:
        return repr(TRACE.get()).encode()

    def drain(requests: Iterator[bytes]) -> None:
        for _ in requests:
            pass

    return {
        "UnaryUnary": unary_unary(grpc, lambda request, context: seen()),
        "UnaryStream": unary_stream(grpc, lambda request, context: iter([seen(), seen()])),
        "StreamUnary": stream_unary(grpc, lambda requests, context: drain(requests) or seen()),
        "StreamStream": stream_stream(
            grpc, lambda requests, context: (drain(requests), iter([seen()]))[1]
        ),
    }


@pytest.mark.parametrize("name", ["UnaryUnary", "UnaryStream", "StreamUnary", "StreamStream"])
def test_a_context_var_set_in_a_server_interceptor_reaches_the_sync_handler(
    grpc: ModuleType, name: str
) -> None:
    with (
        _server(grpc, _traced_handlers(grpc), (_tracing_interceptor(grpc),)) as port,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        metadata = (("trace", f"t-{name}"),)
        if name.startswith("Unary"):
            request: Any = b"r"
        else:
            request = iter([b"r", b"s"])
        if name == "UnaryUnary":
            got = [channel.unary_unary(method(name))(request, timeout=TIMEOUT, metadata=metadata)]
        elif name == "UnaryStream":
            got = list(
                channel.unary_stream(method(name))(request, timeout=TIMEOUT, metadata=metadata)
            )
        elif name == "StreamUnary":
            got = [channel.stream_unary(method(name))(request, timeout=TIMEOUT, metadata=metadata)]
        else:
            got = list(
                channel.stream_stream(method(name))(request, timeout=TIMEOUT, metadata=metadata)
            )
    assert got
    assert all(seen == repr(f"t-{name}").encode() for seen in got)


async def test_a_context_var_set_in_an_aio_server_interceptor_reaches_the_handler(
    grpc: ModuleType,
) -> None:
    class Tracing(grpc.aio.ServerInterceptor):  # type: ignore[name-defined,misc]
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            TRACE.set(dict(details.invocation_metadata).get("trace"))
            return await continuation(details)

    async def seen_async(request: bytes, context: Any) -> bytes:
        return repr(TRACE.get()).encode()

    server = grpc.aio.server(interceptors=[Tracing()])
    handlers = {"Seen": unary_unary(grpc, seen_async)}
    server.add_generic_rpc_handlers([generic_handler(grpc, handlers)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(method("Seen"))
            first = await call(b"", timeout=TIMEOUT, metadata=(("trace", "one"),))
            second = await call(b"", timeout=TIMEOUT, metadata=(("trace", "two"),))
    finally:
        await server.stop(None)
    assert (first, second) == (b"'one'", b"'two'")


# ---------------------------------------------------------------------- ContextVars, plugins


class _RecordingPlugin:
    """An AuthMetadataPlugin that records what TRACE holds when it runs, then changes it (which
    must not leak into the next call)."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []
        self._lock = threading.Lock()

    def __call__(self, context: Any, callback: Any) -> None:
        with self._lock:
            self.seen.append(TRACE.get())
        TRACE.set("set by the plugin")
        callback((), None)


def _run_in_fresh_context(fn: Callable[[], Any]) -> Any:
    """``fn`` in an empty context, so the test's own TRACE settings do not reach it."""
    return contextvars.Context().run(fn)


def test_a_metadata_plugin_sees_the_context_its_credentials_were_made_in(
    grpc: ModuleType,
) -> None:
    server_credentials, local = _local(grpc)
    plugin = _RecordingPlugin()

    def make_credentials() -> Any:
        TRACE.set("when the credentials were made")
        return grpc.composite_channel_credentials(local, grpc.metadata_call_credentials(plugin))

    credentials = _run_in_fresh_context(make_credentials)

    def call_from(label: str) -> bytes:
        TRACE.set(label)
        with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
            response: bytes = channel.unary_unary(method("Echo"))(b"hi", timeout=TIMEOUT)
            return response

    with _server(
        grpc, {"Echo": unary_unary(grpc, lambda r, c: r)}, credentials=server_credentials
    ) as port:
        assert _run_in_fresh_context(lambda: call_from("the caller")) == b"hi"
        assert _run_in_fresh_context(lambda: call_from("the caller again")) == b"hi"
        # A thread of its own (which starts with an empty context), as grpcio's users have.
        results: list[bytes] = []
        thread = threading.Thread(target=lambda: results.append(call_from("another thread")))
        thread.start()
        thread.join(TIMEOUT)
        assert results == [b"hi"]
    # grpcio captures the context in metadata_call_credentials(); each call runs the plugin in a
    # copy of it, so the plugin's own TRACE.set is gone by the next call.
    assert plugin.seen == ["when the credentials were made"] * 3


async def test_a_metadata_plugin_on_an_aio_channel_sees_the_credentials_context(
    grpc: ModuleType,
) -> None:
    server_credentials, local = _local(grpc)
    plugin = _RecordingPlugin()
    TRACE.set("when the credentials were made")
    credentials = grpc.composite_channel_credentials(local, grpc.metadata_call_credentials(plugin))
    TRACE.set("the caller")
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [generic_handler(grpc, {"Echo": unary_unary(grpc, lambda r, c: r)})]
    )
    port = server.add_secure_port("127.0.0.1:0", server_credentials)
    await server.start()
    try:
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
            assert await channel.unary_unary(method("Echo"))(b"a", timeout=TIMEOUT) == b"a"
            assert await channel.unary_unary(method("Echo"))(b"b", timeout=TIMEOUT) == b"b"
    finally:
        await server.stop(None)
    assert plugin.seen == ["when the credentials were made"] * 2
    assert TRACE.get() == "the caller"


# ---------------------------------------------------------------------- channel options

NOT_PAIRS = [
    pytest.param({"grpc.primary_user_agent": "x"}, id="dict"),
    pytest.param((("grpc.primary_user_agent",),), id="one-tuple"),
    pytest.param((("a", 1, 2),), id="three-tuple"),
    pytest.param("options", id="str"),
]
BAD_TYPES = [
    pytest.param(5, id="not-iterable"),
    pytest.param(((1, "v"),), id="int-key"),
    pytest.param((("grpc.primary_user_agent", None),), id="none-value"),
]
GOOD = [
    pytest.param(None, id="none"),
    pytest.param((), id="empty"),
    pytest.param([["grpc.primary_user_agent", "agent"]], id="lists"),
    pytest.param(((b"grpc.max_receive_message_length", 1024),), id="bytes-key"),
    pytest.param(iter([("grpc.max_send_message_length", 1024)]), id="iterator"),
]


def _make_channels(grpc: ModuleType, options: Any) -> None:
    """A channel of each kind with ``options`` (an iterator is consumed by the first only)."""
    grpc.insecure_channel("localhost:8080", options=options).close()
    if isinstance(options, Iterator):
        return
    grpc.secure_channel("localhost:8080", grpc.ssl_channel_credentials(), options=options).close()

    async def aio() -> None:
        await grpc.aio.insecure_channel("localhost:8080", options=options).close()
        credentials = grpc.ssl_channel_credentials()
        await grpc.aio.secure_channel("localhost:8080", credentials, options=options).close()

    asyncio.run(aio())


@pytest.mark.parametrize("options", NOT_PAIRS)
def test_options_that_are_not_pairs_raise_value_error(grpc: ModuleType, options: Any) -> None:
    for make in (
        lambda: grpc.insecure_channel("localhost:8080", options=options),
        lambda: grpc.secure_channel("localhost:8080", grpc.ssl_channel_credentials(), options),
    ):
        with pytest.raises(ValueError, match="unpack"):
            make()

    async def aio() -> None:
        with pytest.raises(ValueError, match="unpack"):
            grpc.aio.insecure_channel("localhost:8080", options=options)
        with pytest.raises(ValueError, match="unpack"):
            grpc.aio.secure_channel("localhost:8080", grpc.ssl_channel_credentials(), options)

    asyncio.run(aio())


@pytest.mark.parametrize("options", BAD_TYPES)
def test_options_of_the_wrong_type_raise_type_error(grpc: ModuleType, options: Any) -> None:
    with pytest.raises(TypeError):
        grpc.insecure_channel("localhost:8080", options=options)

    async def aio() -> None:
        with pytest.raises(TypeError):
            grpc.aio.insecure_channel("localhost:8080", options=options)

    asyncio.run(aio())


@pytest.mark.parametrize("options", GOOD)
def test_well_formed_options_are_accepted(grpc: ModuleType, options: Any) -> None:
    _make_channels(grpc, options)


# ---------------------------------------------------------------------- grpc.experimental.aio


def test_experimental_aio_is_grpc_aio_under_its_old_name(grpc: ModuleType) -> None:
    legacy = importlib.import_module(f"{grpc.__name__}.experimental.aio")
    names = grpc.aio.__all__
    assert {"insecure_channel", "server", "AioRpcError", "Metadata"} <= set(names)
    assert all(getattr(legacy, name) is getattr(grpc.aio, name) for name in names)


# ---------------------------------------------------------------------- xDS, GCE, __all__


def test_star_import_exports_grpcio_all(grpc: ModuleType) -> None:
    namespace: dict[str, Any] = {}
    exec(f"from {grpc.__name__} import *", namespace)
    assert sorted(grpc.__all__) == sorted(grpcio.__all__)
    assert set(grpcio.__all__) <= set(namespace)
    assert "aio" not in grpc.__all__
    assert importlib.import_module(f"{grpc.__name__}.aio") is grpc.aio


def test_xds_credentials_use_their_fallback(grpc: ModuleType, tls: Any) -> None:
    server_credentials = grpc.xds_server_credentials(
        grpc.ssl_server_credentials([(tls.server_key, tls.server_chain)])
    )
    channel_credentials = grpc.xds_channel_credentials(
        grpc.ssl_channel_credentials(root_certificates=tls.ca_pem)
    )
    handlers = {"Echo": unary_unary(grpc, lambda r, c: r)}
    # xds=True without an xDS bootstrap: grpcio's server serves with the fallback credentials.
    with (
        _server(grpc, handlers, credentials=server_credentials, xds=True) as port,
        grpc.secure_channel(f"localhost:{port}", channel_credentials) as channel,
    ):
        assert channel.unary_unary(method("Echo"))(b"xds", timeout=TIMEOUT) == b"xds"


def test_xds_insecure_fallback_on_a_server(grpc: ModuleType) -> None:
    credentials = grpc.xds_server_credentials(grpc.insecure_server_credentials())
    handlers = {"Echo": unary_unary(grpc, lambda r, c: r)}
    with (
        _server(grpc, handlers, credentials=credentials, xds=True) as port,
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        assert channel.unary_unary(method("Echo"))(b"plain", timeout=TIMEOUT) == b"plain"


def test_insecure_channel_credentials_as_the_xds_fallback(grpc: ModuleType) -> None:
    experimental = importlib.import_module(f"{grpc.__name__}.experimental")
    insecure = experimental.insecure_channel_credentials()
    with_token = grpc.composite_channel_credentials(
        insecure, grpc.access_token_call_credentials("token")
    )
    handlers = {"Report": unary_unary(grpc, lambda r, c: repr(c.auth_context()).encode())}
    with _server(grpc, handlers) as port:
        target = f"127.0.0.1:{port}"
        with grpc.secure_channel(target, grpc.xds_channel_credentials(insecure)) as channel:
            report = channel.unary_unary(method("Report"))(b"", timeout=TIMEOUT)
        assert b"'transport_security_type': [b'insecure']" in report
        # Call credentials need a secure channel: every call fails, nothing is sent.
        with (
            grpc.secure_channel(target, with_token) as channel,
            pytest.raises(grpc.RpcError) as raised,
        ):
            channel.unary_unary(method("Report"))(b"", timeout=TIMEOUT)
    assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "sufficient security level" in raised.value.details()


def test_an_xds_target_fails_its_calls_unavailable(grpc: ModuleType) -> None:
    """Without an xDS bootstrap (asgi_grpc: without xDS at all) the channel is made and its
    calls fail UNAVAILABLE."""
    credentials = grpc.xds_channel_credentials(grpc.ssl_channel_credentials())
    for channel in (
        grpc.secure_channel("xds:///service.example", credentials),
        grpc.insecure_channel("xds:///service.example"),
    ):
        with channel, pytest.raises(grpc.RpcError) as raised:
            channel.unary_unary(method("Echo"))(b"", timeout=TIMEOUT)
        assert raised.value.code() is grpc.StatusCode.UNAVAILABLE


def test_compute_engine_credentials_are_tls_with_the_system_roots(
    grpc: ModuleType, tls: Any
) -> None:
    """The credentials verify the server against the system's roots, which do not hold the
    test CA: the handshake fails (UNAVAILABLE), as it does for plain ssl_channel_credentials()."""
    plugin = _RecordingPlugin()
    credentials = grpc.compute_engine_channel_credentials(grpc.metadata_call_credentials(plugin))
    server_credentials = grpc.ssl_server_credentials([(tls.server_key, tls.server_chain)])
    handlers = {"Echo": unary_unary(grpc, lambda r, c: r)}
    with _server(grpc, handlers, credentials=server_credentials) as port:
        for channel_credentials in (credentials, grpc.ssl_channel_credentials()):
            with (
                grpc.secure_channel(f"localhost:{port}", channel_credentials) as channel,
                pytest.raises(grpc.RpcError) as raised,
            ):
                channel.unary_unary(method("Echo"))(b"", timeout=TIMEOUT)
            assert raised.value.code() is grpc.StatusCode.UNAVAILABLE


# ---------------------------------------------------------------------- server done callbacks


async def test_a_raising_done_callback_is_logged_and_stops_the_rest(
    grpc: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def toxic(context: Any) -> None:
        ran.append("toxic")
        raise RuntimeError("toxic callback")

    async def handler(request: bytes, context: Any) -> bytes:
        context.add_done_callback(lambda _: ran.append("first"))
        context.add_done_callback(toxic)
        context.add_done_callback(lambda _: ran.append("after"))
        return request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([generic_handler(grpc, {"Cb": unary_unary(grpc, handler)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    caplog.set_level(logging.ERROR)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert await channel.unary_unary(method("Cb"))(b"one", timeout=TIMEOUT) == b"one"
            # The callbacks run one after another at the end of the call, in one go: once the
            # toxic one ran, "after" would be there already if it were called.
            for _ in range(200):
                if "toxic" in ran:
                    break
                await asyncio.sleep(0.01)
            assert ran == ["first", "toxic"]
            # The server is unharmed.
            assert await channel.unary_unary(method("Cb"))(b"two", timeout=TIMEOUT) == b"two"
    finally:
        await server.stop(None)
    errors = [
        record
        for record in caplog.records
        if record.levelno == logging.ERROR and method("Cb") in record.getMessage()
    ]
    assert errors
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)
