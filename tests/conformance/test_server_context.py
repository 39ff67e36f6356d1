"""ServicerContext as grpcio has it (issue 14 items 14, 18, 24, 26): each scenario runs against
grpcio's server and client (the oracle) and against asgi_grpc's, asserting one outcome.

What a handler sees inside the call (an exception type, a return value) is recorded by the
handler and asserted by the test after the call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from types import ModuleType
from typing import Any

import pytest
from cryptography import x509

from tests.conformance.conftest import (
    generic_handler,
    method,
    unary_stream,
    unary_unary,
)
from tests.conftest import TLS

TYPE_ERROR_DETAILS = (
    "Unexpected <class 'TypeError'>: Invalid trailing metadata type, expected "
    "Tuple[Tuple[str, Union[str, bytes]]...]: 42"
)
INSECURE = {"security_level": [b"TSI_SECURITY_NONE"], "transport_security_type": [b"insecure"]}


@asynccontextmanager
async def aio_server(
    grpc: ModuleType,
    handlers: Mapping[str, Any],
    *,
    options: list[tuple[str, Any]] | None = None,
    credentials: Any = None,
) -> AsyncIterator[str]:
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers([generic_handler(grpc, handlers)])
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield f"localhost:{port}"
    finally:
        await server.stop(None)


@contextmanager
def blocking_server(
    grpc: ModuleType, handlers: Mapping[str, Any], *, options: list[tuple[str, Any]] | None = None
) -> Iterator[str]:
    with ThreadPoolExecutor(4) as pool:
        server = grpc.server(pool, options=options)
        server.add_generic_rpc_handlers([generic_handler(grpc, handlers)])
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            yield f"127.0.0.1:{port}"
        finally:
            server.stop(None).wait()


# ---------------------------------------------------------------------- item 14


@pytest.mark.parametrize(
    "bad",
    [42, None, "abc", {"k": "v"}, (("k",),), [("k", "v", "x")], (("k", 1),), ((b"k", "v"),)],
    ids=repr,
)
async def test_set_trailing_metadata_refuses_what_is_not_pairs(grpc: ModuleType, bad: Any) -> None:
    seen: list[str] = []

    async def handler(request: bytes, context: Any) -> bytes:
        try:
            context.set_trailing_metadata(bad)
        except Exception as exc:
            seen.append(type(exc).__name__)
        return b"ok"

    async with (
        aio_server(grpc, {"M": unary_unary(grpc, handler)}) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        assert await channel.unary_unary(method("M"))(b"") == b"ok"
    assert seen == ["TypeError"]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: (("k", "v"),), [("k", "v")]),
        (lambda: [("k", "v")], [("k", "v")]),
        (lambda: (("k-bin", b"\x00"),), [("k-bin", b"\x00")]),
        (lambda: (), []),
    ],
    ids=["tuple", "list", "binary", "empty"],
)
async def test_set_trailing_metadata_takes_pairs(
    grpc: ModuleType, make: Any, expected: list[tuple[str, Any]]
) -> None:
    async def handler(request: bytes, context: Any) -> bytes:
        context.set_trailing_metadata(make())
        return b"ok"

    async with (
        aio_server(grpc, {"M": unary_unary(grpc, handler)}) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        call = channel.unary_unary(method("M"))(b"")
        assert await call == b"ok"
        trailing = [(key, value) for key, value in await call.trailing_metadata()]
    assert [pair for pair in trailing if pair[0].startswith("k")] == expected


async def test_uncaught_trailing_metadata_type_error_ends_unknown(grpc: ModuleType) -> None:
    async def handler(request: bytes, context: Any) -> bytes:
        context.set_trailing_metadata(42)
        return b"ok"

    async with (
        aio_server(grpc, {"M": unary_unary(grpc, handler)}) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        with pytest.raises(grpc.RpcError) as caught:
            await channel.unary_unary(method("M"))(b"")
    assert caught.value.code() == grpc.StatusCode.UNKNOWN
    assert caught.value.details() == TYPE_ERROR_DETAILS


# ---------------------------------------------------------------------- item 18


@pytest.mark.parametrize(("algorithm", "enabled"), [("Gzip", True), ("Deflate", False)])
async def test_compression_enabled_algorithms_bitset(
    grpc: ModuleType, algorithm: str, enabled: bool
) -> None:
    """Bit N enables grpc.Compression(N): 0b101 = identity and gzip, not deflate."""

    async def handler(request: bytes, context: Any) -> bytes:
        return request

    options = [("grpc.compression_enabled_algorithms_bitset", 0b101)]
    async with (
        aio_server(grpc, {"M": unary_unary(grpc, handler)}, options=options) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        call = channel.unary_unary(method("M"))(
            b"x" * 100, compression=getattr(grpc.Compression, algorithm)
        )
        if enabled:
            assert await call == b"x" * 100
            return
        with pytest.raises(grpc.RpcError) as caught:
            await call
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert caught.value.details() == "Compression algorithm 'deflate' is disabled."


async def test_aio_set_compression_after_first_message_raises(grpc: ModuleType) -> None:
    seen: list[tuple[str, str]] = []

    async def handler(request: bytes, context: Any) -> AsyncIterator[bytes]:
        yield b"a"
        try:
            context.set_compression(grpc.Compression.Gzip)
        except Exception as exc:
            seen.append((type(exc).__name__, str(exc)))
        yield b"b"

    async with (
        aio_server(grpc, {"M": unary_stream(grpc, handler)}) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        assert [m async for m in channel.unary_stream(method("M"))(b"")] == [b"a", b"b"]
    assert seen == [
        ("RuntimeError", "Compression setting must be specified before sending initial metadata")
    ]


def test_blocking_set_compression_after_first_message_is_accepted(grpc: ModuleType) -> None:
    seen: list[str] = []

    def handler(request: bytes, context: Any) -> Iterator[bytes]:
        yield b"a"
        try:
            context.set_compression(grpc.Compression.Gzip)
            seen.append("ok")
        except Exception as exc:
            seen.append(type(exc).__name__)
        yield b"b"

    with (
        blocking_server(grpc, {"M": unary_stream(grpc, handler)}) as target,
        grpc.insecure_channel(target) as channel,
    ):
        assert list(channel.unary_stream(method("M"))(b"")) == [b"a", b"b"]
    assert seen == ["ok"]


def test_blocking_compression_bitset(grpc: ModuleType) -> None:
    def handler(request: bytes, context: Any) -> bytes:
        return request

    options = [("grpc.compression_enabled_algorithms_bitset", 0b101)]
    with (
        blocking_server(grpc, {"M": unary_unary(grpc, handler)}, options=options) as target,
        grpc.insecure_channel(target) as channel,
    ):
        call = channel.unary_unary(method("M"))
        assert call(b"x", compression=grpc.Compression.Gzip) == b"x"
        with pytest.raises(grpc.RpcError) as caught:
            call(b"x", compression=grpc.Compression.Deflate)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


# ---------------------------------------------------------------------- item 24


async def test_aio_abort_with_a_plain_int(grpc: ModuleType) -> None:
    """grpc.aio takes the int as the code's value (3: INVALID_ARGUMENT)."""

    async def handler(request: bytes, context: Any) -> bytes:
        await context.abort(3, "plain int")
        raise AssertionError("abort() returned")

    async with (
        aio_server(grpc, {"M": unary_unary(grpc, handler)}) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        with pytest.raises(grpc.RpcError) as caught:
            await channel.unary_unary(method("M"))(b"")
    assert (caught.value.code(), caught.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "plain int",
    )


def test_blocking_abort_with_a_plain_int_ends_unknown(grpc: ModuleType) -> None:
    """grpc's blocking server knows only StatusCode members: an int ends the call UNKNOWN."""
    seen: list[bool] = []

    def handler(request: bytes, context: Any) -> bytes:
        try:
            context.abort(3, "plain int")
        except Exception:
            seen.append(True)
            raise
        raise AssertionError("abort() returned")

    with (
        blocking_server(grpc, {"M": unary_unary(grpc, handler)}) as target,
        grpc.insecure_channel(target) as channel,
    ):
        with pytest.raises(grpc.RpcError) as caught:
            channel.unary_unary(method("M"))(b"")
    assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.UNKNOWN, "plain int")
    assert seen == [True]


