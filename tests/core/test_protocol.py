"""The header sets of a call: request headers, response headers, trailers."""

from __future__ import annotations

from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_grpc._core import (
    ACCEPT_ENCODING,
    CONTENT_TYPE,
    STATUS_DETAILS_KEY,
    Metadata,
    ProtocolError,
    RequestHead,
    Status,
    StatusCode,
    decode_timeout,
    encode_message,
    http_status_to_grpc,
    is_grpc_content_type,
    parse_request_headers,
    parse_trailers,
    request_headers,
    response_headers,
    trailers,
)

from .util import ascii_values


@pytest.mark.parametrize(
    "value",
    [
        b"application/grpc",
        b"application/grpc+proto",
        b"application/grpc+json",
        b"application/grpc;charset=utf-8",
        b"application/grpc; charset=utf-8",
    ],
)
def test_grpc_content_types(value: bytes) -> None:
    assert is_grpc_content_type(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"application/grpcx",
        b"application/grpc-web",
        b"application/grpc-web+proto",
        b"application/json",
        b"application/gr",
        b"text/application/grpc",
        b" application/grpc",
    ],
)
def test_not_grpc_content_types(value: bytes | None) -> None:
    assert not is_grpc_content_type(value)


def test_request_headers_minimal() -> None:
    headers = request_headers(timeout=None, encoding="identity", metadata=None, user_agent=b"ua/1")
    assert headers == [
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        (b"user-agent", b"ua/1"),
        (b"grpc-accept-encoding", ACCEPT_ENCODING),
    ]


def test_request_headers_full_round_trip() -> None:
    md = Metadata(("k", "v"), ("k", "w"), ("b-bin", b"\x00\x01"))
    headers = request_headers(timeout=1.5, encoding="gzip", metadata=md, user_agent=b"ua/1")
    assert (b"grpc-encoding", b"gzip") in headers
    assert (b"grpc-timeout", b"1500000u") in headers
    # What a server adds in front: pseudo headers.
    head = parse_request_headers(
        [
            (b":method", b"POST"),
            (b":path", b"/pkg.Svc/M"),
            (b":authority", b"example:50051"),
            *headers,
        ]
    )
    assert head == RequestHead(
        timeout=1.5,
        encoding="gzip",
        accept_encoding=frozenset({"identity", "deflate", "gzip"}),
        metadata=Metadata(("user-agent", "ua/1"), ("k", "v"), ("k", "w"), ("b-bin", b"\x00\x01")),
        authority="example:50051",
        user_agent="ua/1",
    )


def test_request_headers_accept_plain_tuples_for_metadata() -> None:
    headers = request_headers(
        timeout=None, encoding="identity", metadata=[("a", "1")], user_agent=b"x"
    )
    assert headers[-1] == (b"a", b"1")


