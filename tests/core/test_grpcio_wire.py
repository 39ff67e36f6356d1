"""The core against grpcio on real loopback sockets, both directions, with nothing in between.

A hand-driven h2 connection carries exactly the bytes the core builds (request headers, frames,
trailers) to a grpcio server, and hands what a grpcio client sends to the core's parsers. So
every encoding here (grpc-message percent-encoding, ``-bin`` base64 without padding,
grpc-timeout, gzip/deflate, the compressed flag) is checked against grpcio's C-core reading or
writing it, not against our own reading of the spec.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_grpc._core import (
    GZIP,
    IDENTITY,
    RESERVED,
    Headers,
    MessageReader,
    Metadata,
    ProtocolError,
    StatusCode,
    compress,
    decompress,
    encoding_name,
    frame,
    parse_request_headers,
    parse_trailers,
    request_headers,
    response_headers,
    trailers,
)

from .util import ascii_values, metadata_keys

TIMEOUT = 10.0  # seconds: every socket read and every grpcio call is bounded by it

# Metadata that both sides can carry: printable ASCII values, any bytes for -bin keys.
_key = metadata_keys().filter(
    lambda k: (
        not k.startswith("grpc-")
        and not k.endswith("-bin")
        and k not in RESERVED
        and k != "user-agent"
    )
)
metadata_st = st.lists(
    st.one_of(
        # Spaces at the ends included: grpc-core sends and keeps them (see the last test).
        st.tuples(_key, ascii_values()),
        st.tuples(_key.map(lambda k: k + "-bin"), st.binary(max_size=24)),
    ),
    max_size=4,
)
# grpc.StatusCode.OK carries no details through grpcio, so errors only.
error_codes = [code for code in StatusCode if code is not StatusCode.OK]


def sorted_pairs(pairs: Any) -> list[tuple[str, Any]]:
    return sorted((key, value) for key, value in pairs)


# --- A grpcio server, and a client that is the core plus h2 ------------------------------------


@dataclass
class Reply:
    response: bytes
    code: grpc.StatusCode
    details: str
    trailing: list[tuple[str, str | bytes]]
    compression: grpc.Compression


@dataclass
class Servicer:
    """Echoes the request back; records what grpcio parsed from our request headers."""

    reply: Reply | None = None
    seen: list[tuple[bytes, list[tuple[str, Any]], float | None]] = field(default_factory=list)

    def handle(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.seen.append((request, list(context.invocation_metadata()), context.time_remaining()))
        reply = self.reply
        assert reply is not None
        context.set_compression(reply.compression)
        context.set_trailing_metadata(reply.trailing)
        if reply.code is not grpc.StatusCode.OK:
            context.abort(reply.code, reply.details)
        return reply.response


@pytest.fixture(scope="module")
def grpcio_server() -> Iterator[tuple[int, Servicer]]:
    servicer = Servicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(servicer.handle)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Wire", {"Echo": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port, servicer
    finally:
        server.stop(None).wait(TIMEOUT)


class H2Client:
    """One h2c connection; one call at a time."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        # grpc-core sends a grpc-message or metadata value with surrounding spaces as is, which
        # h2's default validation rejects as a connection error: read them as sent instead.
        # Nor strip what we send: the core's bytes go out as built, as from asgi_grpc's client.
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_inbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())

    def call(self, path: bytes, headers: Headers, body: bytes) -> tuple[Headers, bytes, Headers]:
        conn = self.conn
        stream_id = conn.get_next_available_stream_id()
        pseudo = [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", path),
            (b":authority", b"127.0.0.1"),
        ]
        conn.send_headers(stream_id, pseudo + headers)
        conn.send_data(stream_id, body, end_stream=True)
        self.sock.sendall(conn.data_to_send())
        head: Headers = []
        data = b""
        tail: Headers = []
        for _ in range(10_000):  # bounded: a call is a handful of frames
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("grpcio closed the connection")
            for event in conn.receive_data(chunk):
                if getattr(event, "stream_id", stream_id) != stream_id:
                    continue
                if isinstance(event, h2.events.ResponseReceived):
                    head = list(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                elif isinstance(event, h2.events.TrailersReceived):
                    tail = list(event.headers)
                elif isinstance(event, h2.events.StreamReset):
                    raise ConnectionError(f"stream reset: {event.error_code!r}")
                elif isinstance(event, h2.events.StreamEnded):
                    self.sock.sendall(conn.data_to_send())
                    return head, data, tail
            self.sock.sendall(conn.data_to_send())
        raise AssertionError("call never ended")

    def close(self) -> None:
        self.conn.close_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.sock.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    request=st.binary(max_size=200),
    metadata=metadata_st,
    timeout=st.none() | st.floats(min_value=5.0, max_value=3600.0),
    request_encoding=st.sampled_from([IDENTITY, "gzip", "deflate"]),
    code=st.sampled_from(error_codes + [StatusCode.OK] * 4),
    details=st.text(max_size=40),
    trailing=metadata_st,
    compression=st.sampled_from(list(grpc.Compression)),
)
def test_core_client_against_grpcio_server(
    grpcio_server: tuple[int, Servicer],
    request: bytes,
    metadata: list[tuple[str, str | bytes]],
    timeout: float | None,
    request_encoding: str,
    code: StatusCode,
    details: str,
    trailing: list[tuple[str, str | bytes]],
    compression: grpc.Compression,
) -> None:
    port, servicer = grpcio_server
    servicer.seen.clear()
    servicer.reply = Reply(
        response=request[::-1],
        code=grpc.StatusCode[code.name],
        details=details,
        trailing=trailing,
        compression=compression,
    )
    headers = request_headers(
        timeout=timeout, encoding=request_encoding, metadata=metadata, user_agent=b"core-test/1"
    )
    if request_encoding == IDENTITY:
        body = frame(request)
    else:
        body = frame(compress(request_encoding, request), compressed=True)

    # A connection per example: one that a failing example broke cannot fail the next.
    client = H2Client(port)
    try:
        head, data, tail = client.call(b"/test.Wire/Echo", headers, body)
    finally:
        client.close()

    # What grpcio read from our headers and body.
    [(seen_request, seen_metadata, time_remaining)] = servicer.seen
    assert seen_request == request
    assert sorted_pairs(m for m in seen_metadata if m[0] != "user-agent") == sorted_pairs(metadata)
    assert ("user-agent", "core-test/1") in [(k, v[: len("core-test/1")]) for k, v in seen_metadata]
    if timeout is None:
        assert time_remaining > 10**9  # grpcio's "no deadline"
    else:
        assert time_remaining is not None
        assert timeout - 5.0 < time_remaining <= timeout + 1e-3

    # What we read from grpcio's response.
    if code is StatusCode.OK:
        status = parse_trailers(tail)
        assert dict(head)[b":status"] == b"200"
        response_head = parse_request_headers(head)  # same header rules: encoding, metadata
        reader = MessageReader()
        messages = reader.feed(data)
        reader.close()
        [(compressed, payload)] = messages
        expected_encoding = encoding_name(compression)
        assert response_head.encoding == expected_encoding
        # grpcio sends a message uncompressed (flag 0) when compressing does not shrink it.
        assert not compressed or expected_encoding != IDENTITY
        if compressed:
            payload = decompress(response_head.encoding, payload, None)
        assert payload == request[::-1]
    else:
        # grpcio answers an aborted unary call Trailers-Only: status in the one header block.
        status = parse_trailers(tail or head)
        assert status.details == details
    assert status.code is code
    assert sorted_pairs(status.metadata) == sorted_pairs(trailing)


