"""Sans-IO checks the HTTP/2 server applies to what a client sends: request and trailer header
validation (RFC 9113 8.2, 8.3), the keepalive ping policy of grpc-core's servers, and a budget
for streams the client resets (the "rapid reset" attack). No I/O, no h2: the protocol
(``_hypercorn.GrpcH2Protocol``) calls these and turns the answers into frames.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = [
    "PingPolicy",
    "Refusal",
    "ResetBudget",
    "check_request_headers",
    "check_trailers",
]

# RFC 9113 8.2.1: a field name must not contain 0x00-0x20, 0x41-0x5A (upper case), 0x7F-0xFF, nor
# a colon (pseudo-header names are checked against the known set instead). Searching for the first
# disallowed byte is one C-level scan per name.
_BAD_NAME = re.compile(rb"[^!-9;-@\[-~]")
# RFC 9113 8.2.1: a field value must not contain NUL, CR or LF. It must not start or end with
# whitespace either, but grpcio clients send metadata values as given (spaces at either end
# included) and grpcio's server accepts them, so that rule is not enforced.
_BAD_VALUE = re.compile(rb"[\x00\r\n]")
# RFC 9113 8.2.2: connection-specific fields make a request malformed (``te`` is checked apart).
_CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)
_ENTRY_OVERHEAD = 32  # RFC 7541 4.1: each header list entry counts 32 bytes over name and value


class Refusal(NamedTuple):
    """Why a header block is refused: ``too_large`` (over the advertised header list size:
    refuse the request like HTTP 431) or malformed (RST_STREAM PROTOCOL_ERROR)."""

    too_large: bool
    reason: str


def _check_field(name: bytes, value: bytes) -> str | None:
    if not name or _BAD_NAME.search(name) is not None:
        return f"invalid header name {name!r}"
    if name in _CONNECTION_SPECIFIC:
        return f"connection-specific header {name.decode('latin-1')!r}"
    if name == b"te" and value != b"trailers":
        return "te other than trailers"
    if _BAD_VALUE.search(value) is not None:
        return f"NUL, CR or LF in the value of {name.decode('latin-1')!r}"
    return None


_REQUEST_PSEUDO = frozenset((b":method", b":scheme", b":path", b":authority", b":protocol"))


def check_request_headers(headers: list[tuple[bytes, bytes]], max_list_size: int) -> Refusal | None:
    """None if a request's header list is well formed (RFC 9113 8.3.1) and within
    ``max_list_size`` (counted as RFC 7541 does); else why not. One pass over the list."""
    size = 0
    pseudo: dict[bytes, bytes] = {}
    regular = False
    for name, value in headers:
        size += len(name) + len(value) + _ENTRY_OVERHEAD
        if name[:1] == b":":
            if regular:
                return Refusal(False, f"pseudo-header {name!r} after a regular header")
            if name not in _REQUEST_PSEUDO:
                return Refusal(False, f"unknown pseudo-header {name!r}")
            if name in pseudo:
                return Refusal(False, f"duplicate {name.decode('ascii')}")
            if _BAD_VALUE.search(value) is not None:
                return Refusal(False, f"NUL, CR or LF in {name!r}")
            pseudo[name] = value
            continue
        regular = True
        reason = _check_field(name, value)
        if reason is not None:
            return Refusal(False, reason)
    method = pseudo.get(b":method")
    scheme = pseudo.get(b":scheme")
    path = pseudo.get(b":path")
    authority = pseudo.get(b":authority")
    protocol = pseudo.get(b":protocol")
    if method is None:
        return Refusal(False, "missing :method")
    if method == b"CONNECT" and protocol is None:
        # RFC 9113 8.5: plain CONNECT has :authority only.
        if scheme is not None or path is not None or authority is None:
            return Refusal(False, "malformed CONNECT request")
    else:
        if protocol is not None and method != b"CONNECT":
            return Refusal(False, ":protocol without CONNECT")
        if scheme is None or not path:
            return Refusal(False, "missing :scheme or :path")
    if size > max_list_size:
        return Refusal(True, f"header list of {size} bytes is over the limit of {max_list_size}")
    return None


def check_trailers(headers: list[tuple[bytes, bytes]]) -> str | None:
    """None if request trailers are well formed (no pseudo-headers, RFC 9113 8.1), else why."""
    for name, value in headers:
        if name[:1] == b":":
            return f"pseudo-header {name!r} in trailers"
        reason = _check_field(name, value)
        if reason is not None:
            return reason
    return None


class PingPolicy:
    """grpc-core's server keepalive enforcement (its ``Chttp2PingAbusePolicy``).

    A PING that comes sooner than ``min_interval`` after the previous one (two hours instead when
    no call is in flight and ``permit_without_calls`` is false: RFC 1122's TCP keepalive floor) is
    a strike; more than ``max_strikes`` strikes (0: no limit) and the client gets GOAWAY
    ENHANCE_YOUR_CALM "too_many_pings". Sending HEADERS or DATA resets the count: pings that
    follow data (BDP probes, say) are fine. grpcio's options: ``grpc.http2.
    min_ping_interval_without_data_ms`` (default 5 minutes), ``grpc.http2.max_ping_strikes``
    (default 2), ``grpc.keepalive_permit_without_calls`` (default 0).
    """

    IDLE_INTERVAL = 2 * 60 * 60.0

    __slots__ = ("last", "max_strikes", "min_interval", "permit_without_calls", "strikes")

    def __init__(self, min_interval: float, max_strikes: int, permit_without_calls: bool) -> None:
        self.min_interval = max(0.0, min_interval)
        self.max_strikes = max(0, max_strikes)
        self.permit_without_calls = permit_without_calls
        self.last = float("-inf")
        self.strikes = 0

    def received(self, now: float, calls_in_flight: bool) -> bool:
        """Count one PING received at ``now``; True when the client has to go."""
        idle = not calls_in_flight and not self.permit_without_calls
        allowed = self.last + (self.IDLE_INTERVAL if idle else self.min_interval)
        self.last = now
        if allowed <= now:
            return False
        self.strikes += 1
        return self.max_strikes != 0 and self.strikes > self.max_strikes

    def reset(self) -> None:
        """The server sent HEADERS or DATA."""
        self.last = float("-inf")
        self.strikes = 0


class ResetBudget:
    """A token bucket for streams that end before the server has answered them: reset by the
    client, or refused for being over the stream limit. A client that opens and cancels streams
    faster than ``rate`` per second, beyond a burst of ``burst``, makes the server start (and
    cancel) handlers for nothing (CVE-2023-44487, "rapid reset"): it gets GOAWAY
    ENHANCE_YOUR_CALM."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, burst: int, rate: float) -> None:
        self.burst = float(burst)
        self.rate = float(rate)
        self.tokens = float(burst)
        self.last: float | None = None

    def spend(self, now: float, count: int = 1) -> bool:
        """Count ``count`` early-ended streams at ``now``; False when the budget is exhausted."""
        if self.burst <= 0:
            return True
        if self.last is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        self.tokens -= count
        return self.tokens >= 0