def test_blocking_abort_with_ok_ends_unknown_without_details(
    grpc: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    """grpc's blocking server fails a call aborted with OK: UNKNOWN, empty details, an error log."""

    def handler(request: bytes, context: Any) -> bytes:
        context.abort(grpc.StatusCode.OK, "not really ok")
        raise AssertionError("abort() returned")

    with (
        caplog.at_level("ERROR"),
        blocking_server(grpc, {"M": unary_unary(grpc, handler)}) as target,
        grpc.insecure_channel(target) as channel,
    ):
        with pytest.raises(grpc.RpcError) as caught:
            channel.unary_unary(method("M"))(b"")
    assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.UNKNOWN, "")
    assert any("StatusCode.OK" in record.getMessage() for record in caplog.records)


async def test_aio_details_is_the_str_set(grpc: ModuleType) -> None:
    seen: list[Any] = []

    async def handler(request: bytes, context: Any) -> bytes:
        seen.append(context.details())
        context.set_details("some details")
        seen.append(context.details())
        return b"ok"

    async with (
        aio_server(grpc, {"M": unary_unary(grpc, handler)}) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        assert await channel.unary_unary(method("M"))(b"") == b"ok"
    assert seen == ["", "some details"]


def test_blocking_details_is_bytes(grpc: ModuleType) -> None:
    seen: list[Any] = []

    def handler(request: bytes, context: Any) -> bytes:
        seen.append(context.details())
        context.set_details("some détails")
        seen.append(context.details())
        return b"ok"

    with (
        blocking_server(grpc, {"M": unary_unary(grpc, handler)}) as target,
        grpc.insecure_channel(target) as channel,
    ):
        assert channel.unary_unary(method("M"))(b"") == b"ok"
    assert seen == [None, "some détails".encode()]


# ---------------------------------------------------------------------- item 26


async def test_aio_auth_context_of_an_insecure_call(grpc: ModuleType) -> None:
    seen: list[Any] = []

    async def handler(request: bytes, context: Any) -> bytes:
        seen.append((context.auth_context(), context.peer_identities()))
        seen.append(context.peer_identity_key())
        return b"ok"

    async with (
        aio_server(grpc, {"M": unary_unary(grpc, handler)}) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        assert await channel.unary_unary(method("M"))(b"") == b"ok"
    assert seen == [(INSECURE, None), None]


def test_blocking_auth_context_of_an_insecure_call(grpc: ModuleType) -> None:
    seen: list[Any] = []

    def handler(request: bytes, context: Any) -> bytes:
        seen.append(context.auth_context())
        return b"ok"

    with (
        blocking_server(grpc, {"M": unary_unary(grpc, handler)}) as target,
        grpc.insecure_channel(target) as channel,
    ):
        assert channel.unary_unary(method("M"))(b"") == b"ok"
    assert seen == [INSECURE]


# grpcio's keys that both give, with the same values. grpcio also gives
# ssl_requested_server_name and ssl_negotiated_key_exchange_group, which Python's ssl module does
# not expose on the server side (the SNI only to an sni_callback; the group from Python 3.13).
SHARED_TLS_KEYS = {
    "transport_security_type",
    "security_level",
    "ssl_session_reused",
    "ssl_tls_version",
    "x509_subject",
    "x509_common_name",
    "x509_subject_alternative_name",
    "x509_pem_cert",
    "peer_dns",
}


@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "mtls"])
async def test_auth_context_under_tls(grpc: ModuleType, tls: TLS, mutual: bool) -> None:
    import grpc as grpcio  # the client: grpcio's in both runs, so the server is what differs

    seen: list[Any] = []

    async def handler(request: bytes, context: Any) -> bytes:
        auth = context.auth_context()
        seen.append({key: auth.get(key) for key in SHARED_TLS_KEYS if key in auth})
        seen.append((context.peer_identity_key(), context.peer_identities()))
        return b"ok"

    credentials = grpc.ssl_server_credentials(
        [(tls.server_key, tls.server_chain)],
        root_certificates=tls.ca_pem if mutual else None,
        require_client_auth=mutual,
    )
    channel_credentials = grpcio.ssl_channel_credentials(
        root_certificates=tls.ca_pem,
        private_key=tls.client_key if mutual else None,
        certificate_chain=tls.client_chain if mutual else None,
    )
    async with aio_server(
        grpc, {"M": unary_unary(grpc, handler)}, credentials=credentials
    ) as target:
        async with grpcio.aio.secure_channel(target, channel_credentials) as channel:
            assert await channel.unary_unary(method("M"))(b"") == b"ok"
    auth, identity = seen
    expected = {
        "transport_security_type": [b"ssl"],
        "security_level": [b"TSI_PRIVACY_AND_INTEGRITY"],
        "ssl_session_reused": [b"false"],
        "ssl_tls_version": [b"TLSv1.3"],
    }
    if not mutual:
        assert auth == expected
        assert identity == (None, None)
        return
    client = x509.load_pem_x509_certificate(tls.client_chain)
    assert auth == {
        **expected,
        "x509_subject": [client.subject.rfc4514_string().encode()],
        "x509_common_name": [b""],  # the test certificate has none
        "x509_subject_alternative_name": [b"client.example.com"],
        "peer_dns": [b"client.example.com"],
        "x509_pem_cert": [tls.client_chain],
    }
    assert identity == ("x509_subject_alternative_name", [b"client.example.com"])
