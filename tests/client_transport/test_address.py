"""Target strings to addresses (sans-IO), and a real IPv6 connection."""

from __future__ import annotations

import pytest

from asgi_grpc._core import StatusCode
from asgi_grpc.client._address import Target, TCPAddress, UnixAddress, parse_target
from asgi_grpc.client._pool import ConnectionPool

from .support import pb2, start_echo_server, unary


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("localhost:50051", Target((TCPAddress("localhost", 50051),), "localhost:50051")),
        ("localhost", Target((TCPAddress("localhost", 443),), "localhost")),
        ("dns:example.com:80", Target((TCPAddress("example.com", 80),), "example.com:80")),
        ("dns:///example.com:80", Target((TCPAddress("example.com", 80),), "example.com:80")),
        ("dns://8.8.8.8/example.com", Target((TCPAddress("example.com", 443),), "example.com")),
        ("127.0.0.1:1", Target((TCPAddress("127.0.0.1", 1),), "127.0.0.1:1")),
        ("[::1]:50051", Target((TCPAddress("::1", 50051),), "[::1]:50051")),
        (
            "ipv4:10.0.0.1:5,10.0.0.2",
            Target((TCPAddress("10.0.0.1", 5), TCPAddress("10.0.0.2", 443)), "10.0.0.1:5"),
        ),
        (
            "ipv6:[::1]:5,::2",
            Target((TCPAddress("::1", 5), TCPAddress("::2", 443)), "[::1]:5"),
        ),
        ("unix:/tmp/a.sock", Target((UnixAddress("/tmp/a.sock"),), "localhost")),
        ("unix:rel.sock", Target((UnixAddress("rel.sock"),), "localhost")),
        ("unix:///tmp/a.sock", Target((UnixAddress("/tmp/a.sock"),), "localhost")),
        ("unix-abstract:name", Target((UnixAddress("\0name"),), "localhost")),
    ],
)
def test_parse_target(target: str, expected: Target) -> None:
    assert parse_target(target) == expected


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("", "missing host"),
        (":80", "missing host"),
        ("host:port", "invalid port"),
        ("host:-1", "out of range"),
        ("host:70000", "out of range"),
        ("[::1", "unterminated"),
        ("[::1]x", "junk"),
        ("unix:", "empty unix"),
        ("unix://rel", "absolute path"),
        ("ipv4:", "no addresses"),
    ],
)
def test_bad_targets(target: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_target(target)


def test_port_zero_parses() -> None:
    # As grpcio: the channel is built and connecting fails (UNAVAILABLE), not the parse.
    assert parse_target("[::]:0").addresses == (TCPAddress("::", 0),)


def test_address_str() -> None:
    assert str(TCPAddress("::1", 5)) == "[::1]:5"
    assert str(TCPAddress("h", 5)) == "h:5"
    assert str(UnixAddress("/x")) == "unix:/x"
    assert str(UnixAddress("\0x")) == "unix-abstract:x"


async def test_ipv6_loopback() -> None:
    server, port, _ = await start_echo_server("[::1]:0")
    target = parse_target(f"ipv6:[::1]:{port}")
    pool = ConnectionPool(target.addresses, authority=target.authority)
    try:
        status, (response,), _ = await unary(pool, pb2.EchoRequest(message="v6"))
        assert status.code is StatusCode.OK
        assert response.message == "v6"
    finally:
        await pool.aclose()
        await server.stop(None)


async def test_pool_tries_addresses_in_order() -> None:
    """The first address refuses connections; the second serves."""
    import socket

    server, port, _ = await start_echo_server("127.0.0.1:0")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = unused.getsockname()[1]
        pool = ConnectionPool(
            [TCPAddress("127.0.0.1", dead), TCPAddress("127.0.0.1", port)],
            authority=f"127.0.0.1:{port}",
        )
        try:
            status, _, _ = await unary(pool, pb2.EchoRequest(message="second"))
            assert status.code is StatusCode.OK
        finally:
            await pool.aclose()
            await server.stop(None)
