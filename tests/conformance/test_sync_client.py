"""The blocking client API against grpcio: request iterators that fail, metadata that client
interceptors add, bytes metadata keys, ``debug_error_string()`` on success, and the exception types
raised at the call site for malformed arguments.

Every scenario runs a server and a channel of the same library on 127.0.0.1.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterator
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


def _echo(request: bytes, context: Any) -> bytes:
    return request


def _count(requests: Iterator[bytes], context: Any) -> bytes:
    return b"%d" % sum(1 for _ in requests)


def _metadata_echo(request: bytes, context: Any) -> bytes:
    """Answers with the call's metadata (not the transport's own headers), as ``k=v;...``."""
    pairs = sorted(
        f"{key}={value!r}"
        for key, value in context.invocation_metadata()
        if key not in ("user-agent",) and not key.startswith(("grpc-", ":"))
    )
    return ";".join(pairs).encode()


@contextmanager
def serving(grpc: ModuleType, interceptors: tuple[Any, ...] = ()) -> Iterator[Any]:
    """A sync server of ``grpc`` with the test methods, and an insecure channel to it."""
    handlers = {
        "Echo": unary_unary(grpc, _echo),
        "Metadata": unary_unary(grpc, _metadata_echo),
        "MetadataStream": unary_stream(
            grpc, lambda request, context: iter([_metadata_echo(request, context)])
        ),
        "Count": stream_unary(grpc, _count),
        "Pipe": stream_stream(grpc, lambda requests, context: iter(list(requests))),
    }
    server = grpc.server(
        futures.ThreadPoolExecutor(4),
        handlers=[generic_handler(grpc, handlers)],
        interceptors=interceptors,
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    # Connected before the scenario: a call reset while its connection is still being set up
    # can leave asgi_grpc's server.stop() waiting forever (a server-side bug, reported; seen on
    # main too), which is not what these client scenarios are about.
    assert channel.unary_unary(method("Echo"))(b"up", timeout=TIMEOUT) == b"up"
    try:
        yield channel
    finally:
        channel.close()
        server.stop(None)


def _failing_requests() -> Iterator[bytes]:
    yield b"a"
    raise ValueError("the request source broke")


# ---------------------------------------------------------------------- request iterators


@pytest.mark.parametrize("requests", ["raises", "not-iterable", "none"])
def test_failing_request_iterator_ends_the_call_unknown(
    grpc: ModuleType, requests: str, caplog: pytest.LogCaptureFixture
) -> None:
    source: Any = {"raises": _failing_requests(), "not-iterable": 42, "none": None}[requests]
    with serving(grpc) as channel, caplog.at_level(logging.ERROR):
        with pytest.raises(grpc.RpcError) as raised:
            channel.stream_unary(method("Count"))(source, timeout=TIMEOUT)
    error = raised.value
    assert error.code() is grpc.StatusCode.UNKNOWN
    assert error.details() == "Exception iterating requests!"
    # grpcio logs the iterator's failure, with its traceback, on its channel's logger.
    assert any(
        record.getMessage() == "Exception iterating requests!" and record.exc_info
        for record in caplog.records
    )


def test_failing_request_iterator_future(grpc: ModuleType) -> None:
    with serving(grpc) as channel:
        future = channel.stream_unary(method("Count")).future(_failing_requests(), timeout=TIMEOUT)
        error = future.exception(timeout=TIMEOUT)
    assert error is not None
    assert error.code() is grpc.StatusCode.UNKNOWN
    assert error.details() == "Exception iterating requests!"


# ---------------------------------------------------------------------- debug_error_string


def test_debug_error_string_is_empty_on_success(grpc: ModuleType) -> None:
    with serving(grpc) as channel:
        response, call = channel.unary_unary(method("Echo")).with_call(b"x", timeout=TIMEOUT)
        future = channel.unary_unary(method("Echo")).future(b"y", timeout=TIMEOUT)
        assert future.result(timeout=TIMEOUT) == b"y"
        stream = channel.stream_stream(method("Pipe"))(iter([b"a", b"b"]), timeout=TIMEOUT)
        assert list(stream) == [b"a", b"b"]
    assert response == b"x"
    for done in (call, future, stream):
        assert done.code() is grpc.StatusCode.OK
        assert done.details() == ""
        assert done.debug_error_string() == ""


# ---------------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    ("metadata", "seen"),
    [
        ([(b"key", b"value")], "key='value'"),
        ([(b"key", "value")], "key='value'"),
        ([(b"data-bin", b"\x00\xff")], "data-bin=b'\\x00\\xff'"),
        ((("key", "value"), (b"other", b"x")), "key='value';other='x'"),
    ],
)
def test_bytes_metadata_keys_are_accepted(grpc: ModuleType, metadata: Any, seen: str) -> None:
    with serving(grpc) as channel:
        response = channel.unary_unary(method("Metadata"))(b"", timeout=TIMEOUT, metadata=metadata)
    assert response.decode() == seen


@pytest.mark.parametrize(
    ("metadata", "seen"),
    [([(b"key", b"value")], "key='value'"), ([(b"data-bin", b"\x00")], "data-bin=b'\\x00'")],
)
async def test_bytes_metadata_keys_are_accepted_aio(
    grpc: ModuleType, metadata: Any, seen: str
) -> None:
    async def metadata_echo(request: bytes, context: Any) -> bytes:
        return _metadata_echo(request, context)

    server = grpc.aio.server(
        handlers=[generic_handler(grpc, {"Metadata": unary_unary(grpc, metadata_echo)})]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(method("Metadata"))(b"", timeout=TIMEOUT, metadata=metadata)
            assert (await call).decode() == seen
            assert await call.code() is grpc.StatusCode.OK
    finally:
        await server.stop(None)


@pytest.mark.parametrize("metadata", [42, [42], [("key", 42)], [(42, "value")]])
@pytest.mark.parametrize("how", ["call", "with_call", "future", "stream_unary", "stream_stream"])
def test_malformed_metadata_raises_type_error_at_the_call_site(
    grpc: ModuleType, metadata: Any, how: str
) -> None:
    with serving(grpc) as channel:
        unary = channel.unary_unary(method("Echo"))
        calls = {
            "call": lambda: unary(b"x", timeout=TIMEOUT, metadata=metadata),
            "with_call": lambda: unary.with_call(b"x", timeout=TIMEOUT, metadata=metadata),
            "future": lambda: unary.future(b"x", timeout=TIMEOUT, metadata=metadata),
            "stream_unary": lambda: channel.stream_unary(method("Count"))(
                iter([b"a"]), timeout=TIMEOUT, metadata=metadata
            ),
            "stream_stream": lambda: channel.stream_stream(method("Pipe"))(
                iter([b"a"]), timeout=TIMEOUT, metadata=metadata
            ),
        }
        with pytest.raises(TypeError):
            calls[how]()
        # The channel is still good.
        assert unary(b"ok", timeout=TIMEOUT) == b"ok"


# ---------------------------------------------------------------------- client interceptors


def _adding_interceptor(grpc: ModuleType, short_details: bool) -> Any:
    """A client interceptor for the four patterns that adds ``added: yes`` to the metadata.

    ``short_details``: the details passed on are a namedtuple of the four original fields
    (method, timeout, metadata, credentials), as older interceptors still build them."""

    short = collections.namedtuple("short", ("method", "timeout", "metadata", "credentials"))

    class ShortDetails(short, grpc.ClientCallDetails):  # type: ignore[name-defined,misc,valid-type]
        pass

    class FullDetails(grpc.ClientCallDetails):  # type: ignore[name-defined,misc]
        def __init__(self, details: Any, metadata: Any) -> None:
            self.method = details.method
            self.timeout = details.timeout
            self.metadata = metadata
            self.credentials = details.credentials
            self.wait_for_ready = details.wait_for_ready
            self.compression = details.compression

    class Adding(
        grpc.UnaryUnaryClientInterceptor,  # type: ignore[name-defined,misc]
        grpc.UnaryStreamClientInterceptor,  # type: ignore[name-defined,misc]
        grpc.StreamUnaryClientInterceptor,  # type: ignore[name-defined,misc]
        grpc.StreamStreamClientInterceptor,  # type: ignore[name-defined,misc]
    ):
        def _details(self, details: Any) -> Any:
            metadata = [*(details.metadata or ()), ("added", "yes")]
            if short_details:
                return ShortDetails(details.method, details.timeout, metadata, details.credentials)
            return FullDetails(details, metadata)

        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            return continuation(self._details(details), request)

        intercept_unary_stream = intercept_unary_unary
        intercept_stream_unary = intercept_unary_unary
        intercept_stream_stream = intercept_unary_unary

    return Adding()


def _recording_server_interceptor(grpc: ModuleType, seen: list[Any]) -> Any:
    class Recording(grpc.ServerInterceptor):  # type: ignore[name-defined,misc]
        def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
            if handler_call_details.method != method("Echo"):  # not the warm-up call
                seen.append([tuple(pair) for pair in handler_call_details.invocation_metadata])
            return continuation(handler_call_details)

    return Recording()


@pytest.mark.parametrize("short_details", [False, True], ids=["details", "namedtuple"])
@pytest.mark.parametrize("call_metadata", [None, (("given", "1"),)], ids=["none", "given"])
def test_client_interceptor_metadata_reaches_the_server(
    grpc: ModuleType, call_metadata: Any, short_details: bool
) -> None:
    seen: list[Any] = []
    with serving(grpc, interceptors=(_recording_server_interceptor(grpc, seen),)) as channel:
        intercepted = grpc.intercept_channel(channel, _adding_interceptor(grpc, short_details))
        unary = intercepted.unary_unary(method("Metadata"))
        responses = [
            unary(b"", timeout=TIMEOUT, metadata=call_metadata),
            unary.with_call(b"", timeout=TIMEOUT, metadata=call_metadata)[0],
            unary.future(b"", timeout=TIMEOUT, metadata=call_metadata).result(timeout=TIMEOUT),
            *intercepted.unary_stream(method("MetadataStream"))(
                b"", timeout=TIMEOUT, metadata=call_metadata
            ),
            intercepted.stream_unary(method("Count"))(
                iter([b"a"]), timeout=TIMEOUT, metadata=call_metadata
            ),
            *intercepted.stream_stream(method("Pipe"))(
                iter([b"a"]), timeout=TIMEOUT, metadata=call_metadata
            ),
        ]
    expected = b"added='yes'" if call_metadata is None else b"added='yes';given='1'"
    assert responses == [expected] * 4 + [b"1", b"a"]
    assert len(seen) == 6
    for metadata in seen:
        assert ("added", "yes") in metadata


# ---------------------------------------------------------------------- other call-site checks


def test_call_site_argument_errors(grpc: ModuleType) -> None:
    with serving(grpc) as channel:
        unary = channel.unary_unary(method("Echo"))
        with pytest.raises(AttributeError):
            unary(b"x", timeout=TIMEOUT, credentials=42)
        with pytest.raises(KeyError):
            unary(b"x", timeout=TIMEOUT, compression=42)
        with pytest.raises(TypeError):
            unary(b"x", timeout="1")
        # Method names may be bytes.
        assert channel.unary_unary(method("Echo").encode())(b"x", timeout=TIMEOUT) == b"x"
    with pytest.raises(ValueError, match="closed channel"):
        unary(b"x", timeout=TIMEOUT)


def test_call_credentials_on_an_insecure_channel(grpc: ModuleType) -> None:
    token = grpc.access_token_call_credentials("token")
    with serving(grpc) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            channel.unary_unary(method("Echo"))(b"x", timeout=TIMEOUT, credentials=token)
        future = channel.stream_unary(method("Count")).future(
            iter([b"a"]), timeout=TIMEOUT, credentials=token
        )
        failed = future.exception(timeout=TIMEOUT)
    for error in (raised.value, failed):
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        assert error.details() == (
            "Established channel does not have a sufficient security level to transfer call "
            "credential."
        )


# ---------------------------------------------------------------------- (de)serialization


def _broken(value: Any) -> Any:
    raise ValueError("cannot (de)serialize this")


@pytest.mark.parametrize("how", ["unary_unary", "unary_stream", "future", "stream_unary"])
def test_a_serializer_that_raises_ends_the_call_internal(grpc: ModuleType, how: str) -> None:
    with serving(grpc) as channel:
        calls = {
            "unary_unary": lambda: channel.unary_unary(method("Echo"), _broken)(
                b"x", timeout=TIMEOUT
            ),
            "unary_stream": lambda: list(
                channel.unary_stream(method("MetadataStream"), _broken)(b"x", timeout=TIMEOUT)
            ),
            "future": lambda: (
                channel.unary_unary(method("Echo"), _broken)
                .future(b"x", timeout=TIMEOUT)
                .result(timeout=TIMEOUT)
            ),
            "stream_unary": lambda: channel.stream_unary(method("Count"), _broken)(
                iter([b"a"]), timeout=TIMEOUT
            ),
        }
        with pytest.raises(grpc.RpcError) as raised:
            calls[how]()
    assert raised.value.code() is grpc.StatusCode.INTERNAL
    assert raised.value.details() == "Exception serializing request!"


def test_a_deserializer_that_raises_ends_the_call_internal(grpc: ModuleType) -> None:
    with serving(grpc) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            channel.unary_unary(method("Echo"), None, _broken)(b"x", timeout=TIMEOUT)
    assert raised.value.code() is grpc.StatusCode.INTERNAL
    assert raised.value.details() == "Exception deserializing response!"


def test_requests_that_are_not_bytes(grpc: ModuleType) -> None:
    with serving(grpc) as channel:
        # A unary request: TypeError at the call site (also from a serializer's result).
        with pytest.raises(TypeError):
            channel.unary_unary(method("Echo"))("text", timeout=TIMEOUT)
        with pytest.raises(TypeError):
            channel.unary_unary(method("Echo"), str)(b"x", timeout=TIMEOUT)
        with pytest.raises(TypeError):
            channel.unary_stream(method("MetadataStream"))("text", timeout=TIMEOUT)
        # (Streamed requests that are not bytes: grpcio raises KeyError(None) out of the call, or
        # aborts the process; asgi_grpc ends the call UNKNOWN. Not compared.)
        # Serializers run per message, in both directions.
        echo = channel.unary_unary(method("Echo"), str.encode, bytes.decode)
        assert echo("text", timeout=TIMEOUT) == "text"
        count = channel.stream_unary(method("Count"), str.encode, bytes.decode)
        assert count(iter(["a", "b"]), timeout=TIMEOUT) == "2"


@pytest.mark.parametrize("requests", [iter(["text"]), ["text"]], ids=["iterator", "list"])
def test_streamed_requests_that_are_not_bytes_asgi_grpc(requests: Any) -> None:
    """asgi_grpc only (grpcio raises KeyError(None) or aborts): the call ends UNKNOWN."""
    import asgi_grpc

    with serving(asgi_grpc) as channel:
        with pytest.raises(asgi_grpc.RpcError) as raised:
            channel.stream_unary(method("Count"))(requests, timeout=TIMEOUT)
        assert raised.value.code() is asgi_grpc.StatusCode.UNKNOWN
        assert raised.value.details() == "Exception iterating requests!"
        # Lists of bytes are taken as they are (grpcio only takes iterators).
        assert channel.stream_unary(method("Count"))([b"a", b"b"], timeout=TIMEOUT) == b"2"
