"""The status a client infers from an HTTP response without grpc-status
(doc/http-grpc-status-mapping.md), as grpcio's client reports it."""

from __future__ import annotations

import pytest

from asgi_grpc._core import (
    MALFORMED_HTTP_STATUS,
    StatusCode,
    http_status_details,
    http_status_to_grpc,
    parse_http_status,
    trailers_only_status,
)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (b"200", 200),
        (b"404", 404),
        (b"2000", 2000),  # grpcio takes any number
        (None, 0),
        (b"", MALFORMED_HTTP_STATUS),
        (b"abc", MALFORMED_HTTP_STATUS),
        (b"2x0", MALFORMED_HTTP_STATUS),
        (b"-20", MALFORMED_HTTP_STATUS),
        (b" 200", MALFORMED_HTTP_STATUS),
        (b"9" * 5000, MALFORMED_HTTP_STATUS),  # no int() on huge strings
    ],
)
def test_parse_http_status_never_raises(value: bytes | None, parsed: int) -> None:
    assert parse_http_status(value) == parsed


def test_malformed_status_is_internal() -> None:
    assert http_status_to_grpc(MALFORMED_HTTP_STATUS) is StatusCode.INTERNAL
    assert http_status_details(MALFORMED_HTTP_STATUS) == "Error parsing ':status' metadata"
    assert http_status_details(503) == "Received http2 header with status: 503"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b":status", b"404")], (StatusCode.UNIMPLEMENTED, "status: 404")),
        ([(b":status", b"503")], (StatusCode.UNAVAILABLE, "status: 503")),
        ([(b":status", b"401")], (StatusCode.UNAUTHENTICATED, "status: 401")),
        ([(b":status", b"418")], (StatusCode.UNKNOWN, "status: 418")),
        ([(b":status", b"200")], (StatusCode.UNKNOWN, "No status received")),
        ([(b":status", b"zzz")], (StatusCode.INTERNAL, "Error parsing")),
        ([(b":status", b"404"), (b"grpc-status", b"5")], None),
    ],
)
def test_trailers_only_status(
    headers: list[tuple[bytes, bytes]], expected: tuple[StatusCode, str] | None
) -> None:
    result = trailers_only_status(headers)
    if expected is None:
        assert result is None
    else:
        assert result is not None
        assert result[0] is expected[0]
        assert expected[1] in result[1]