# --- A grpcio client, and a server that is the core plus h2 -------------------------------------


Respond = Callable[[Headers, bytes], tuple[Headers, bytes, Headers]]


class H2Server:
    """Serves h2c on 127.0.0.1: each call goes to ``respond``; records requests it parsed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        # Short timeouts so the threads see ``stopped`` soon: closing a socket does not wake a
        # thread blocked on it.
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.respond: Respond | None = None
        self.errors: list[BaseException] = []
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(0.2)
        # As the client: grpcio's metadata values may have spaces at the ends (h2's inbound
        # validation would fail the connection), and the core's bytes go out unchanged.
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=False,
            normalize_outbound_headers=False,
        )
        conn = h2.connection.H2Connection(config=config)
        conn.initiate_connection()
        requests: dict[int, tuple[Headers, bytearray]] = {}
        try:
            sock.sendall(conn.data_to_send())
            while not self.stopped.is_set():
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                for event in conn.receive_data(chunk):
                    if isinstance(event, h2.events.RequestReceived):
                        requests[event.stream_id] = (list(event.headers), bytearray())
                    elif isinstance(event, h2.events.DataReceived):
                        requests[event.stream_id][1].extend(event.data)
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        headers, body = requests.pop(event.stream_id)
                        assert self.respond is not None
                        head, data, tail = self.respond(headers, bytes(body))
                        conn.send_headers(event.stream_id, [(b":status", b"200"), *head])
                        if data:
                            conn.send_data(event.stream_id, data)
                        conn.send_headers(event.stream_id, tail, end_stream=True)
                sock.sendall(conn.data_to_send())
        except BaseException as exc:  # reported by the test, not lost in a thread
            self.errors.append(exc)
        finally:
            sock.close()

    def close(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(TIMEOUT)
        self.listener.close()


@pytest.fixture(scope="module")
def core_server() -> Iterator[H2Server]:
    server = H2Server()
    try:
        yield server
    finally:
        server.close()
    assert not server.errors


@pytest.fixture(scope="module")
def grpcio_channel(core_server: H2Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{core_server.port}") as channel:
        yield channel


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    request=st.binary(max_size=200),
    metadata=metadata_st,
    timeout=st.floats(min_value=5.0, max_value=3600.0),
    compression=st.sampled_from(list(grpc.Compression)),
    response_encoding=st.sampled_from([IDENTITY, "gzip", "deflate"]),
    initial=metadata_st,
    code=st.sampled_from(list(StatusCode)),
    details=st.text(max_size=40),
    trailing=metadata_st,
)
def test_grpcio_client_against_core_server(
    core_server: H2Server,
    grpcio_channel: grpc.Channel,
    request: bytes,
    metadata: list[tuple[str, str | bytes]],
    timeout: float,
    compression: grpc.Compression,
    response_encoding: str,
    initial: list[tuple[str, str | bytes]],
    code: StatusCode,
    details: str,
    trailing: list[tuple[str, str | bytes]],
) -> None:
    seen: list[tuple[Any, bytes]] = []

    def respond(headers: Headers, body: bytes) -> tuple[Headers, bytes, Headers]:
        head = parse_request_headers(headers)
        reader = MessageReader()
        [(compressed, payload)] = reader.feed(body)
        reader.close()
        if compressed:
            payload = decompress(head.encoding, payload, None)
        seen.append((head, payload))
        out = payload[::-1]
        if response_encoding == IDENTITY:
            data = frame(out)
        else:
            data = frame(compress(response_encoding, out), compressed=True)
        return response_headers(response_encoding, initial), data, trailers(code, details, trailing)

    core_server.respond = respond
    call = grpcio_channel.unary_unary("/test.Wire/Echo")
    response: bytes | None = None
    try:
        response, rpc = call.with_call(
            request, metadata=metadata, timeout=timeout, compression=compression
        )
    except grpc.RpcError as exc:
        rpc = exc
    assert rpc.code() is grpc.StatusCode[code.name]
    if code is StatusCode.OK:
        assert response == request[::-1]
    else:
        assert response is None
        assert rpc.details() == details
    assert sorted_pairs(rpc.initial_metadata()) == sorted_pairs(initial)
    assert sorted_pairs(rpc.trailing_metadata()) == sorted_pairs(trailing)

    # What we parsed from grpcio's request.
    [(head, payload)] = seen
    assert payload == request
    assert head.encoding == encoding_name(compression)
    assert head.timeout is not None
    # grpc-core rounds the timeout it sends up to two or three significant digits
    # (5 s -> "5010m", 1761.6 s -> "1780S").
    assert timeout - 5.0 < head.timeout <= timeout * 1.1 + 0.1
    assert head.user_agent is not None
    assert "grpc-python" in head.user_agent
    assert sorted_pairs(m for m in head.metadata if m[0] != "user-agent") == sorted_pairs(metadata)
    assert {"identity", "deflate", "gzip"} <= head.accept_encoding
    assert not core_server.errors


def test_grpcio_details_with_every_byte_class(
    core_server: H2Server, grpcio_channel: grpc.Channel
) -> None:
    """Every ASCII control, '%', DEL and multi-byte UTF-8, in one message, both ways."""
    details = "".join(chr(c) for c in range(1, 0x80)) + "é€😀%%25%zz"
    core_server.respond = lambda headers, body: (
        response_headers(IDENTITY),
        b"",
        trailers(StatusCode.INVALID_ARGUMENT, details),
    )
    with pytest.raises(grpc.RpcError) as info:
        grpcio_channel.unary_unary("/test.Wire/Echo")(b"", timeout=TIMEOUT)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == details


def test_grpcio_status_details_bin_arrives_as_trailing_metadata(
    core_server: H2Server, grpcio_channel: grpc.Channel
) -> None:
    blob = bytes(range(256))
    core_server.respond = lambda headers, body: (
        response_headers(IDENTITY),
        b"",
        trailers(
            StatusCode.FAILED_PRECONDITION, "rich", Metadata(("grpc-status-details-bin", blob))
        ),
    )
    with pytest.raises(grpc.RpcError) as info:
        grpcio_channel.unary_unary("/test.Wire/Echo")(b"", timeout=TIMEOUT)
    assert ("grpc-status-details-bin", blob) in info.value.trailing_metadata()


def test_gzip_name_is_grpcio_s() -> None:
    assert encoding_name(grpc.Compression.Gzip) == GZIP


def test_details_with_surrounding_spaces_reach_grpcio(
    core_server: H2Server, grpcio_channel: grpc.Channel
) -> None:
    """h2 strips a field value's surrounding whitespace: the ends are sent as %20 instead."""
    details = "  padded both ends  "
    core_server.respond = lambda headers, body: (
        response_headers(IDENTITY),
        b"",
        trailers(StatusCode.ABORTED, details),
    )
    with pytest.raises(grpc.RpcError) as info:
        grpcio_channel.unary_unary("/test.Wire/Echo")(b"", timeout=TIMEOUT)
    assert info.value.details() == details


