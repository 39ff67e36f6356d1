"""The sans-IO half of retries: service config parsing, the retry planner and the throttle.

No sockets and no clock: the planner takes its random numbers from the test.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from asgi_grpc import StatusCode
from asgi_grpc.client._service_config import (
    HedgingPolicy,
    MethodConfig,
    RetryPlan,
    RetryPlanner,
    RetryPolicy,
    RetryThrottle,
    ServiceConfig,
    parse_duration,
    parse_pushback,
    parse_status_code,
)

RETRY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE", 10],
}
HEDGE = {"maxAttempts": 3, "hedgingDelay": "0.5s", "nonFatalStatusCodes": ["UNAVAILABLE"]}


def config(*entries: dict[str, Any], **extra: Any) -> ServiceConfig:
    return ServiceConfig.parse(json.dumps({"methodConfig": list(entries), **extra}))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("0.1s", 0.1), (".5s", 0.5), ("2.000000001s", 2.000000001), ("0s", 0.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "x") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["1", "s", "-1s", "1ms", "1.s5", 1, None, "1.0000000001s"])
def test_bad_durations(text: Any) -> None:
    with pytest.raises(ValueError, match="x"):
        parse_duration(text, "x")


def test_status_codes_by_name_or_number() -> None:
    assert parse_status_code("UNAVAILABLE", "x") is StatusCode.UNAVAILABLE
    assert parse_status_code(14, "x") is StatusCode.UNAVAILABLE
    for bad in ["unavailable", 99, True, None, "14"]:
        with pytest.raises(ValueError, match="not a status code"):
            parse_status_code(bad, "x")


def test_retry_policy() -> None:
    policy = RetryPolicy.parse(RETRY)
    assert policy == RetryPolicy(
        max_attempts=4,
        initial_backoff=0.1,
        max_backoff=1.0,
        backoff_multiplier=2.0,
        retryable_status_codes=frozenset({StatusCode.UNAVAILABLE, StatusCode.ABORTED}),
    )
    assert RetryPolicy.parse({**RETRY, "maxAttempts": 9}).max_attempts == 5  # grpcio's cap


@pytest.mark.parametrize(
    "change",
    [
        {"maxAttempts": 1},
        {"maxAttempts": 2.5},
        {"maxAttempts": None},
        {"initialBackoff": "0s"},
        {"maxBackoff": None},
        {"backoffMultiplier": 0},
        {"backoffMultiplier": "2"},
        {"retryableStatusCodes": []},
        {"retryableStatusCodes": ["NOPE"]},
    ],
)
def test_invalid_retry_policies(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="retryPolicy"):
        RetryPolicy.parse({**RETRY, **change})


def test_hedging_policy() -> None:
    assert HedgingPolicy.parse(HEDGE) == HedgingPolicy(
        max_attempts=3,
        hedging_delay=0.5,
        non_fatal_status_codes=frozenset({StatusCode.UNAVAILABLE}),
    )
    bare = HedgingPolicy.parse({"maxAttempts": 2})
    assert bare.hedging_delay == 0.0
    assert bare.non_fatal_status_codes == frozenset()


def test_method_lookup_precedence() -> None:
    parsed = config(
        {"name": [{"service": "a.S", "method": "M"}], "timeout": "1s"},
        {"name": [{"service": "a.S"}], "timeout": "2s", "waitForReady": True},
        {"name": [{}], "timeout": "3s"},
    )
    assert parsed.lookup(b"/a.S/M") == MethodConfig(timeout=1.0)
    assert parsed.lookup(b"/a.S/N") == MethodConfig(timeout=2.0, wait_for_ready=True)
    assert parsed.lookup(b"/b.S/M") == MethodConfig(timeout=3.0)
    assert config({"name": [{"service": "a.S"}]}).lookup(b"/b.S/M") is None
    assert ServiceConfig.parse(None).lookup(b"/a.S/M") is None


def test_policies_in_method_config() -> None:
    parsed = config(
        {"name": [{"service": "a.S"}], "retryPolicy": RETRY},
        {"name": [{"service": "b.S"}], "hedgingPolicy": HEDGE},
    )
    assert isinstance((parsed.lookup(b"/a.S/M") or MethodConfig()).retry, RetryPolicy)
    assert isinstance((parsed.lookup(b"/b.S/M") or MethodConfig()).retry, HedgingPolicy)


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "{",
        json.dumps(
            {"methodConfig": [{"name": [{}], "retryPolicy": RETRY, "hedgingPolicy": HEDGE}]}
        ),
        json.dumps({"methodConfig": [{"name": [{"method": "M"}]}]}),
        json.dumps({"methodConfig": [{"name": [{}]}, {"name": [{}]}]}),
        json.dumps({"methodConfig": [{"name": [{}], "waitForReady": "yes"}]}),
        json.dumps({"retryThrottling": {"maxTokens": 10}}),
        json.dumps({"retryThrottling": {"maxTokens": 1001, "tokenRatio": 1}}),
    ],
)
def test_invalid_service_configs(text: str) -> None:
    with pytest.raises(ValueError, match=r"JSON|service config"):
        ServiceConfig.parse(text)


def test_load_balancing() -> None:
    assert ServiceConfig.parse('{"loadBalancingPolicy": "round_robin"}').round_robin
    assert ServiceConfig.parse('{"loadBalancingConfig": [{"round_robin": {}}]}').round_robin
    assert not ServiceConfig.parse('{"loadBalancingConfig": [{"pick_first": {}}]}').round_robin


def test_throttle() -> None:
    throttle = RetryThrottle(10, 0.5)
    assert throttle.allows
    for _ in range(4):
        assert throttle.record_failure()  # 9, 8, 7, 6: above half
    assert not throttle.record_failure()  # 5: no more retries
    throttle.record_success()  # 5.5
    assert throttle.allows
    assert throttle.tokens == 5.5
    for _ in range(20):
        throttle.record_success()
    assert throttle.tokens == 10  # never above maxTokens
    for _ in range(20):
        throttle.record_failure()
    assert throttle.tokens == 0  # nor below zero


def test_throttle_keeps_three_decimals() -> None:
    throttle = RetryThrottle(2, 0.0011)
    throttle.record_failure()
    throttle.record_success()
    assert throttle.tokens == 1.001


def planner(policy: Any, throttle: RetryThrottle | None = None, rand: float = 1.0) -> RetryPlanner:
    return RetryPlanner(RetryPlan(policy, throttle), rand=lambda: rand)


def test_backoff_grows_to_its_maximum() -> None:
    plan = planner(RetryPolicy.parse({**RETRY, "maxAttempts": 5, "maxBackoff": "0.3s"}))
    delays = []
    while plan.may_start():
        plan.started()
        delays.append(plan.decide(StatusCode.UNAVAILABLE, None))
    # random(0, min(initial * multiplier**(n-1), max)) with random() = 1.0
    assert delays == [pytest.approx(0.1), pytest.approx(0.2), pytest.approx(0.3), 0.3, None]


def test_backoff_is_jittered_down_from_its_bound() -> None:
    plan = planner(RetryPolicy.parse(RETRY), rand=0.25)
    plan.started()
    assert plan.decide(StatusCode.UNAVAILABLE, None) == pytest.approx(0.025)


def test_outcomes_that_end_the_call() -> None:
    plan = planner(RetryPolicy.parse(RETRY))
    plan.started()
    assert plan.decide(StatusCode.OK, None) is None
    assert plan.decide(StatusCode.INVALID_ARGUMENT, None) is None
    assert plan.decide(StatusCode.UNAVAILABLE, -1.0) is None  # pushback: do not retry
    plan.commit()
    assert plan.decide(StatusCode.UNAVAILABLE, None) is None
    assert not plan.may_start()


def test_pushback_sets_the_delay_and_resets_the_backoff() -> None:
    plan = planner(RetryPolicy.parse(RETRY))
    plan.started()
    assert plan.decide(StatusCode.UNAVAILABLE, None) == pytest.approx(0.1)
    plan.started()
    assert plan.decide(StatusCode.UNAVAILABLE, 7.0) == 7.0
    plan.started()
    assert plan.decide(StatusCode.UNAVAILABLE, None) == pytest.approx(0.1)  # from initial again


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, None), (b"0", 0.0), (b"250", 0.25), (b"-1", -1.0), (b"x", -1.0)]
)
def test_pushback_values(value: bytes | None, seconds: float | None) -> None:
    assert parse_pushback(value) == seconds


def test_throttled_retries() -> None:
    throttle = RetryThrottle(4, 1)
    plan = planner(RetryPolicy.parse(RETRY), throttle)
    plan.started()
    assert plan.decide(StatusCode.UNAVAILABLE, None) is not None  # 3 tokens
    plan.started()
    assert plan.decide(StatusCode.UNAVAILABLE, None) is None  # 2: at half, throttled
    assert plan.decide(StatusCode.INVALID_ARGUMENT, None) is None
    assert throttle.tokens == 2  # a non-retryable failure takes no token
    other = planner(RetryPolicy.parse(RETRY), throttle)
    assert other.may_start()  # a first attempt is always sent
    other.started()
    assert not other.may_start()


def test_hedging_decisions() -> None:
    plan = planner(HedgingPolicy.parse(HEDGE))
    assert plan.hedging
    plan.started()
    plan.started()
    assert plan.decide(StatusCode.UNAVAILABLE, None) == 0.0  # next hedge at once
    assert plan.decide(StatusCode.UNAVAILABLE, 2.0) == 2.0  # ... or when pushed back
    assert plan.decide(StatusCode.INTERNAL, None) is None  # fatal
    plan.started()
    assert not plan.may_start()  # maxAttempts
    assert plan.decide(StatusCode.UNAVAILABLE, None) is None
