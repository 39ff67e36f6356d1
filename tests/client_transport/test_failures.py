"""Connections that end: GOAWAY (graceful and refusing), resets, dead and silent peers."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import sys
import time
from pathlib import Path

import h2.events
import pytest
import trustme
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from asgi_grpc._core import StatusCode, frame
from asgi_grpc.client._address import TCPAddress
from asgi_grpc.client._connection import Connection, ConnectionSettings
from asgi_grpc.client._pool import ConnectionPool
from asgi_grpc.client._transport_errors import (
    ConnectError,
    ConnectionTerminated,
    StreamReset,
    TransportError,
)

from .conftest import TLS, Peer, client_ssl_context
from .support import UNARY, ScriptedConnection, headers, pb2, scripted_server, unary

ROOT = Path(__file__).resolve().parents[2]
BODY = frame(pb2.EchoRequest(message="x").SerializeToString())


def local_pool(port: int, **kwargs: object) -> ConnectionPool:
    return ConnectionPool([TCPAddress("127.0.0.1", port)], authority=f"127.0.0.1:{port}", **kwargs)  # type: ignore[arg-type]


# -- GOAWAY -----------------------------------------------------------------------------------


async def test_graceful_server_shutdown_lets_streams_finish(h2c_peer: Peer) -> None:
    """grpcio's stop(grace) sends GOAWAY; the call in flight still completes, the connection
    drains and closes, and later calls find no server."""
    pool = h2c_peer.pool()
    await unary(pool, pb2.EchoRequest(message="warm"))
    (connection,) = pool.connections
    h2c_peer.state.started.clear()
    slow = asyncio.ensure_future(unary(pool, pb2.EchoRequest(message="slow", delay_ms=600)))
    await asyncio.wait_for(h2c_peer.state.started.wait(), 5)
    stopping = asyncio.ensure_future(h2c_peer.server.stop(grace=5))
    for _ in range(200):
        if connection.draining:
            break
        await asyncio.sleep(0.01)
    assert connection.draining
    assert not connection.available
    status, (response,), _ = await asyncio.wait_for(slow, 5)
    assert status.code is StatusCode.OK
    assert response.message == "slow"
    await asyncio.wait_for(stopping, 10)
    assert connection.closed
    with pytest.raises(ConnectError) as info:
        await asyncio.wait_for(unary(pool, pb2.EchoRequest(message="late")), 10)
    assert info.value.status is StatusCode.UNAVAILABLE


async def test_goaway_refuses_streams_above_last_stream_id_and_pool_retries() -> None:
    """GOAWAY(last_stream_id=1) with streams 1 and 3 open: 1 completes on the old connection,
    3 fails as retryable and ``pool.request`` re-sends it on a new connection."""

    def script(conn: ScriptedConnection, event: h2.events.Event) -> None:
        if not isinstance(event, h2.events.StreamEnded):
            return
        if conn is connections[0] and event.stream_id == 3:
            # A GOAWAY written raw, so h2 (server side) keeps serving stream 1 after it.
            goaway = GoAwayFrame(0)
            goaway.last_stream_id = 1
            conn.flush()
            conn.writer.write(goaway.serialize())
            conn.respond_ok(1, BODY)
        elif conn is not connections[0]:
            conn.respond_ok(event.stream_id, BODY)  # type: ignore[arg-type]

    async with scripted_server(script) as (port, connections):
        pool = local_pool(port)
        try:
            first = asyncio.ensure_future(pool.request(UNARY, headers(), BODY))
            await asyncio.sleep(0.05)
            second = asyncio.ensure_future(pool.request(UNARY, headers(), BODY))
            streams = await asyncio.wait_for(asyncio.gather(first, second), 5)
            assert [s.stream_id for s in streams] == [1, 1]  # 3 was re-sent as 1 elsewhere
            assert streams[0].connection is not streams[1].connection
            for stream in streams:
                assert (b"grpc-status", b"0") in await stream.trailers()
                stream.close()
            assert len(connections) == 2
        finally:
            await pool.aclose()


async def test_goaway_refusal_is_a_retryable_error_on_open_stream() -> None:
    def script(conn: ScriptedConnection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            conn.h2.close_connection(error_code=ErrorCodes.NO_ERROR, last_stream_id=0)

    async with scripted_server(script) as (port, _):
        pool = local_pool(port)
        try:
            stream = await pool.open_stream(UNARY, headers(), body=BODY, end_stream=True)
            with pytest.raises(ConnectionTerminated) as info:
                await asyncio.wait_for(stream.headers(), 5)
            assert info.value.retryable
            assert info.value.status is StatusCode.UNAVAILABLE
        finally:
            await pool.aclose()


# -- RST_STREAM -------------------------------------------------------------------------------


async def test_refused_stream_is_retried() -> None:
    refused: list[int] = []

    def script(conn: ScriptedConnection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.StreamEnded):
            if not refused:
                refused.append(event.stream_id)  # type: ignore[arg-type]
                conn.h2.reset_stream(event.stream_id, ErrorCodes.REFUSED_STREAM)  # type: ignore[arg-type]
            else:
                conn.respond_ok(event.stream_id, BODY)  # type: ignore[arg-type]

    async with scripted_server(script) as (port, connections):
        pool = local_pool(port)
        try:
            stream = await asyncio.wait_for(pool.request(UNARY, headers(), BODY), 5)
            assert refused == [1]
            assert stream.stream_id == 3
            assert (b"grpc-status", b"0") in await stream.trailers()
            stream.close()
            assert len(connections) == 1
        finally:
            await pool.aclose()


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ErrorCodes.CANCEL, StatusCode.CANCELLED),
        (ErrorCodes.ENHANCE_YOUR_CALM, StatusCode.RESOURCE_EXHAUSTED),
        (ErrorCodes.INTERNAL_ERROR, StatusCode.INTERNAL),
        (ErrorCodes.INADEQUATE_SECURITY, StatusCode.PERMISSION_DENIED),
    ],
)
async def test_stream_reset_by_peer(code: ErrorCodes, status: StatusCode) -> None:
    def script(conn: ScriptedConnection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.StreamEnded):
            conn.h2.send_headers(event.stream_id, [(b":status", b"200")])  # type: ignore[arg-type]
            conn.h2.send_data(event.stream_id, b"partial")  # type: ignore[arg-type]
            conn.h2.reset_stream(event.stream_id, code)  # type: ignore[arg-type]

    async with scripted_server(script) as (port, _):
        pool = local_pool(port)
        try:
            stream = await pool.request(UNARY, headers(), BODY)
            with pytest.raises(StreamReset) as info:
                while await asyncio.wait_for(stream.read(), 5):
                    pass
            assert info.value.error_code == code
            assert info.value.status is status
            assert not info.value.retryable
            assert isinstance(info.value, TransportError)
            # The connection is fine for the next stream.
            assert pool.connections[0].available
            assert pool.connections[0].active_streams == 0
        finally:
            await pool.aclose()


async def test_peer_protocol_error_fails_streams_with_internal() -> None:
    def script(conn: ScriptedConnection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.StreamEnded):
            # DATA on stream 2, which was never opened: a connection error for the client.
            conn.writer.write(b"\x00\x00\x01\x00\x00\x00\x00\x00\x02x")

    async with scripted_server(script) as (port, _):
        pool = local_pool(port)
        try:
            with pytest.raises(ConnectionTerminated) as info:
                await asyncio.wait_for(pool.request(UNARY, headers(), BODY), 5)
            assert info.value.status is StatusCode.INTERNAL
            assert not info.value.retryable
        finally:
            await pool.aclose()


# -- dead, absent and silent peers -------------------------------------------------------------


async def test_killed_server_fails_calls_quickly() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.client_transport.echo_server_process",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        port = json.loads(line)["port"]
        pool = local_pool(port, settings=ConnectionSettings(connect_timeout=2))
        try:
            status, _, _ = await unary(pool, pb2.EchoRequest(message="alive"))
            assert status.code is StatusCode.OK
            slow = asyncio.ensure_future(unary(pool, pb2.EchoRequest(delay_ms=30_000)))
            await asyncio.sleep(0.2)
            process.send_signal(signal.SIGKILL)
            started = time.monotonic()
            with pytest.raises(ConnectionTerminated) as info:
                await asyncio.wait_for(slow, 5)
            assert time.monotonic() - started < 2
            assert info.value.status is StatusCode.UNAVAILABLE
            assert not pool.connections
            started = time.monotonic()
            with pytest.raises(ConnectError):
                await unary(pool, pb2.EchoRequest(message="dead"))
            assert time.monotonic() - started < 2
        finally:
            await pool.aclose()
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), 10)


async def test_nothing_listening_is_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        pool = local_pool(port)
        started = time.monotonic()
        with pytest.raises(ConnectError) as info:
            await pool.request(UNARY, headers(), BODY)
        assert time.monotonic() - started < 2
        assert info.value.retryable
        assert str(port) in str(info.value)
        await pool.aclose()


async def test_silent_peer_times_out_connecting() -> None:
    """A TCP peer that never sends its HTTP/2 SETTINGS: ConnectError after connect_timeout."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(ConnectError, match="timed out"):
            await Connection.connect(
                TCPAddress("127.0.0.1", port), settings=ConnectionSettings(connect_timeout=0.3)
            )
        assert time.monotonic() - started < 2
    finally:
        server.close()
        await server.wait_closed()