def call_grpcio(port: int, servicer: Servicer, reply: Reply, request: bytes) -> Any:
    servicer.seen.clear()
    servicer.reply = reply
    client = H2Client(port)
    try:
        return client.call(
            b"/test.Wire/Echo",
            request_headers(timeout=None, encoding=IDENTITY, metadata=None, user_agent=b"t"),
            frame(request),
        )
    finally:
        client.close()


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate])
def test_grpcio_compressed_response(
    grpcio_server: tuple[int, Servicer], compression: grpc.Compression
) -> None:
    port, servicer = grpcio_server
    request = b"compress me " * 100
    reply = Reply(request, grpc.StatusCode.OK, "", [], compression)
    head, data, tail = call_grpcio(port, servicer, reply, request)
    encoding = parse_request_headers(head).encoding
    assert encoding == encoding_name(compression)
    [(compressed, payload)] = MessageReader().feed(data)
    assert compressed
    assert len(payload) < len(request)
    assert decompress(encoding, payload, len(request)) == request
    assert parse_trailers(tail).code is StatusCode.OK


def test_grpcio_details_round_trip(grpcio_server: tuple[int, Servicer]) -> None:
    """grpc-core's percent-encoding of every byte class, read by decode_message."""
    port, servicer = grpcio_server
    details = "".join(chr(c) for c in range(1, 0x80)) + "é€😀%%25%zz"
    reply = Reply(
        b"",
        grpc.StatusCode.OUT_OF_RANGE,
        details,
        [("t-bin", b"\x00")],
        grpc.Compression.NoCompression,
    )
    head, _, tail = call_grpcio(port, servicer, reply, b"")
    status = parse_trailers(tail or head)
    assert status.code is StatusCode.OUT_OF_RANGE
    assert status.details == details
    assert status.metadata == (("t-bin", b"\x00"),)


