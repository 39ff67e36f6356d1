"""Channel-level behaviour: compression, call credentials, message limits, targets,
authority and TLS names, round robin, close, failures; against grpcio's server and ours."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme

import asgi_grpc
from asgi_grpc import aio

from .conftest import IMPLS, Peer, StartPeer, aio_server, api
from .servicer import ClientEcho, pb2, pb2_grpc
from .support import counting_proxy, server_process, silent_h2_server

StatusCode = asgi_grpc.StatusCode
Compression = asgi_grpc.Compression
MiB = 1024 * 1024


async def rpc_error(awaitable: Any) -> aio.AioRpcError:
    with pytest.raises(aio.AioRpcError) as info:
        await awaitable
    return info.value


# -- compression --------------------------------------------------------------------------------

RAW = 4 * 256 * 1024  # four requests of 256 KiB of zeros


def zeros() -> Any:
    return iter([pb2.EchoRequest(payload=bytes(256 * 1024))] * 4)


@pytest.mark.parametrize("where", ["channel", "option", "call"])
@pytest.mark.parametrize("algorithm", [Compression.Gzip, Compression.Deflate])
async def test_request_compression_on_the_wire(peer: Peer, algorithm: Any, where: str) -> None:
    assert peer.port is not None
    async with counting_proxy(peer.port) as (port, counts):
        target = f"127.0.0.1:{port}"
        if where == "channel":
            stub = peer.stub(target=target, compression=algorithm)
            call_kwargs: dict[str, Any] = {}
        elif where == "option":
            option = ("grpc.default_compression_algorithm", algorithm)
            stub = peer.stub(target=target, options=[option])
            call_kwargs = {}
        else:
            stub = peer.stub(target=target)
            call_kwargs = {"compression": algorithm}
        reply = await stub.ClientStream(zeros(), **call_kwargs)
        assert (reply.index, reply.message) == (4, str(RAW))  # the server decompressed it
        assert counts.upstream < RAW / 20
        reply = await stub.Unary(pb2.EchoRequest(payload=bytes(MiB)), **call_kwargs)
        assert reply.payload == bytes(MiB)
        assert counts.upstream < RAW / 10


async def test_uncompressed_by_default_and_per_call_override(peer: Peer) -> None:
    assert peer.port is not None
    async with counting_proxy(peer.port) as (port, counts):
        plain = peer.stub(target=f"127.0.0.1:{port}")
        assert (await plain.ClientStream(zeros())).index == 4
        assert counts.upstream > RAW
        # A gzip channel, with one call that asks for none.
        before = counts.upstream
        gzipped = peer.stub(target=f"127.0.0.1:{port}", compression=Compression.Gzip)
        await gzipped.ClientStream(zeros(), compression=Compression.NoCompression)
        assert counts.upstream - before > RAW


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("algorithm", [Compression.Gzip, Compression.Deflate])
async def test_compressed_responses(impl: str, algorithm: Any) -> None:
    """A server compressing its responses: the client decompresses them."""
    server = aio_server(impl, options=None) if False else None
    # grpc.aio.server(compression=...) and asgi_grpc.aio.server(compression=...)
    module = grpc.aio if impl == "grpcio" else asgi_grpc.aio
    server = module.server(compression=algorithm)
    pb2_grpc.add_EchoServicer_to_server(ClientEcho(), server)
    server_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with (
            counting_proxy(server_port) as (port, counts),
            aio.insecure_channel(f"127.0.0.1:{port}") as channel,
        ):
            stub = pb2_grpc.EchoStub(channel)
            call = stub.ServerStream(pb2.EchoRequest(count=4, payload=bytes(256 * 1024)))
            replies = [r async for r in call]
            assert [len(r.payload) for r in replies] == [256 * 1024] * 4
            assert counts.downstream < RAW / 20
            reply = await stub.BidiStream(iter([pb2.EchoRequest(payload=bytes(1000))] * 2)).read()
            assert reply.payload == bytes(1000)
    finally:
        await server.stop(None)


# -- call credentials ---------------------------------------------------------------------------


class Plugin:
    """A grpc.AuthMetadataPlugin that records the contexts it is called with."""

    def __init__(self, metadata: tuple[tuple[str, Any], ...]) -> None:
        self.metadata = metadata
        self.contexts: list[tuple[str, str]] = []

    def __call__(self, context: Any, callback: Any) -> None:
        self.contexts.append((context.service_url, context.method_name))
        callback(self.metadata, None)


@pytest.fixture(params=IMPLS)
async def tls_peer(request: pytest.FixtureRequest, start_peer: StartPeer) -> Peer:
    peer: Peer = await start_peer(request.param, "tls")
    return peer


async def test_metadata_call_credentials(tls_peer: Peer) -> None:
    plugin = Plugin((("authorization", "Custom abc"), ("x-extra-bin", b"\x01")))
    stub = tls_peer.stub()
    credentials = api("metadata_call_credentials")(plugin, name="test")
    reply = await stub.Unary(
        pb2.EchoRequest(message="metadata"), credentials=credentials, metadata=(("own", "1"),)
    )
    seen = dict(eval(reply.message))  # the servicer's repr of a list
    assert seen["authorization"] == "Custom abc"
    assert seen["x-extra-bin"] == b"\x01"
    assert seen["own"] == "1"
    # The plugin is told what grpcio tells it.
    assert tls_peer.port is not None
    assert plugin.contexts == [(f"https://localhost:{tls_peer.port}/asgi_grpc.test.Echo", "Unary")]
    oracle = Plugin((("authorization", "x"),))
    async with grpc.aio.secure_channel(
        tls_peer.target, grpc.ssl_channel_credentials(tls_peer.tls.ca_pem)
    ) as channel:
        await pb2_grpc.EchoStub(channel).Unary(
            pb2.EchoRequest(), credentials=grpc.metadata_call_credentials(oracle)
        )
    assert plugin.contexts == oracle.contexts
    # Streaming calls carry them too.
    call = stub.ServerStream(pb2.EchoRequest(count=1), credentials=credentials)
    assert [r.index async for r in call] == [0]
    assert len(plugin.contexts) == 2
    assert plugin.contexts[1][1] == "ServerStream"


async def test_access_token_and_composite_credentials(tls_peer: Peer) -> None:
    token = api("access_token_call_credentials")("tok123")
    stub = tls_peer.stub()
    reply = await stub.Unary(pb2.EchoRequest(message="metadata"), credentials=token)
    assert ("authorization", "Bearer tok123") in eval(reply.message)
    # Composed onto the channel: every call carries both, channel's first.
    extra = api("metadata_call_credentials")(Plugin((("x-more", "m"),)))
    channel_credentials = tls_peer.credentials(api("composite_call_credentials")(token, extra))
    stub = tls_peer.stub(credentials=channel_credentials)
    for _ in range(2):
        seen = eval((await stub.Unary(pb2.EchoRequest(message="metadata"))).message)
        assert ("authorization", "Bearer tok123") in seen
        assert ("x-more", "m") in seen


async def test_failing_plugin_is_unavailable_as_in_grpcio(tls_peer: Peer) -> None:
    def broken(context: Any, callback: Any) -> None:
        callback(None, ValueError("no token today"))

    stub = tls_peer.stub()
    error = await rpc_error(
        stub.Unary(pb2.EchoRequest(), credentials=api("metadata_call_credentials")(broken))
    )
    assert error.code() is StatusCode.UNAVAILABLE
    assert "no token today" in (error.details() or "")
    assert tls_peer.servicer.calls == 0  # never sent


async def test_call_credentials_on_insecure_channel_are_refused(peer: Peer) -> None:
    # As grpc.aio: UsageError when the call is made, before anything is sent.
    stub = peer.stub()
    token = api("access_token_call_credentials")("secret")
    with pytest.raises(aio.UsageError, match="only valid on secure channels"):
        stub.Unary(pb2.EchoRequest(), credentials=token)
    with pytest.raises(aio.UsageError, match="only valid on secure channels"):
        stub.ServerStream(pb2.EchoRequest(count=1), credentials=token)
    assert peer.servicer.calls == 0  # the secret never left


@pytest.mark.parametrize("impl", IMPLS)
async def test_mutual_tls_presents_the_client_certificate(impl: str, start_peer: StartPeer) -> None:
    peer = await start_peer(impl, "mtls")
    reply = await peer.stub().Unary(pb2.EchoRequest(message="auth"))
    _, identities, security = eval(reply.message)
    assert security == [b"ssl"]
    assert b"client.example.com" in (identities or [])
    # Without a client certificate the server refuses the connection.
    no_cert = api("ssl_channel_credentials")(root_certificates=peer.tls.ca_pem)
    error = await rpc_error(peer.stub(credentials=no_cert).Unary(pb2.EchoRequest(), timeout=5))
    assert error.code() is StatusCode.UNAVAILABLE


@pytest.mark.parametrize("impl", IMPLS)
async def test_untrusted_server_certificate_is_unavailable(
    impl: str, start_peer: StartPeer
) -> None:
    peer = await start_peer(impl, "tls")
    other_ca = trustme.CA()
    credentials = api("ssl_channel_credentials")(root_certificates=other_ca.cert_pem.bytes())
    loop = asyncio.get_running_loop()
    start = loop.time()
    error = await rpc_error(peer.stub(credentials=credentials).Unary(pb2.EchoRequest()))
    assert error.code() is StatusCode.UNAVAILABLE
    assert loop.time() - start < 5


# -- message size limits -------------------------------------------------------------------------


async def test_default_max_receive_is_4_mib(peer: Peer) -> None:
    stub = peer.stub()
    assert len((await stub.Unary(pb2.EchoRequest(message=f"size:{4 * MiB - 16}"))).payload) > 0
    error = await rpc_error(stub.Unary(pb2.EchoRequest(message=f"size:{4 * MiB + 1}")))
    assert error.code() is StatusCode.RESOURCE_EXHAUSTED
    # The channel is still fine.
    assert (await stub.Unary(pb2.EchoRequest(message="ok"))).message == "ok"


async def test_max_receive_message_length_option(peer: Peer) -> None:
    stub = peer.stub(options=[("grpc.max_receive_message_length", 1000)])
    assert len((await stub.Unary(pb2.EchoRequest(message="size:900"))).payload) == 900
    error = await rpc_error(stub.Unary(pb2.EchoRequest(message="size:2000")))
    assert error.code() is StatusCode.RESOURCE_EXHAUSTED
    call = stub.ServerStream(pb2.EchoRequest(count=3, payload=b"s" * 2000))
    error = await rpc_error(call.read())
    assert error.code() is StatusCode.RESOURCE_EXHAUSTED
    unlimited = peer.stub(options=[("grpc.max_receive_message_length", -1)])
    reply = await unlimited.Unary(pb2.EchoRequest(message=f"size:{5 * MiB}"))
    assert len(reply.payload) == 5 * MiB


async def test_max_send_message_length_option(peer: Peer) -> None:
    stub = peer.stub(options=[("grpc.max_send_message_length", 1000)])
    assert (await stub.Unary(pb2.EchoRequest(payload=b"a" * 900))).payload == b"a" * 900
    error = await rpc_error(stub.Unary(pb2.EchoRequest(payload=b"a" * 2000)))
    assert error.code() is StatusCode.RESOURCE_EXHAUSTED
    call = stub.ServerStream(pb2.EchoRequest(payload=b"a" * 2000, count=1))
    assert (await rpc_error(call.read())).code() is StatusCode.RESOURCE_EXHAUSTED
    # write(): the call fails with the status.
    bidi = stub.BidiStream()
    await bidi.write(pb2.EchoRequest(message="small"))
    assert (await bidi.read()).message == "small"
    error = await rpc_error(bidi.write(pb2.EchoRequest(payload=b"a" * 2000)))
    assert error.code() is StatusCode.RESOURCE_EXHAUSTED
    assert await bidi.code() is StatusCode.RESOURCE_EXHAUSTED
    # A request iterator: the call ends with it.
    big = iter([pb2.EchoRequest(), pb2.EchoRequest(payload=b"a" * 2000)])
    error = await rpc_error(stub.ClientStream(big))
    assert error.code() is StatusCode.RESOURCE_EXHAUSTED
    assert peer.servicer.calls == 1  # only the first unary call reached the server


# -- targets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
async def test_tcp_target_forms(impl: str, start_peer: StartPeer) -> None:
    peer = await start_peer(impl, "h2c")
    port = peer.port
    for target in (
        f"127.0.0.1:{port}",
        f"localhost:{port}",  # ::1 may come first and be refused: the next address is tried
        f"dns:///localhost:{port}",
        f"dns:localhost:{port}",
        f"ipv4:127.0.0.1:{port}",
        f"ipv4:127.0.0.1:1,127.0.0.1:{port}",  # pick_first: the first that connects
    ):
        stub = peer.stub(target=target)
        assert (await stub.Unary(pb2.EchoRequest(message=target), timeout=10)).message == target


@pytest.mark.parametrize("impl", IMPLS)
async def test_ipv6_targets(impl: str, start_peer: StartPeer) -> None:
    peer = await start_peer(impl, "h2c", address="[::1]:0")
    for target in (
        f"[::1]:{peer.port}",
        f"ipv6:[::1]:{peer.port}",
        f"ipv6:[::1]:1,[::1]:{peer.port}",
        f"dns:///[::1]:{peer.port}",
    ):
        stub = peer.stub(target=target)
        assert (await stub.Unary(pb2.EchoRequest(message=target), timeout=10)).message == target


def unix_socket_paths() -> tuple[Path, str]:
    """A socket path in a new temp directory, and the same path relative to the cwd."""
    path = Path(tempfile.mkdtemp(prefix="agcu_")) / "echo.sock"
    return path, os.path.relpath(path)


@pytest.mark.parametrize("impl", IMPLS)
async def test_unix_targets(impl: str) -> None:
    path, relative = unix_socket_paths()
    server = aio_server(impl)
    pb2_grpc.add_EchoServicer_to_server(ClientEcho(), server)
    server.add_insecure_port(f"unix:{path}")
    await server.start()
    try:
        for target in (f"unix:{relative}", f"unix:{path}", f"unix://{path}"):
            async with aio.insecure_channel(target) as channel:
                reply = await pb2_grpc.EchoStub(channel).Unary(
                    pb2.EchoRequest(message=target), timeout=10
                )
                assert reply.message == target
    finally:
        await server.stop(None)


# -- authority and TLS names ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def other_name() -> tuple[bytes, bytes, bytes]:
    """A CA and a certificate for example.test only: (CA, key, chain)."""
    ca = trustme.CA()
    cert = ca.issue_cert("example.test")
    return ca.cert_pem.bytes(), cert.private_key_pem.bytes(), cert.cert_chain_pems[0].bytes()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("option", "works"),
    [
        (None, False),
        (("grpc.ssl_target_name_override", "example.test"), True),
        (("grpc.default_authority", "example.test"), True),
        (("grpc.default_authority", "example.test:443"), True),
    ],
)
async def test_tls_name_from_options(
    impl: str, option: Any, works: bool, other_name: tuple[bytes, bytes, bytes]
) -> None:
    """The certificate is checked against the override or the default authority (grpcio
    accepts each of these cases, and refuses the bare IP address)."""
    ca, key, chain = other_name
    server = aio_server(impl)
    pb2_grpc.add_EchoServicer_to_server(ClientEcho(), server)
    credentials = (grpc if impl == "grpcio" else asgi_grpc).ssl_server_credentials([(key, chain)])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        options = [option] if option else []
        channel_credentials = api("ssl_channel_credentials")(root_certificates=ca)
        async with aio.secure_channel(f"127.0.0.1:{port}", channel_credentials, options) as ch:
            call = pb2_grpc.EchoStub(ch).Unary(pb2.EchoRequest(message="named"), timeout=5)
            if works:
                assert (await call).message == "named"
            else:
                assert (await rpc_error(call)).code() is StatusCode.UNAVAILABLE
    finally:
        await server.stop(None)


async def test_authority_and_user_agent_on_the_wire() -> None:
    async with silent_h2_server() as (port, recorded):
        options = [
            ("grpc.default_authority", "svc.example:8443"),
            ("grpc.primary_user_agent", "my-app/1.0"),
        ]
        async with aio.insecure_channel(f"127.0.0.1:{port}", options) as channel:
            call = pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(), timeout=0.5)
            await asyncio.wait_for(recorded.arrived.wait(), 5)
            await rpc_error(call)
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            recorded.arrived.clear()
            call = pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(), timeout=0.5)
            await asyncio.wait_for(recorded.arrived.wait(), 5)
            await rpc_error(call)
    first, second = recorded.requests
    assert first[b":authority"] == b"svc.example:8443"
    assert first[b"user-agent"].startswith(b"my-app/1.0 ")
    assert second[b":authority"] == f"127.0.0.1:{port}".encode()
    for headers in (first, second):
        assert headers[b":path"] == b"/asgi_grpc.test.Echo/Unary"
        assert headers[b"content-type"] == b"application/grpc"
        assert headers[b"te"] == b"trailers"
        assert headers[b":scheme"] == b"http"


# -- deadline enforced by the client alone -------------------------------------------------------


async def test_deadline_enforced_locally_when_the_server_ignores_it() -> None:
    async with silent_h2_server() as (port, recorded):
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb2_grpc.EchoStub(channel)
            loop = asyncio.get_running_loop()
            start = loop.time()
            calls = [
                stub.Unary(pb2.EchoRequest(), timeout=0.3),
                stub.ServerStream(pb2.EchoRequest(), timeout=0.3).read(),
                stub.ClientStream(iter([pb2.EchoRequest()]), timeout=0.3),
                stub.BidiStream(iter([pb2.EchoRequest()]), timeout=0.3).read(),
            ]
            for call in calls:
                assert (await rpc_error(call)).code() is StatusCode.DEADLINE_EXCEEDED
            assert loop.time() - start < 2
    assert all(r[b"grpc-timeout"] for r in recorded.requests)


# -- round robin ---------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "option",
    [
        ("grpc.lb_policy_name", "round_robin"),
        ("grpc.service_config", json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})),
        ("grpc.service_config", json.dumps({"loadBalancingPolicy": "round_robin"})),
        None,
    ],
    ids=["lb_policy_name", "loadBalancingConfig", "loadBalancingPolicy", "pick_first"],
)
async def test_round_robin_over_two_servers(impl: str, option: Any, start_peer: StartPeer) -> None:
    first = await start_peer(impl, "h2c")
    second = await start_peer(impl, "h2c")
    target = f"ipv4:127.0.0.1:{first.port},127.0.0.1:{second.port}"
    stub = first.stub(target=target, options=[option] if option else None)
    for i in range(20):
        assert (await stub.Unary(pb2.EchoRequest(message=str(i)))).message == str(i)
    # Streams too.
    for _ in range(4):
        assert [r.index async for r in stub.ServerStream(pb2.EchoRequest(count=1))] == [0]
    if option is None:  # pick_first: everything to the first address
        assert (first.servicer.calls, second.servicer.calls) == (20, 0)
    else:
        assert first.servicer.calls >= 5
        assert second.servicer.calls >= 5
        assert first.servicer.calls + second.servicer.calls == 20


# -- close ---------------------------------------------------------------------------------------


async def test_close_with_grace_lets_calls_finish_then_cancels(peer: Peer) -> None:
    channel = peer.channel()
    stub = pb2_grpc.EchoStub(channel)
    stuck = stub.Unary(pb2.EchoRequest(message="block"))
    await asyncio.wait_for(peer.servicer.started.wait(), 5)
    quick = stub.Unary(pb2.EchoRequest(message="quick", delay_ms=100))
    stream = stub.ServerStream(pb2.EchoRequest(count=3, delay_ms=50))

    async def consume() -> list[int] | BaseException:
        try:
            return [r.index async for r in stream]
        except (aio.AioRpcError, asyncio.CancelledError) as exc:
            return exc

    reader = asyncio.ensure_future(consume())
    await quick.wait_for_connection()  # in flight (calls created just before close: below)
    await stream.wait_for_connection()
    loop = asyncio.get_running_loop()
    start = loop.time()
    await channel.close(grace=1.0)
    elapsed = loop.time() - start
    assert 0.9 < elapsed < 3
    assert (await quick.code(), await quick.details()) == (StatusCode.OK, "")
    assert (await quick).message == "quick"
    assert await reader == [0, 1, 2]
    assert stuck.done()
    # As in grpc.aio: calls still running after the grace are cancelled locally.
    with pytest.raises(asyncio.CancelledError):
        await stuck
    assert stuck.cancelled()
    assert await stuck.code() is StatusCode.CANCELLED
    await asyncio.wait_for(peer.servicer.events.cancelled.wait(), 5)
    # A closed channel refuses new calls (grpc.aio: UsageError "Channel is closed.").
    with pytest.raises(aio.UsageError):
        await stub.Unary(pb2.EchoRequest())
    await channel.close()  # twice is fine


async def test_close_with_grace_returns_early_when_calls_end(peer: Peer) -> None:
    channel = peer.channel()
    # Created just before close(): grpc.aio still runs it within the grace.
    call = pb2_grpc.EchoStub(channel).Unary(pb2.EchoRequest(delay_ms=100))
    loop = asyncio.get_running_loop()
    start = loop.time()
    await channel.close(grace=10)
    assert loop.time() - start < 3
    assert await call.code() is StatusCode.OK


async def test_close_without_grace_cancels_at_once(peer: Peer) -> None:
    channel = peer.channel()
    stub = pb2_grpc.EchoStub(channel)
    calls = [
        stub.Unary(pb2.EchoRequest(message="block")),
        stub.ServerStream(pb2.EchoRequest(count=100, delay_ms=100)),
        stub.BidiStream(),
    ]
    await asyncio.wait_for(peer.servicer.started.wait(), 5)
    await asyncio.wait_for(channel.close(), 2)
    for call in calls:
        assert await asyncio.wait_for(call.code(), 2) is StatusCode.CANCELLED
    await asyncio.wait_for(peer.servicer.events.cancelled.wait(), 5)


async def test_async_context_manager(peer: Peer) -> None:
    async with aio.insecure_channel(peer.target) as channel:
        assert isinstance(channel, aio.Channel)
        stub = pb2_grpc.EchoStub(channel)
        assert (await stub.Unary(pb2.EchoRequest(message="in"))).message == "in"
        pending = stub.Unary(pb2.EchoRequest(message="block"))
        await asyncio.wait_for(peer.servicer.started.wait(), 5)
    assert await asyncio.wait_for(pending.code(), 2) is StatusCode.CANCELLED
    with pytest.raises(aio.UsageError):
        await stub.Unary(pb2.EchoRequest())


# -- failures ------------------------------------------------------------------------------------


async def test_unavailable_when_nothing_listens() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    targets = ["127.0.0.1:1", "ipv4:127.0.0.1:1,127.0.0.1:2", "unix:/nonexistent/agc.sock"]
    for target in targets:
        async with aio.insecure_channel(target) as channel:
            stub = pb2_grpc.EchoStub(channel)
            errors = [
                await rpc_error(stub.Unary(pb2.EchoRequest())),
                await rpc_error(stub.ServerStream(pb2.EchoRequest()).read()),
                await rpc_error(stub.ClientStream(iter([pb2.EchoRequest()]))),
                await rpc_error(stub.BidiStream().write(pb2.EchoRequest())),
                await rpc_error(stub.Unary(pb2.EchoRequest()).wait_for_connection()),
            ]
            assert {e.code() for e in errors} == {StatusCode.UNAVAILABLE}
            assert all(e.details() for e in errors)
            call = stub.Unary(pb2.EchoRequest())
            assert await call.code() is StatusCode.UNAVAILABLE
            assert call.done()
    assert loop.time() - start < 5


@pytest.mark.parametrize("impl", IMPLS)
async def test_server_dies_mid_call(impl: str) -> None:
    async with server_process(impl) as (port, process):
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb2_grpc.EchoStub(channel)
            assert (await stub.Unary(pb2.EchoRequest(message="up"))).message == "up"
            unary = stub.Unary(pb2.EchoRequest(message="block"))
            stream = stub.ServerStream(pb2.EchoRequest(count=1000, delay_ms=20))
            got = []
            async for reply in stream:
                got.append(reply.index)
                break
            bidi = stub.BidiStream()
            await bidi.write(pb2.EchoRequest(message="b"))
            assert (await bidi.read()).message == "b"
            process.kill()
            loop = asyncio.get_running_loop()
            start = loop.time()
            assert (await rpc_error(unary)).code() is StatusCode.UNAVAILABLE
            with pytest.raises(aio.AioRpcError) as info:
                async for reply in stream:
                    got.append(reply.index)
            assert info.value.code() is StatusCode.UNAVAILABLE
            assert got[0] == 0
            assert (await rpc_error(bidi.read())).code() is StatusCode.UNAVAILABLE
            assert loop.time() - start < 5
            # New calls fail fast too.
            error = await rpc_error(stub.Unary(pb2.EchoRequest(), timeout=5))
            assert error.code() is StatusCode.UNAVAILABLE


def test_init_and_shutdown_grpc_aio_are_harmless() -> None:
    aio.init_grpc_aio()
    aio.init_grpc_aio()
    aio.shutdown_grpc_aio()
    aio.shutdown_grpc_aio()


async def test_init_and_shutdown_grpc_aio_around_calls(peer: Peer) -> None:
    aio.init_grpc_aio()
    stub = peer.stub()
    assert (await stub.Unary(pb2.EchoRequest(message="a"))).message == "a"
    aio.shutdown_grpc_aio()
    assert (await stub.Unary(pb2.EchoRequest(message="b"))).message == "b"


@pytest.mark.parametrize("impl", IMPLS)
async def test_receive_limit_applies_after_decompression(impl: str) -> None:
    """A small compressed message that inflates past the limit is RESOURCE_EXHAUSTED."""
    module = grpc.aio if impl == "grpcio" else asgi_grpc.aio
    server = module.server(compression=Compression.Gzip)
    pb2_grpc.add_EchoServicer_to_server(ClientEcho(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        options = [("grpc.max_receive_message_length", 64 * 1024)]
        async with aio.insecure_channel(f"127.0.0.1:{port}", options) as channel:
            stub = pb2_grpc.EchoStub(channel)
            call = stub.ServerStream(pb2.EchoRequest(count=2, payload=bytes(MiB // 2)))
            assert (await rpc_error(call.read())).code() is StatusCode.RESOURCE_EXHAUSTED
            call = stub.ServerStream(pb2.EchoRequest(count=2, payload=bytes(1000)))
            assert [len(r.payload) async for r in call] == [1000, 1000]
    finally:
        await server.stop(None)


async def test_one_connection_for_many_concurrent_calls(peer: Peer) -> None:
    """Calls share one HTTP/2 connection while the server's MAX_CONCURRENT_STREAMS allows
    (grpcio names no limit; asgi_grpc's server names 100: the pool opens another connection
    past it rather than queueing)."""
    assert peer.port is not None
    async with counting_proxy(peer.port) as (port, counts):
        stub = peer.stub(target=f"127.0.0.1:{port}")
        replies = await asyncio.gather(
            *(stub.Unary(pb2.EchoRequest(message=str(i))) for i in range(80)),
            *(stub.ClientStream(iter([pb2.EchoRequest()] * 3)) for _ in range(15)),
        )
        assert [r.message for r in replies[:80]] == [str(i) for i in range(80)]
        assert counts.connections == 1
        if peer.impl == "grpcio":
            await asyncio.gather(*(stub.Unary(pb2.EchoRequest()) for i in range(500)))
            assert counts.connections == 1


@pytest.mark.parametrize("impl", IMPLS)
async def test_round_robin_over_every_address_a_name_resolves_to(
    impl: str, start_peer: StartPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a headless Kubernetes Service resolves to its pods: a name with two addresses. DNS with
    # several records cannot be made real here, so the loop's resolver answers for "pods.test";
    # the server (dual-stack) and the connections are real.
    peer = await start_peer(impl, "h2c", address="[::]:0")
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def resolve(host: Any, port: Any, **kwargs: Any) -> Any:
        if host != "pods.test":
            return await real(host, port, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
        ]

    monkeypatch.setattr(loop, "getaddrinfo", resolve)
    target = f"dns:///pods.test:{peer.port}"
    for option, families in ((("grpc.lb_policy_name", "round_robin"), 2), (None, 1)):
        stub = peer.stub(target=target, options=[option] if option else None)
        peers = {(await stub.Unary(pb2.EchoRequest(message="peer"))).message for _ in range(8)}
        assert len({p.split(":", 1)[0] for p in peers}) == families, peers