@pytest.mark.parametrize("metadata", [[("Bad", "v")], [("te", "x")], [("k", "é")], [("k", 1)]])
def test_request_headers_reject_invalid_metadata(metadata: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        request_headers(timeout=None, encoding="identity", metadata=metadata, user_agent=b"x")


def test_parse_request_headers_defaults() -> None:
    head = parse_request_headers([(b"content-type", b"application/grpc")])
    assert head.timeout is None
    assert head.encoding == "identity"
    assert head.accept_encoding == frozenset({"identity"})
    assert head.metadata == ()
    assert head.authority is None
    assert head.user_agent is None


def test_parse_request_headers_host_and_encoding_whitespace() -> None:
    head = parse_request_headers([(b"host", b"h:1"), (b"grpc-encoding", b" deflate ")])
    assert head.authority == "h:1"
    assert head.encoding == "deflate"


def test_parse_request_headers_bad_timeout_is_internal() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request_headers([(b"grpc-timeout", b"soon")])
    assert info.value.code is StatusCode.INTERNAL


def test_parse_request_headers_bad_bin_metadata_is_internal() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request_headers([(b"x-bin", b"!")])
    assert info.value.code is StatusCode.INTERNAL


@settings(max_examples=200, deadline=None)
@given(
    timeout=st.none() | st.floats(min_value=1e-6, max_value=1e6),
    encoding=st.sampled_from(["identity", "gzip", "deflate"]),
    metadata=st.lists(
        st.one_of(
            st.tuples(
                st.sampled_from(["a", "x-id", "trace.id"]),
                ascii_values(10),
            ),
            st.tuples(st.sampled_from(["b-bin", "grpc-trace-bin"]), st.binary(max_size=20)),
        ),
        max_size=5,
    ),
)
def test_request_round_trip(
    timeout: float | None, encoding: str, metadata: list[tuple[str, str | bytes]]
) -> None:
    headers = request_headers(
        timeout=timeout, encoding=encoding, metadata=metadata, user_agent=b"agent"
    )
    head = parse_request_headers(headers)
    if timeout is None:
        assert head.timeout is None
    else:
        assert head.timeout is not None
        # Never early; late by at most the unit chosen (1 s at most for these values).
        assert timeout <= head.timeout <= timeout + 1.0
    assert head.encoding == encoding
    assert head.user_agent == "agent"
    assert head.metadata == Metadata(("user-agent", "agent"), *metadata)


def test_response_headers() -> None:
    assert response_headers("identity") == [
        (b"content-type", CONTENT_TYPE),
        (b"grpc-accept-encoding", ACCEPT_ENCODING),
    ]
    headers = response_headers("gzip", Metadata(("k", "v"), ("z-bin", b"\xff")))
    assert headers == [
        (b"content-type", CONTENT_TYPE),
        (b"grpc-accept-encoding", ACCEPT_ENCODING),
        (b"grpc-encoding", b"gzip"),
        (b"k", b"v"),
        (b"z-bin", b"/w"),
    ]


def test_response_headers_reject_invalid_metadata() -> None:
    with pytest.raises(ValueError, match="reserved"):
        response_headers("identity", [("content-type", "text/html")])


def test_trailers_ok() -> None:
    assert trailers(StatusCode.OK, None) == [(b"grpc-status", b"0")]
    assert trailers(StatusCode.OK, "") == [(b"grpc-status", b"0")]


def test_trailers_with_message_and_metadata() -> None:
    headers = trailers(StatusCode.NOT_FOUND, "no such thing: 100%", [("k", "v")])
    assert headers == [
        (b"grpc-status", b"5"),
        (b"grpc-message", b"no such thing: 100%25"),
        (b"k", b"v"),
    ]


@pytest.mark.parametrize(
    "metadata",
    [
        [("Bad Key", "v")],
        [("grpc-status", "0")],
        [("k", "caf\u00e9")],
        [("k", "line\nbreak")],
        [("k", 5)],
        [("k-bin", 5)],
        [("k",)],
        [("k", "v", "w")],
        5,
    ],
)
def test_trailers_with_invalid_metadata_become_internal(metadata: Any) -> None:
    headers = trailers(StatusCode.OK, None, metadata)
    status = parse_trailers(headers)
    assert status.code is StatusCode.INTERNAL
    assert "invalid trailing metadata" in status.details
    assert status.metadata == ()


def test_trailers_accept_grpcio_status_codes() -> None:
    """Application code written for grpcio hands us grpc.StatusCode members."""
    assert trailers(grpc.StatusCode.ABORTED, "x") == [
        (b"grpc-status", b"10"),
        (b"grpc-message", b"x"),
    ]


@settings(max_examples=200, deadline=None)
@given(
    code=st.sampled_from(list(StatusCode)),
    message=st.text(max_size=40),
    metadata=st.lists(
        st.one_of(
            st.tuples(st.sampled_from(["a", "b"]), ascii_values(8)),
            st.tuples(st.just(STATUS_DETAILS_KEY), st.binary(max_size=16)),
        ),
        max_size=4,
    ),
)
def test_trailers_round_trip(
    code: StatusCode, message: str, metadata: list[tuple[str, str | bytes]]
) -> None:
    status = parse_trailers(trailers(code, message, metadata))
    assert status == Status(code=code, details=message, metadata=Metadata(*metadata))


def test_parse_trailers_missing_status_is_unknown() -> None:
    status = parse_trailers([(b"grpc-message", b"hi"), (b"k", b"v")])
    assert status.code is StatusCode.UNKNOWN
    assert "missing grpc-status" in status.details
    assert status.metadata == (("k", "v"),)


def test_parse_trailers_only_response() -> None:
    """A Trailers-Only response: status and content-type in the one header block."""
    status = parse_trailers(
        [
            (b":status", b"200"),
            (b"content-type", b"application/grpc"),
            (b"grpc-status", b"12"),
            (b"grpc-message", encode_message("Method not found: /a/B")),
        ]
    )
    assert status == Status(
        code=StatusCode.UNIMPLEMENTED, details="Method not found: /a/B", metadata=Metadata()
    )


@pytest.mark.parametrize(
    ("wire", "code"), [(b"99", StatusCode.UNKNOWN), (b"x", StatusCode.UNKNOWN)]
)
def test_parse_trailers_bad_status_is_unknown(wire: bytes, code: StatusCode) -> None:
    assert parse_trailers([(b"grpc-status", wire)]).code is code


def test_parse_trailers_decodes_malformed_message_literally() -> None:
    status = parse_trailers([(b"grpc-status", b"2"), (b"grpc-message", b"50%-off %E2%82%AC")])
    assert status.details == "50%-off \u20ac"


@pytest.mark.parametrize(
    ("http", "code"),
    [
        (400, StatusCode.INTERNAL),
        (401, StatusCode.UNAUTHENTICATED),
        (403, StatusCode.PERMISSION_DENIED),
        (404, StatusCode.UNIMPLEMENTED),
        (429, StatusCode.UNAVAILABLE),
        (502, StatusCode.UNAVAILABLE),
        (503, StatusCode.UNAVAILABLE),
        (504, StatusCode.UNAVAILABLE),
        (500, StatusCode.UNKNOWN),
        (418, StatusCode.UNKNOWN),
        (301, StatusCode.UNKNOWN),
    ],
)
def test_http_status_mapping(http: int, code: StatusCode) -> None:
    # doc/http-grpc-status-mapping.md
    assert http_status_to_grpc(http) is code


def test_timeout_header_value_decodes() -> None:
    headers = dict(
        request_headers(timeout=0.25, encoding="identity", metadata=None, user_agent=b"u")
    )
    assert decode_timeout(headers[b"grpc-timeout"]) == 0.25


# --- Valid HTTP/2 to a strict peer ------------------------------------------------------------


def strict_h2_pair() -> tuple[h2.connection.H2Connection, h2.connection.H2Connection]:
    """Client and server h2 connections that validate every header both ways, normalize none."""

    def config(client_side: bool) -> h2.config.H2Configuration:
        return h2.config.H2Configuration(
            client_side=client_side,
            header_encoding=None,
            validate_outbound_headers=True,
            normalize_outbound_headers=False,
            validate_inbound_headers=True,
        )

    client = h2.connection.H2Connection(config(True))
    server = h2.connection.H2Connection(config(False))
    client.initiate_connection()
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    return client, server


@settings(max_examples=100, deadline=None)
@given(
    code=st.sampled_from(list(StatusCode)),
    details=st.text(max_size=30),
    metadata=st.lists(
        st.one_of(
            # Surrounding spaces excepted: metadata values go out as given, as from grpcio.
            st.tuples(st.sampled_from(["a", "b"]), ascii_values(10).map(str.strip)),
            st.tuples(st.sampled_from(["c-bin", STATUS_DETAILS_KEY]), st.binary(max_size=20)),
        ),
        max_size=4,
    ),
    timeout=st.none() | st.floats(min_value=0, max_value=1e9),
    encoding=st.sampled_from(["identity", "gzip", "deflate"]),
)
def test_headers_are_valid_http2(
    code: StatusCode,
    details: str,
    metadata: list[tuple[str, str | bytes]],
    timeout: float | None,
    encoding: str,
) -> None:
    """Every header block the core builds passes h2's RFC 9113 checks at both ends."""
    client, server = strict_h2_pair()
    pseudo = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", b"/s/M"),
        (b":authority", b"h"),
    ]
    request = request_headers(
        timeout=timeout, encoding=encoding, metadata=metadata, user_agent=b"ua"
    )
    client.send_headers(1, pseudo + request, end_stream=True)
    [received] = [
        event
        for event in server.receive_data(client.data_to_send())
        if isinstance(event, h2.events.RequestReceived)
    ]
    assert parse_request_headers(list(received.headers)).metadata == Metadata(
        ("user-agent", "ua"), *metadata
    )
    server.send_headers(1, [(b":status", b"200"), *response_headers(encoding, metadata)])
    server.send_headers(1, trailers(code, details, metadata), end_stream=True)
    events = client.receive_data(server.data_to_send())
    [head] = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
    [tail] = [e for e in events if isinstance(e, h2.events.TrailersReceived)]
    assert parse_request_headers(list(head.headers)).metadata == Metadata(*metadata)
    assert parse_trailers(list(tail.headers)) == Status(
        code=code, details=details, metadata=Metadata(*metadata)
    )
