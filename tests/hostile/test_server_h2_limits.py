"""The sans-IO checks behind the server's HTTP/2 limits (asgi_grpc.server._hypercorn_limits): the
clock is passed in, so the ping policy and the reset budget are tested without waiting."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from asgi_grpc.server._hypercorn_limits import (
    PingPolicy,
    ResetBudget,
    check_request_headers,
    check_trailers,
)

BASE = [
    (b":method", b"POST"),
    (b":scheme", b"https"),
    (b":path", b"/pkg.Service/Method"),
    (b":authority", b"example.com:443"),
    (b"content-type", b"application/grpc"),
    (b"te", b"trailers"),
]

# RFC 9113 8.2.1: lower-case name characters (no colon), values without NUL, CR, LF.
NAME_CHARS = sorted(set(range(0x21, 0x7F)) - set(range(0x41, 0x5B)) - {0x3A})
names = st.binary(min_size=1, max_size=20).map(
    lambda b: bytes(NAME_CHARS[c % len(NAME_CHARS)] for c in b)
)
values = st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"").translate(None, b"\r\n"))
CONNECTION_SPECIFIC = {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding"}
metadata = st.lists(
    st.tuples(names, values).filter(
        lambda h: h[0] not in CONNECTION_SPECIFIC | {b"te", b"upgrade"}
    ),
    max_size=10,
)


@given(metadata)
def test_well_formed_requests_pass(extra: list[tuple[bytes, bytes]]) -> None:
    assert check_request_headers(BASE + extra, 1 << 20) is None


@given(metadata, st.data())
def test_a_bad_byte_in_a_name_is_malformed(
    extra: list[tuple[bytes, bytes]], data: st.DataObject
) -> None:
    bad = data.draw(st.sampled_from([*range(0x21), *range(0x41, 0x5B), 0x3A, 0x7F, 0xFF]))
    where = data.draw(st.integers(0, len(extra)))
    name = data.draw(names)
    at = data.draw(st.integers(0, len(name)))
    headers = [*extra[:where], (name[:at] + bytes([bad]) + name[at:], b"v"), *extra[where:]]
    refusal = check_request_headers(BASE + headers, 1 << 20)
    assert refusal is not None
    assert not refusal.too_large


@given(metadata, st.sampled_from([b"\0", b"\r", b"\n"]), values, values)
def test_nul_cr_lf_in_a_value_is_malformed(
    extra: list[tuple[bytes, bytes]], bad: bytes, before: bytes, after: bytes
) -> None:
    refusal = check_request_headers([*BASE, *extra, (b"k", before + bad + after)], 1 << 20)
    assert refusal is not None
    assert not refusal.too_large
    assert check_trailers([(b"k", before + bad + after)]) is not None


def test_header_list_size_counts_as_rfc_7541() -> None:
    size = sum(len(n) + len(v) + 32 for n, v in BASE)
    assert check_request_headers(BASE, size) is None
    refusal = check_request_headers(BASE, size - 1)
    assert refusal is not None
    assert refusal.too_large


def test_extended_connect_and_plain_connect() -> None:
    websocket = [
        (b":method", b"CONNECT"),
        (b":protocol", b"websocket"),
        (b":scheme", b"https"),
        (b":path", b"/chat"),
        (b":authority", b"example.com"),
    ]
    assert check_request_headers(websocket, 1 << 16) is None
    assert (
        check_request_headers([(b":method", b"CONNECT"), (b":authority", b"h:1")], 1 << 16) is None
    )
    assert check_request_headers([(b":method", b"CONNECT"), (b":path", b"/")], 1 << 16) is not None
    assert check_request_headers([*BASE[:4], (b":protocol", b"websocket")], 1 << 16) is not None


def test_trailers() -> None:
    assert check_trailers([(b"x-checksum", b" spaced ok ")]) is None
    assert check_trailers([(b":status", b"200")]) is not None
    assert check_trailers([(b"te", b"gzip")]) is not None


def test_ping_policy_as_grpc_core() -> None:
    policy = PingPolicy(min_interval=300.0, max_strikes=2, permit_without_calls=False)
    # With calls in flight: one ping per 300 s; strikes 1 and 2 are tolerated, the third is not.
    assert not policy.received(0.0, True)
    assert not policy.received(400.0, True)
    assert not policy.received(401.0, True)  # strike 1
    assert not policy.received(402.0, True)  # strike 2
    assert policy.received(403.0, True)  # strike 3 > 2
    # Data sent resets the count (and the clock).
    policy.reset()
    assert not policy.received(404.0, True)
    # Without calls: one ping per two hours, unless permitted.
    idle = PingPolicy(min_interval=0.0, max_strikes=1, permit_without_calls=False)
    assert not idle.received(0.0, False)
    assert not idle.received(3600.0, False)  # strike 1
    assert idle.received(3601.0, False)
    assert not idle.received(3601.0 + 7200, False)
    permitted = PingPolicy(min_interval=0.0, max_strikes=1, permit_without_calls=True)
    assert not any(permitted.received(float(t), False) for t in range(100))
    unlimited = PingPolicy(min_interval=300.0, max_strikes=0, permit_without_calls=False)
    assert not any(unlimited.received(float(t), True) for t in range(100))


def test_reset_budget() -> None:
    budget = ResetBudget(burst=10, rate=5.0)
    assert all(budget.spend(0.0) for _ in range(10))
    assert not budget.spend(0.0)
    assert budget.spend(1.0, 4)  # 5 tokens came back in a second (after the overdraft of 1)
    assert not budget.spend(1.0)
    assert budget.spend(100.0, 10)  # refilled to the burst, not beyond
    assert not budget.spend(100.0)
    assert all(ResetBudget(burst=0, rate=0.0).spend(0.0) for _ in range(1000))  # 0: no limit