@pytest.mark.parametrize("details", [" x ", "\tx\t", " "])
def test_grpcio_sends_surrounding_spaces_unescaped(
    grpcio_server: tuple[int, Servicer], details: str
) -> None:
    """What grpc-core does with the whitespace that RFC 9113 forbids at a value's ends.

    It escapes tabs but sends spaces as they are, in grpc-message and in metadata values: an
    h2 peer that validates inbound headers (h2's default) fails the whole connection on them.
    decode_message reads them as sent.
    """
    port, servicer = grpcio_server
    reply = Reply(
        b"", grpc.StatusCode.ABORTED, details, [("k", " v ")], grpc.Compression.NoCompression
    )
    head, _, tail = call_grpcio(port, servicer, reply, b"")
    raw = dict(tail or head)
    assert raw[b"grpc-message"] == details.replace("\t", "%09").encode()
    assert raw[b"k"] == b" v "
    status = parse_trailers(tail or head)
    assert status.details == details
    assert status.metadata == (("k", " v "),)


@pytest.mark.parametrize(
    "header",
    [
        (b"grpc-timeout", b"soon"),
        (b"grpc-timeout", b"1x"),
        (b"grpc-timeout", b"-1S"),
        (b"x-bin", b"!!"),
        (b"x-bin", b"Y"),
    ],
)
def test_bad_request_headers_fail_as_in_grpcio(
    grpcio_server: tuple[int, Servicer], header: tuple[bytes, bytes]
) -> None:
    """A request header grpcio fails the call on, the core rejects with the same status."""
    port, servicer = grpcio_server
    servicer.seen.clear()
    client = H2Client(port)
    try:
        headers = request_headers(timeout=None, encoding=IDENTITY, metadata=None, user_agent=b"t")
        head, _, tail = client.call(b"/test.Wire/Echo", [*headers, header], frame(b""))
    finally:
        client.close()
    grpcio_status = parse_trailers(tail or head)
    assert not servicer.seen
    with pytest.raises(ProtocolError) as info:
        parse_request_headers([*headers, header])
    assert info.value.code is grpcio_status.code is StatusCode.INTERNAL
