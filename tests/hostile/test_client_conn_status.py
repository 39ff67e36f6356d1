"""Issue 9 item 11: responses that are not proper gRPC end the call with a gRPC status, never
a foreign exception, and a trailers-only response without ``grpc-status`` gets the status of
gRPC's doc/http-grpc-status-mapping.md from its ``:status``, as grpcio's client gives it.
grpcio's blocking and aio clients run every case first as the control.
"""

from __future__ import annotations

from collections.abc import Iterator

import h2.events
import pytest

from .clients import KINDS, OURS, unary
from .lying_server import LyingConnection, LyingServer, Script, grpc_frame, lying_server

Headers = list[tuple[bytes, bytes]]
GRPC = (b"content-type", b"application/grpc")
OK_TRAILERS: Headers = [(b"grpc-status", b"0")]

# name -> (headers, body or None, trailers or None); no body and no trailers: trailers-only.
CASES: dict[str, tuple[Headers, bytes | None, Headers | None]] = {
    "only-400": ([(b":status", b"400")], None, None),
    "only-401": ([(b":status", b"401")], None, None),
    "only-403": ([(b":status", b"403")], None, None),
    "only-404": ([(b":status", b"404")], None, None),
    "only-429": ([(b":status", b"429")], None, None),
    "only-500": ([(b":status", b"500")], None, None),
    "only-502": ([(b":status", b"502")], None, None),
    "only-503": ([(b":status", b"503")], None, None),
    "only-504": ([(b":status", b"504")], None, None),
    "only-200-no-grpc-status": ([(b":status", b"200"), GRPC], None, None),
    "only-404-with-grpc-status": ([(b":status", b"404"), (b"grpc-status", b"5")], None, None),
    "only-non-numeric-status": ([(b":status", b"abc"), GRPC], None, None),
    "non-numeric-status": ([(b":status", b"2x0"), GRPC], grpc_frame(b""), OK_TRAILERS),
    "long-status": ([(b":status", b"2000"), GRPC], grpc_frame(b""), OK_TRAILERS),
    "404-with-body": ([(b":status", b"404"), (b"content-type", b"text/html")], b"<p>", None),
    "503-full-grpc": ([(b":status", b"503"), GRPC], grpc_frame(b""), OK_TRAILERS),
}
# Where grpcio's client is lenient (it ignores content-type and a missing :status) we end the
# call with UNKNOWN, as the spec's HTTP mapping and our earlier behaviour do.
STRICTER: dict[str, tuple[Headers, bytes | None, Headers | None]] = {
    "no-status": ([GRPC], grpc_frame(b""), OK_TRAILERS),
    "no-content-type": ([(b":status", b"200")], grpc_frame(b""), OK_TRAILERS),
    "html": ([(b":status", b"200"), (b"content-type", b"text/html")], b"<p>", OK_TRAILERS),
}


def _answer(conn: LyingConnection, event: h2.events.Event) -> None:
    if not isinstance(event, h2.events.StreamEnded):
        return
    stream_id = event.stream_id
    assert stream_id is not None
    name = dict(conn.requests[stream_id])[b":path"].rsplit(b"/", 1)[1].decode()
    headers, body, trailers = {**CASES, **STRICTER}[name]
    conn.h2.send_headers(stream_id, headers, end_stream=body is None and trailers is None)
    if body is not None:
        conn.h2.send_data(stream_id, body, end_stream=trailers is None)
    if trailers is not None:
        conn.h2.send_headers(stream_id, trailers, end_stream=True)


@pytest.fixture(scope="module")
def server() -> Iterator[LyingServer]:
    with lying_server(Script(on_event=_answer)) as server:
        yield server


@pytest.mark.parametrize("case", list(CASES))
def test_status_as_grpcio_gives_it(server: LyingServer, case: str) -> None:
    outcomes = {kind: unary(kind, server.target, f"/hostile.Test/{case}") for kind in KINDS}
    expected = outcomes["grpc"]
    assert expected.code != "OK"
    for kind in KINDS:
        assert outcomes[kind].code == expected.code, (kind, outcomes)
    for kind in OURS:
        # The same wording where grpcio has one ("Received http2 header with status: 404",
        # "No status received", "Error parsing ':status' metadata").
        if "status" in expected.details:
            assert outcomes[kind].details.split("(")[0].strip() in expected.details, outcomes


@pytest.mark.parametrize("case", list(STRICTER))
def test_not_grpc_responses_end_with_a_status(server: LyingServer, case: str) -> None:
    assert unary("grpc", server.target, f"/hostile.Test/{case}").code == "OK"  # lenient grpcio
    for kind in OURS:
        outcome = unary(kind, server.target, f"/hostile.Test/{case}")
        assert outcome.code == "UNKNOWN", outcome
        assert outcome.details.startswith("Received http2 header"), outcome
