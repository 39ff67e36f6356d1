"""The server reads its sockets through ``SocketInput`` (server/_hypercorn_tcp.py), not a
StreamReader: on every transport, for asgi_grpc's server and for Hypercorn's own worker, with the
bytes that arrived before it took over, the end of input, and the transport paused while the
connection does not read (and resumed after)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import grpc
import hypercorn.asyncio.run
import pytest
from hypercorn.asyncio.tcp_server import TCPServer

from asgi_grpc.server import GrpcApp, _hypercorn_h2, _hypercorn_install, _hypercorn_tcp
from asgi_grpc.server._hypercorn_tcp import HIGH_WATER, LOW_WATER, GrpcTCPServer, SocketInput
from asgi_grpc.testing import serve
from tests.server.conftest import TRANSPORTS
from tests.server.servicer import AsyncEcho, pb2, pb2_grpc

MiB = 1024 * 1024


@pytest.fixture
def taken_over(monkeypatch: pytest.MonkeyPatch) -> list[SocketInput | None]:
    """What each connection's take-over returned (None: read through the StreamReader)."""
    results: list[SocketInput | None] = []
    stock = _hypercorn_tcp.take_over

    async def recording(reader: Any, writer: Any) -> SocketInput | None:
        source = await stock(reader, writer)
        results.append(source)
        return source

    monkeypatch.setattr(_hypercorn_tcp, "take_over", recording)
    return results


def requests(n: int, payload: bytes) -> Any:
    async def gen() -> Any:
        for i in range(n):
            yield pb2.EchoRequest(message=str(i), payload=payload)

    return gen()


async def exchange(channel: grpc.aio.Channel) -> None:
    """Large and small messages both ways, every cardinality."""
    stub = pb2_grpc.EchoStub(channel)
    payload = bytes(range(256)) * (4 * 1024 + 3)  # 1 MiB and change, not one repeated byte
    reply = await stub.Unary(pb2.EchoRequest(message="big", payload=payload))
    assert reply.payload == payload
    reply = await stub.Unary(pb2.EchoRequest(message="small", payload=b"x"))
    assert reply.payload == b"x"
    reply = await stub.ClientStream(requests(20, payload[: 64 * 1024 + 1]))
    assert reply.index == 20
    messages = [r.message async for r in stub.BidiStream(requests(50, b"y" * 100))]
    assert messages == [str(i) for i in range(50)]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_transport_is_read_through_socket_input(
    start_server: Any, transport: str, taken_over: list[SocketInput | None]
) -> None:
    async with start_server(transport=transport) as endpoint, endpoint.aio_channel() as channel:
        await exchange(channel)
    assert taken_over
    assert all(isinstance(source, SocketInput) for source in taken_over)


async def test_hypercorns_own_worker_reads_through_socket_input(
    taken_over: list[SocketInput | None],
) -> None:
    # Hypercorn's worker (the hypercorn CLI, asgi-grpc serve, asgi_grpc.testing.serve) makes
    # its TCPServer by the name install() replaces.
    app = GrpcApp()
    pb2_grpc.add_EchoServicer_to_server(AsyncEcho(), app)
    assert hypercorn.asyncio.run.TCPServer is GrpcTCPServer  # type: ignore[attr-defined]
    async with serve(app) as server, grpc.aio.insecure_channel(server.target) as channel:
        await exchange(channel)
    assert taken_over
    assert all(isinstance(source, SocketInput) for source in taken_over)


def test_install_refuses_a_tcp_server_it_does_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    # install() replaces Hypercorn's TCPServer and relies on its run/_read_data/reader/writer:
    # a Hypercorn that changed them (or someone else's replacement) is refused, loudly.
    class Elsewhere(TCPServer):
        pass

    install = _hypercorn_install
    monkeypatch.setattr(install._wrapper_module, "H2Protocol", install.H2Protocol)
    monkeypatch.setattr(_hypercorn_install._run_module, "TCPServer", Elsewhere)
    with pytest.raises(RuntimeError, match="TCPServer"):
        _hypercorn_install.install()

    class Renamed:
        def __init__(self, app: Any, loop: Any, config: Any, context: Any, state: Any) -> None:
            pass

        async def run(self) -> None:
            pass

    assert _hypercorn_install._reads_as_expected(TCPServer)
    assert not _hypercorn_install._reads_as_expected(Renamed)
    monkeypatch.setattr(_hypercorn_install, "TCPServer", Renamed)
    monkeypatch.setattr(_hypercorn_install._run_module, "TCPServer", Renamed)
    with pytest.raises(RuntimeError, match="TCPServer"):
        _hypercorn_install.install()