async def test_tls_untrusted_certificate_is_connect_error(tls: TLS) -> None:
    other_ca = trustme.CA()
    context = ssl.create_default_context(cadata=other_ca.cert_pem.bytes().decode())
    context.set_alpn_protocols(["h2"])
    credentials = __import__("grpc").ssl_server_credentials([(tls.server_key, tls.server_chain)])
    from .support import start_echo_server

    server, port, _ = await start_echo_server("127.0.0.1:0", credentials=credentials)
    try:
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await Connection.connect(TCPAddress("127.0.0.1", port), ssl_context=context)
        # The right CA works on the same server.
        connection = await Connection.connect(
            TCPAddress("127.0.0.1", port), ssl_context=client_ssl_context(tls)
        )
        connection.close()
    finally:
        await server.stop(None)


async def test_tls_without_h2_alpn_is_connect_error(tls: TLS) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(*_write_pems(tls))
    server_context.set_alpn_protocols(["http/1.1"])

    async def http11(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(http11, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectError, match="ALPN"):
            await Connection.connect(
                TCPAddress("127.0.0.1", port), ssl_context=client_ssl_context(tls)
            )
    finally:
        server.close()
        await server.wait_closed()


def _write_pems(tls: TLS) -> tuple[str, str]:
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="agt_tls_"))
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(tls.server_chain)
    key.write_bytes(tls.server_key)
    return str(cert), str(key)


