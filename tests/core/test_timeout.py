"""grpc-timeout encoding (PROTOCOL-HTTP2.md "Timeout") and deadlines on an injected clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asgi_grpc._core import Deadline, ProtocolError, StatusCode, decode_timeout, encode_timeout

from .util import outcome

UNIT_SECONDS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
# The largest timeout the header can carry: 99,999,999 hours.
MAX_SECONDS = 99_999_999 * 3600.0


@pytest.mark.parametrize(
    ("seconds", "wire"),
    [
        (1e-9, "1n"),
        (3e-9, "3n"),
        (0.007, "7000000n"),
        (0.05, "50000000n"),
        (0.1, "100000u"),
        (1.0, "1000000u"),
        (1.5, "1500000u"),
        (60.0, "60000000u"),
        (100.0, "100000m"),
        (123.456, "123456m"),
        (86400.0, "86400000m"),
        (10**6, "1000000S"),
        (10**8, "1666667M"),  # 10**8 s is not a whole number of minutes: rounded up
        (10**9, "16666667M"),
        (10**11, "27777778H"),
        (MAX_SECONDS, "99999999H"),
        (MAX_SECONDS * 10, "99999999H"),  # clamped to the largest value the header can carry
    ],
)
def test_encode_examples(seconds: float, wire: str) -> None:
    assert encode_timeout(seconds) == wire


@pytest.mark.parametrize("seconds", [0.0, -1.0, -1e-12, 1e-12])
def test_non_positive_and_tiny_timeouts_encode_as_one_nanosecond(seconds: float) -> None:
    assert encode_timeout(seconds) == "1n"


def test_infinite_timeout_is_the_maximum() -> None:
    assert encode_timeout(math.inf) == "99999999H"


def test_nan_timeout_is_rejected() -> None:
    with pytest.raises(ValueError, match="timeout"):
        encode_timeout(math.nan)


@pytest.mark.parametrize(
    ("wire", "seconds"),
    [
        ("1H", 3600.0),
        ("2M", 120.0),
        ("0S", 0.0),
        ("100m", 0.1),
        ("100000u", 0.1),
        ("1100000u", 1.1),
        ("100000000n", 0.1),  # 9 digits: too many (see test_malformed); 8 fit
        ("99999999n", 0.099999999),
        ("00000001S", 1.0),
        (b"5S", 5.0),
    ],
)
def test_decode_examples(wire: str | bytes, seconds: float) -> None:
    if isinstance(wire, str) and len(wire) > 9:
        with pytest.raises(ProtocolError):
            decode_timeout(wire)
    else:
        assert decode_timeout(wire) == seconds


@pytest.mark.parametrize(
    "wire",
    [
        "",
        "1",
        "S",
        "123456789S",
        "1x",
        "1s",
        "1h",
        "-1S",
        "+1S",
        " 1S",
        "1S ",
        "1 S",
        "1.5S",
        "1e3S",
        "0x1S",
        "1SS",
        "\u0661S",  # ARABIC-INDIC DIGIT ONE: str.isdigit() says yes
        "1€S",
        b"\xff1S",
        b"1\x00S",
    ],
)
def test_malformed(wire: str | bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_timeout(wire)
    assert info.value.code is StatusCode.INTERNAL


def test_eight_digits_limit() -> None:
    assert decode_timeout("99999999S") == 99_999_999.0
    with pytest.raises(ProtocolError):
        decode_timeout("100000000S")
    for unit in UNIT_SECONDS:
        value = encode_timeout(123_456_789 * UNIT_SECONDS[unit])
        assert len(value) <= 9


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.floats(min_value=1e-9, max_value=MAX_SECONDS, allow_nan=False),
        st.floats(min_value=1e-9, max_value=1e4),
        st.integers(min_value=1, max_value=10**9).map(lambda n: n / 1000),
    )
)
@example(0.1)
@example(1.1)
@example(1.0000000000004)
@example(0.30000000000000004)
def test_round_trip_never_early_and_within_one_unit(seconds: float) -> None:
    wire = encode_timeout(seconds)
    digits, unit = wire[:-1], wire[-1]
    assert 1 <= len(digits) <= 8
    assert digits.isdigit()
    decoded = decode_timeout(wire)
    assert decoded >= seconds
    # Late by at most one unit of the chosen precision (plus float rounding).
    assert decoded - seconds <= UNIT_SECONDS[unit] * (1 + 1e-9) + seconds * 1e-15


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=99_999_999), st.sampled_from(sorted(UNIT_SECONDS)))
def test_decode_any_valid_value(value: int, unit: str) -> None:
    decoded = decode_timeout(f"{value}{unit}")
    assert math.isclose(decoded, value * UNIT_SECONDS[unit], rel_tol=1e-15)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=12), st.text(max_size=12)))
def test_decode_garbage_raises_only_protocol_error(wire: bytes | str) -> None:
    result = outcome(decode_timeout, wire)
    if isinstance(result, ProtocolError):
        assert result.code is StatusCode.INTERNAL
    else:
        assert result >= 0


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_deadline_on_a_fake_clock() -> None:
    clock = FakeClock()
    deadline = Deadline.after(decode_timeout("100m"), clock=clock)
    assert deadline.when == pytest.approx(1000.1)
    assert not deadline.expired
    assert deadline.remaining() == pytest.approx(0.1)
    clock.advance(0.05)
    assert not deadline.expired
    assert deadline.remaining() == pytest.approx(0.05)
    clock.now = deadline.when
    assert deadline.expired
    assert deadline.remaining() == 0.0
    clock.advance(10)
    assert deadline.expired
    assert deadline.remaining() == 0.0


def test_deadline_zero_is_expired_at_once() -> None:
    clock = FakeClock()
    assert Deadline.after(0, clock=clock).expired
    assert Deadline.after(-5, clock=clock).remaining() == 0.0


def test_deadlines_compare_by_time_only() -> None:
    a, b = FakeClock(5.0), FakeClock(9.0)
    assert Deadline.after(4.0, clock=a) == Deadline.after(0.0, clock=b)
    assert Deadline(when=1.0) == Deadline(when=1.0, clock=a)
    assert "clock" not in repr(Deadline(when=1.0, clock=a))


def test_deadline_default_clock_is_monotonic() -> None:
    import time

    deadline = Deadline.after(3600)
    assert deadline.clock is time.monotonic
    assert 3599 < deadline.remaining() <= 3600
    assert not deadline.expired
