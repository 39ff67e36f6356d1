"""grpc_config() and install(): what the server announces and sends, checked on the wire."""

from __future__ import annotations

import hypercorn.protocol
import hyperframe.frame
import pytest
from hypercorn.config import Config
from hypercorn.protocol.h2 import H2Protocol
from hyperframe.frame import DataFrame, HeadersFrame, SettingsFrame, WindowUpdateFrame

from asgi_grpc import _hyperframe
from asgi_grpc._hyperframe import raw_data_repr, stock_raw_data_repr
from asgi_grpc.server import _hypercorn
from asgi_grpc.server._hypercorn import READ_SIZE, GrpcH2Protocol, grpc_config
from asgi_grpc.server._hypercorn_install import install, is_installed

from .helpers import RawH2, echo_app, grpc_frame, serve

MiB = 1024 * 1024
INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE = 4, 5


def test_grpc_config_values() -> None:
    config = grpc_config(keep_alive_timeout=7.0)
    assert config.accesslog is None
    assert config.response_headers("h2") == []  # no date, no server header
    assert config.keep_alive_max_requests >= 2**62
    assert config.keep_alive_timeout == 7.0
    assert config.read_timeout is None
    assert config.alpn_protocols == ["h2", "http/1.1"]
    assert config.h2_max_inbound_frame_size == MiB
    with pytest.raises(TypeError, match="unknown Hypercorn setting"):
        grpc_config(no_such_setting=1)


def test_install_is_idempotent() -> None:
    before = hypercorn.protocol.H2Protocol  # type: ignore[attr-defined]
    try:
        hypercorn.protocol.H2Protocol = H2Protocol  # type: ignore[attr-defined]
        assert not is_installed()
        install()
        install()
        assert hypercorn.protocol.H2Protocol is GrpcH2Protocol  # type: ignore[attr-defined]
        assert is_installed()
    finally:
        hypercorn.protocol.H2Protocol = before  # type: ignore[attr-defined]


def test_install_reads_larger_socket_chunks() -> None:
    # install() sets Hypercorn's module-level read size; if Hypercorn renames or drops it, the
    # assignment would go nowhere (install() refuses instead), so this fails loudly here.
    import hypercorn.asyncio.tcp_server as tcp_server

    install()
    assert tcp_server.MAX_RECV == READ_SIZE  # type: ignore[attr-defined,unused-ignore]
    assert READ_SIZE >= 256 * 1024


def test_other_workers_get_the_stock_protocol() -> None:
    class TrioLikeContext:
        event_class = staticmethod(lambda: None)
        terminated = None

    protocol = GrpcH2Protocol(
        None, Config(), TrioLikeContext(), None, None, False, None, None, None
    )
    assert type(protocol) is H2Protocol


@pytest.mark.parametrize("config", [None, Config()], ids=["grpc_config", "stock-config"])
async def test_settings_windows_and_headers_on_the_wire(config: Config | None) -> None:
    async with serve(echo_app, config) as server:
        client = await RawH2.connect(server.port)
        try:
            settings = await client.frame()
            assert isinstance(settings, SettingsFrame)
            window = await client.frame()
            assert isinstance(window, WindowUpdateFrame)
            assert window.stream_id == 0
            expected_frame = MiB if config is None else 2**14
            assert settings.settings[MAX_FRAME_SIZE] == expected_frame
            # A 1 MiB message with its prefix fits (no WINDOW_UPDATE round trip for its tail).
            assert settings.settings[INITIAL_WINDOW_SIZE] == MiB + 16 * 1024
            # At least max streams x stream window: unread streams cannot starve the rest.
            assert window.window_increment + 65_535 >= 100 * MiB

            # A DATA frame larger than 16 KiB is accepted when announced (h2's client would
            # refuse to send it, not knowing our settings: write it by hand).
            stream_id = client.request("/test/Unary", end=False)
            payload = b"z" * (200 * 1024 if config is None else 10_000)
            client.writer.write(
                DataFrame(stream_id, data=grpc_frame(payload), flags=["END_STREAM"]).serialize()
            )
            headers, body = [], b""
            while not headers or "END_STREAM" not in headers[-1].flags:
                frame = await client.frame()
                if isinstance(frame, HeadersFrame):
                    headers.append(frame)
                elif isinstance(frame, DataFrame):
                    body += frame.data
        finally:
            await client.close()
    response, trailers = (client.headers(h) for h in headers)
    assert body == grpc_frame(payload)
    assert trailers == {b"grpc-status": b"0"}
    if config is None:
        assert response == {b":status": b"200", b"content-type": b"application/grpc"}
    assert _hypercorn.TRAILERS_ONLY_EXTENSION == "asgi_grpc.trailers_only"


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 12, 100, 65536])
def test_cheap_frame_repr_has_the_same_output(size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    assert raw_data_repr(data) == stock_raw_data_repr(data)
    assert raw_data_repr(memoryview(data)) == stock_raw_data_repr(data)


def test_cheap_frame_repr_is_installed_by_client_and_server() -> None:
    # The client's h2 module installs it on import, the server's install() too; a new
    # hyperframe major version leaves it out (and this test says so).
    import asgi_grpc.client._h2  # noqa: F401

    install()
    assert _hyperframe.is_installed(), "hyperframe changed: check its DATA frame repr"
    assert hyperframe.frame._raw_data_repr is raw_data_repr