# -- take_over on a real socket, without Hypercorn ------------------------------------------------


@contextlib.asynccontextmanager
async def connection(
    before: bytes = b"",
) -> AsyncIterator[tuple[SocketInput, socket.socket, asyncio.StreamWriter]]:
    """A SocketInput on the server end of a loopback connection whose client (a blocking
    socket) has sent ``before`` ahead of the take-over."""
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0, limit=LOW_WATER)
    port = server.sockets[0].getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    try:
        client.sendall(before)
        reader, writer = await asyncio.wait_for(accepted.get(), 10)
        if before:
            # Until the StreamReader holds it (its repr counts the bytes it holds).
            for _ in range(1000):
                if f"{len(before)} bytes" in repr(reader):
                    break
                await asyncio.sleep(0.01)
            assert f"{len(before)} bytes" in repr(reader)
        source = await _hypercorn_tcp.take_over(reader, writer)
        assert source is not None
        yield source, client, writer
    finally:
        client.close()
        writer.close()
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


async def read_exactly(source: SocketInput, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        data = await asyncio.wait_for(source.read(), 10)
        assert data, "end of input too early"
        assert type(data) is bytes
        got += data
    return bytes(got)


async def test_bytes_received_before_the_take_over_come_first() -> None:
    async with connection(b"early bytes;") as (source, client, _writer):
        client.sendall(b"later bytes")
        assert await read_exactly(source, 23) == b"early bytes;later bytes"
        client.shutdown(socket.SHUT_WR)
        assert await asyncio.wait_for(source.read(), 10) == b""


async def test_the_transport_pauses_while_nobody_reads_and_resumes() -> None:
    # Far more than loopback's socket buffers hold (several MiB with autotuning).
    sent = bytes(range(256)) * (256 * 1024)  # 64 MiB
    async with connection() as (source, client, writer):
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        sending = asyncio.ensure_future(loop.sock_sendall(client, sent))
        transport: Any = writer.transport
        for _ in range(1000):  # until the buffer passes the high-water mark
            await asyncio.sleep(0.01)
            if not transport.is_reading():
                break
        assert not transport.is_reading()
        await asyncio.sleep(0.2)  # nobody reads: nothing more is taken from the socket
        assert not transport.is_reading()
        assert not sending.done()  # the client is held back by TCP
        # What the connection holds is bounded by the high-water mark plus one read.
        assert HIGH_WATER < source._size <= HIGH_WATER + 256 * 1024
        # Reading takes it down and the transport reads again; every byte arrives, in order.
        received = hashlib.sha256()
        size = 0
        while size < len(sent):
            data = await asyncio.wait_for(source.read(), 10)
            assert data
            received.update(data)
            size += len(data)
        assert size == len(sent)
        assert received.digest() == hashlib.sha256(sent).digest()
        assert transport.is_reading()
        await asyncio.wait_for(sending, 10)


async def test_a_read_that_continues_a_large_frame_goes_to_h2_whole(
    start_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A large read goes to h2 64 KiB at a time (so a flood of tiny frames is noticed soon:
    # tests/hostile/test_server_flood_fairness.py), except the bytes that only continue a large
    # DATA frame being gathered, which hide no frames: those go in one piece.
    handed: list[int] = []
    stock = _hypercorn_h2.GrpcH2Connection.receive_data

    def recording(self: Any, data: Any) -> Any:
        handed.append(len(data))
        return stock(self, data)

    monkeypatch.setattr(_hypercorn_h2.GrpcH2Connection, "receive_data", recording)
    async with start_server() as endpoint, endpoint.aio_channel() as channel:
        stub = pb2_grpc.EchoStub(channel)
        payload = b"p" * (3 * MiB)
        reply = await stub.Unary(pb2.EchoRequest(payload=payload), timeout=30)
        assert reply.payload == payload
    assert sum(handed) > 3 * MiB
    assert max(handed) > 64 * 1024
