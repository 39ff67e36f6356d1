"""``grpc-timeout`` encoding and deadlines (PROTOCOL-HTTP2.md, "Timeout")."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ._errors import ProtocolError
from ._status import StatusCode

# Seconds per unit, as (multiplier, divisor): sub-second units divide, since n / 1e3 is the float
# nearest the true value while n * 1e-3 can land below it (100000 * 1e-6 < 0.1), which would
# make a decoded timeout shorter than the one encoded.
_UNITS = {
    ord("H"): (3600, 1),
    ord("M"): (60, 1),
    ord("S"): (1, 1),
    ord("m"): (1, 10**3),
    ord("u"): (1, 10**6),
    ord("n"): (1, 10**9),
}
# Smallest unit first: the most precise encoding whose value fits in 8 digits.
_ENCODE = (
    (1, "n"),
    (10**3, "u"),
    (10**6, "m"),
    (10**9, "S"),
    (60 * 10**9, "M"),
    (3600 * 10**9, "H"),
)
_MAX_VALUE = 99_999_999
_MAX_TIMEOUT = f"{_MAX_VALUE}H"


def _seconds(value: int, unit: int) -> float:
    multiplier, divisor = _UNITS[unit]
    return value * multiplier / divisor


def encode_timeout(seconds: float) -> str:
    """The ``grpc-timeout`` value for a timeout; rounds up so a deadline is never early.

    Zero and negative timeouts encode as ``1n`` (already expired, in effect); timeouts past the
    largest the header can carry (99,999,999 hours, infinity included) encode as that maximum.
    """
    if math.isnan(seconds):
        raise ValueError("a timeout cannot be NaN")
    if seconds >= _MAX_VALUE * 3600:
        return _MAX_TIMEOUT
    if seconds <= 0:
        # Before the scaling below: a huge negative timeout (-inf too) would overflow it.
        return "1n"
    # Whole nanoseconds first (rounding off float noise such as 0.1 * 1e9 = 100000000.00000001).
    nanos = max(1, math.ceil(round(seconds * 1e9, 3)))
    for unit_nanos, unit in _ENCODE:
        value = -(-nanos // unit_nanos)
        # That rounding may drop a fraction of a nanosecond: never decode below ``seconds``.
        if _seconds(value, ord(unit)) < seconds:
            value += 1
        if value <= _MAX_VALUE:
            return f"{value}{unit}"
    return _MAX_TIMEOUT  # pragma: no cover (the early return above keeps hours in range)


def decode_timeout(value: bytes | str) -> float:
    """Seconds from a ``grpc-timeout`` value: 1 to 8 ASCII digits and a unit (H M S m u n)."""
    raw = value.encode("latin-1", "replace") if isinstance(value, str) else value
    # isdigit() on bytes is ASCII-only; on str it would take other scripts' digits too.
    if 2 <= len(raw) <= 9 and raw[:-1].isdigit() and raw[-1] in _UNITS:
        return _seconds(int(raw[:-1]), raw[-1])
    raise ProtocolError(StatusCode.INTERNAL, f"malformed grpc-timeout {value!r}")


Clock = Callable[[], float]


@dataclass(frozen=True)
class Deadline:
    """An absolute point in time on a given clock (monotonic by default)."""

    when: float
    clock: Clock = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        return max(0.0, self.when - self.clock())

    @property
    def expired(self) -> bool:
        return self.clock() >= self.when