# -- keepalive --------------------------------------------------------------------------------


async def test_keepalive_detects_a_silent_peer() -> None:
    """A peer that stops answering without closing its socket: the unanswered PING fails the
    connection (and the call on it) after keepalive_timeout."""

    def script(conn: ScriptedConnection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            conn.silent = True

    settings = ConnectionSettings(keepalive_time=0.1, keepalive_timeout=0.3)
    async with scripted_server(script) as (port, _):
        pool = local_pool(port, settings=settings)
        try:
            started = time.monotonic()
            with pytest.raises(ConnectionTerminated, match="keepalive"):
                await asyncio.wait_for(pool.request(UNARY, headers(), BODY), 5)
            assert time.monotonic() - started < 1.5
            assert not pool.connections
        finally:
            await pool.aclose()


async def test_keepalive_pings_an_answering_peer_without_harm() -> None:
    def script(conn: ScriptedConnection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.StreamEnded) and conn.pings >= 3:
            conn.respond_ok(event.stream_id, BODY)  # type: ignore[arg-type]

    async def kick(connections: list[ScriptedConnection]) -> None:
        # The script answers once three pings came in; a ping arrival re-runs it.
        while not connections or connections[0].pings < 3:
            await asyncio.sleep(0.05)

    # No limit on pings between our DATA frames (grpc's default of 2 would stop at two).
    settings = ConnectionSettings(
        keepalive_time=0.05, keepalive_timeout=1, max_pings_without_data=0
    )
    async with scripted_server(script) as (port, connections):
        pool = local_pool(port, settings=settings)
        try:
            opening = asyncio.ensure_future(pool.open_stream(UNARY, headers(), body=BODY))
            stream = await opening
            await asyncio.wait_for(kick(connections), 5)
            await stream.end()  # StreamEnded now, with >= 3 pings seen: the script answers
            assert (b"grpc-status", b"0") in await asyncio.wait_for(stream.trailers(), 5)
            stream.close()
            assert pool.connections
        finally:
            await pool.aclose()


def test_settings_from_grpc_options() -> None:
    settings = ConnectionSettings.from_options(
        {
            "grpc.keepalive_time_ms": 10_000,
            "grpc.keepalive_timeout_ms": 500,
            "grpc.keepalive_permit_without_calls": 1,
            "asgi_grpc.http2.stream_window_size": 1 << 20,
            "grpc.primary_user_agent": "ignored",
        }
    )
    assert settings.keepalive_time == 10
    assert settings.keepalive_timeout == 0.5
    assert settings.keepalive_without_calls
    assert settings.stream_window == 1 << 20
    assert (
        ConnectionSettings.from_options({"grpc.keepalive_time_ms": 2**31 - 1}).keepalive_time
        is None
    )
    with pytest.raises(ValueError, match="stream_window"):
        ConnectionSettings(stream_window=10)


async def test_peer_lowering_its_stream_limit_moves_new_streams_elsewhere() -> None:
    """SETTINGS_MAX_CONCURRENT_STREAMS=1 arrives with two streams open: the connection takes
    no new stream (the next goes on a new connection) until it is back under the limit."""
    import h2.settings

    def script(conn: ScriptedConnection, event: h2.events.Event) -> None:
        if not isinstance(event, h2.events.StreamEnded):
            return
        if conn is connections[0] and event.stream_id == 3:
            conn.h2.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1})
        elif conn is not connections[0]:
            conn.respond_ok(event.stream_id, BODY)  # type: ignore[arg-type]
            for stream_id in (1, 3):
                connections[0].respond_ok(stream_id, BODY)
            connections[0].flush()

    async with scripted_server(script) as (port, connections):
        pool = local_pool(port)
        try:
            first = await pool.open_stream(UNARY, headers(), body=BODY, end_stream=True)
            second = await pool.open_stream(UNARY, headers(), body=BODY, end_stream=True)
            old = first.connection
            for _ in range(100):
                if old.max_concurrent_streams == 1:
                    break
                await asyncio.sleep(0.01)
            assert not old.available
            third = await asyncio.wait_for(pool.request(UNARY, headers(), BODY), 5)
            assert third.connection is not old
            for stream in (first, second, third):
                assert (b"grpc-status", b"0") in await asyncio.wait_for(stream.trailers(), 5)
                stream.close()
            assert old.available  # back under its limit
        finally:
            await pool.aclose()
