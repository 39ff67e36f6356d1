"""The service config (``grpc.service_config``), sans-IO: parsing, retry decisions, throttling.

What a channel takes from gRPC's service config (grpc's ``doc/service_config.md``, gRFC A6):
``methodConfig`` entries (``timeout``, ``waitForReady``, ``retryPolicy`` or ``hedgingPolicy``)
matched by ``service/method``, then by service, then by the default (empty) name;
``retryThrottling``; and the load-balancing choice. Nothing here does I/O or reads a clock:
:class:`RetryPlanner` takes a random source, so tests drive every decision without waiting.
The attempts themselves are made by ``_retry.RetryingStream``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .._core import StatusCode

__all__ = [
    "MAX_ATTEMPTS",
    "HedgingPolicy",
    "MethodConfig",
    "RetryPlan",
    "RetryPlanner",
    "RetryPolicy",
    "RetryThrottle",
    "ServiceConfig",
    "parse_duration",
    "parse_status_code",
]

MAX_ATTEMPTS = 5  # grpcio caps maxAttempts (retry and hedging) at 5
DEFAULT_RETRY_BUFFER = 256 * 1024  # grpc.per_rpc_retry_buffer_size
PUSHBACK_KEY = b"grpc-retry-pushback-ms"
PREVIOUS_ATTEMPTS_KEY = b"grpc-previous-rpc-attempts"

_DURATION = re.compile(r"^(\d+)?(?:\.(\d{0,9}))?s$")


def parse_duration(value: Any, what: str) -> float:
    """A proto3 JSON Duration (``"1.5s"``, ``".1s"``) in seconds."""
    if not isinstance(value, str):
        raise ValueError(f"{what}: a duration is a string such as '0.1s', not {value!r}")
    match = _DURATION.match(value)
    if match is None or (match.group(1) is None and not match.group(2)):
        raise ValueError(f"{what}: {value!r} is not a duration such as '0.1s'")
    whole, fraction = match.group(1) or "0", match.group(2) or ""
    return int(whole) + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def parse_status_code(value: Any, what: str) -> StatusCode:
    """A status code as the spec allows it: its name (``"UNAVAILABLE"``) or its number."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a status code")
    if isinstance(value, int):
        for code in StatusCode:
            if code.value[0] == value:
                return code
    elif isinstance(value, str) and value in StatusCode.__members__:
        return StatusCode[value]  # the name as the spec spells it: grpcio takes no other
    raise ValueError(f"{what}: {value!r} is not a status code")


def _codes(value: Any, what: str) -> frozenset[StatusCode]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{what} must be a non-empty list of status codes")
    return frozenset(parse_status_code(v, what) for v in value)


def _attempts(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ValueError(f"{what}.maxAttempts must be an integer, not {value!r}")
    if value < 2:
        raise ValueError(f"{what}.maxAttempts must be 2 or more, not {value!r}")
    return min(int(value), MAX_ATTEMPTS)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """``retryPolicy``: attempts one after another, with exponential backoff between them."""

    max_attempts: int
    initial_backoff: float
    max_backoff: float
    backoff_multiplier: float
    retryable_status_codes: frozenset[StatusCode]

    @classmethod
    def parse(cls, data: Any) -> RetryPolicy:
        what = "retryPolicy"
        if not isinstance(data, dict):
            raise ValueError(f"{what} must be an object")
        initial = parse_duration(data.get("initialBackoff"), f"{what}.initialBackoff")
        maximum = parse_duration(data.get("maxBackoff"), f"{what}.maxBackoff")
        multiplier = data.get("backoffMultiplier")
        if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)):
            raise ValueError(f"{what}.backoffMultiplier must be a number, not {multiplier!r}")
        if initial <= 0 or maximum <= 0 or multiplier <= 0:
            raise ValueError(f"{what}: backoffs and backoffMultiplier must be greater than zero")
        return cls(
            max_attempts=_attempts(data.get("maxAttempts"), what),
            initial_backoff=initial,
            max_backoff=maximum,
            backoff_multiplier=float(multiplier),
            retryable_status_codes=_codes(
                data.get("retryableStatusCodes"), f"{what}.retryableStatusCodes"
            ),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HedgingPolicy:
    """``hedgingPolicy``: attempts in parallel, one more every ``hedging_delay``."""

    max_attempts: int
    hedging_delay: float
    non_fatal_status_codes: frozenset[StatusCode]

    @classmethod
    def parse(cls, data: Any) -> HedgingPolicy:
        what = "hedgingPolicy"
        if not isinstance(data, dict):
            raise ValueError(f"{what} must be an object")
        delay = data.get("hedgingDelay")
        codes = data.get("nonFatalStatusCodes")
        return cls(
            max_attempts=_attempts(data.get("maxAttempts"), what),
            hedging_delay=0.0 if delay is None else parse_duration(delay, f"{what}.hedgingDelay"),
            # Optional in grpc's service_config.proto: without it every failure is fatal.
            non_fatal_status_codes=frozenset()
            if codes is None
            else frozenset(parse_status_code(c, f"{what}.nonFatalStatusCodes") for c in codes),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MethodConfig:
    """One ``methodConfig`` entry, as it applies to a call."""

    timeout: float | None = None
    wait_for_ready: bool | None = None
    retry: RetryPolicy | HedgingPolicy | None = None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> MethodConfig:
        timeout = data.get("timeout")
        wait_for_ready = data.get("waitForReady")
        if wait_for_ready is not None and not isinstance(wait_for_ready, bool):
            raise ValueError(f"methodConfig.waitForReady must be a boolean: {wait_for_ready!r}")
        if "retryPolicy" in data and "hedgingPolicy" in data:
            raise ValueError("methodConfig: retryPolicy and hedgingPolicy are exclusive")
        retry: RetryPolicy | HedgingPolicy | None = None
        if data.get("retryPolicy") is not None:
            retry = RetryPolicy.parse(data["retryPolicy"])
        elif data.get("hedgingPolicy") is not None:
            retry = HedgingPolicy.parse(data["hedgingPolicy"])
        return cls(
            timeout=None if timeout is None else parse_duration(timeout, "methodConfig.timeout"),
            wait_for_ready=wait_for_ready,
            retry=retry,
        )


class RetryThrottle:
    """``retryThrottling``: one token bucket per channel, in thousandths of a token.

    Starts full at ``max_tokens``; a retryable (or non-fatal) failure takes one token, a success
    gives back ``token_ratio``. Attempts after the first are made only while more than half of
    the tokens are left.
    """

    __slots__ = ("_max", "_milli", "_ratio")

    def __init__(self, max_tokens: int, token_ratio: float) -> None:
        self._max = max_tokens * 1000
        self._ratio = round(token_ratio * 1000)  # the spec keeps three decimal places
        self._milli = self._max

    @classmethod
    def parse(cls, data: Any) -> RetryThrottle:
        if not isinstance(data, dict):
            raise ValueError("retryThrottling must be an object")
        tokens, ratio = data.get("maxTokens"), data.get("tokenRatio")
        if isinstance(tokens, bool) or not isinstance(tokens, int) or not 0 < tokens <= 1000:
            raise ValueError(f"retryThrottling.maxTokens must be in 1..1000, not {tokens!r}")
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
            raise ValueError(f"retryThrottling.tokenRatio must be above zero, not {ratio!r}")
        return cls(tokens, float(ratio))

    @property
    def tokens(self) -> float:
        return self._milli / 1000

    @property
    def allows(self) -> bool:
        """May another attempt be made now?"""
        return self._milli > self._max // 2

    def record_success(self) -> None:
        self._milli = min(self._max, self._milli + self._ratio)

    def record_failure(self) -> bool:
        """Take a token for a failure; whether another attempt may still be made."""
        self._milli = max(0, self._milli - 1000)
        return self.allows


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """What one call needs to retry or hedge: its policy, the channel's throttle, and how many
    request bytes it may buffer for replay before it commits."""

    policy: RetryPolicy | HedgingPolicy
    throttle: RetryThrottle | None
    buffer_limit: int = DEFAULT_RETRY_BUFFER


def parse_pushback(value: bytes | None) -> float | None:
    """``grpc-retry-pushback-ms`` in seconds; None when absent, -1.0 when it says "stop"
    (negative, or not a number: gRFC A6 treats both as "do not retry")."""
    if value is None:
        return None
    try:
        ms = int(value)
    except ValueError:
        return -1.0
    return -1.0 if ms < 0 else ms / 1000


class RetryPlanner:
    """The decisions of one call's attempts (gRFC A6), with no I/O.

    ``decide(code, pushback)`` is told how an attempt ended before its response headers came
    (or that it got them: ``StatusCode.OK``), and answers how long to wait before the next
    attempt, or None when there is none and this outcome is the call's.
    """

    __slots__ = ("_backoff", "_random", "attempts", "committed", "plan", "policy")

    def __init__(self, plan: RetryPlan, rand: Callable[[], float] = random.random) -> None:
        self.plan = plan
        self.policy = plan.policy
        self._random = rand
        self._backoff = plan.policy.initial_backoff if isinstance(plan.policy, RetryPolicy) else 0.0
        self.attempts = 0  # attempts started
        self.committed = False  # no further attempt may start

    @property
    def hedging(self) -> bool:
        return isinstance(self.policy, HedgingPolicy)

    def may_start(self) -> bool:
        """May one more attempt start now (a hedge on its timer, or a retry)?"""
        if self.committed or self.attempts >= self.policy.max_attempts:
            return False
        throttle = self.plan.throttle
        return self.attempts == 0 or throttle is None or throttle.allows

    def started(self) -> int:
        """Count an attempt as started; its number of previous attempts."""
        self.attempts += 1
        return self.attempts - 1

    def commit(self) -> None:
        self.committed = True

    def decide(self, code: StatusCode, pushback: float | None) -> float | None:
        policy = self.policy
        throttle = self.plan.throttle
        if code is StatusCode.OK:
            if throttle is not None:
                throttle.record_success()
            return None
        codes = (
            policy.retryable_status_codes
            if isinstance(policy, RetryPolicy)
            else policy.non_fatal_status_codes
        )
        if code not in codes:
            return None
        if throttle is not None and not throttle.record_failure():
            return None
        if self.committed or self.attempts >= policy.max_attempts:
            return None
        if pushback is not None:
            if pushback < 0:
                return None
            if isinstance(policy, RetryPolicy):
                self._backoff = policy.initial_backoff  # A6: the next backoff starts over
            return pushback
        if isinstance(policy, HedgingPolicy):
            return 0.0  # a non-fatal failure sends the next hedge at once
        delay = self._random() * self._backoff
        self._backoff = min(self._backoff * policy.backoff_multiplier, policy.max_backoff)
        return delay


@dataclass(frozen=True, slots=True)
class _Name:
    service: str
    method: str


@dataclass(slots=True)
class ServiceConfig:
    """The parts of a parsed ``grpc.service_config`` a channel uses."""

    methods: dict[tuple[str, str], MethodConfig] = field(default_factory=dict)
    throttling: dict[str, Any] | None = None
    round_robin: bool = False

    @classmethod
    def parse(cls, text: str | None) -> ServiceConfig:
        if not text:
            return cls()
        try:
            data = json.loads(text)
        except ValueError:
            raise ValueError(f"JSON parsing failed: {text!r}") from None
        if not isinstance(data, dict):
            raise ValueError("errors validating service config: not a JSON object")
        try:
            return cls._from(data)
        except ValueError as exc:
            raise ValueError(f"errors validating service config: {exc}") from None

    @classmethod
    def _from(cls, data: dict[str, Any]) -> ServiceConfig:
        config = cls(round_robin=_wants_round_robin(data))
        for entry in data.get("methodConfig") or ():
            if not isinstance(entry, dict):
                raise ValueError("methodConfig entries must be objects")
            method_config = MethodConfig.parse(entry)
            for name in _names(entry.get("name") or ()):
                key = (name.service, name.method)
                if key in config.methods:
                    raise ValueError(f"methodConfig: duplicate name {name.service}/{name.method}")
                config.methods[key] = method_config
        throttling = data.get("retryThrottling")
        if throttling is not None:
            RetryThrottle.parse(throttling)  # validated now; each channel gets its own bucket
            config.throttling = throttling
        return config

    def lookup(self, path: bytes) -> MethodConfig | None:
        """The config for ``/service/method``: exact, then the service's, then the default."""
        if not self.methods:
            return None
        service, _, method = path.decode("ascii", "replace").lstrip("/").rpartition("/")
        methods = self.methods
        return methods.get((service, method)) or methods.get((service, "")) or methods.get(("", ""))

    def new_throttle(self) -> RetryThrottle | None:
        return None if self.throttling is None else RetryThrottle.parse(self.throttling)


def _names(names: Iterable[Any]) -> list[_Name]:
    result = []
    for name in names:
        if not isinstance(name, dict):
            raise ValueError("methodConfig.name entries must be objects")
        service, method = name.get("service") or "", name.get("method") or ""
        if not isinstance(service, str) or not isinstance(method, str):
            raise ValueError(f"methodConfig.name: service and method are strings: {name!r}")
        if method and not service:
            raise ValueError(f"methodConfig.name: a method needs its service: {name!r}")
        result.append(_Name(service, method))
    return result


def _wants_round_robin(data: dict[str, Any]) -> bool:
    if data.get("loadBalancingPolicy") == "round_robin":
        return True
    for entry in data.get("loadBalancingConfig", ()):
        if "round_robin" in entry:
            return True
        if "pick_first" in entry:
            return False
    return False
