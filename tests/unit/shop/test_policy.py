"""The gateway's retry, timeout and circuit-breaker rules."""

from __future__ import annotations

import pytest

from chaoskit.topology.shop.policy import (
    CircuitBreaker,
    RetryPolicy,
    failure_status,
    may_retry,
    worth_retrying,
)


@pytest.mark.parametrize(
    ("method", "has_key", "expected"),
    [
        ("GET", False, True),
        ("get", False, True),
        ("POST", False, False),
        ("POST", True, True),
        ("PUT", False, False),
    ],
)
def test_only_repeatable_requests_are_retried(method: str, has_key: bool, expected: bool) -> None:
    assert may_retry(method, has_key) is expected
    assert RetryPolicy(attempts=3).attempts_for(method, has_key) == (3 if expected else 1)


def test_only_failures_another_attempt_may_cure_are_retried() -> None:
    assert worth_retrying("refused")
    assert worth_retrying("timeout")
    assert worth_retrying("error")
    assert worth_retrying("http_5xx", 503)
    assert not worth_retrying("http_5xx", 500)
    assert not worth_retrying("ok", 200)
    assert not worth_retrying("circuit_open")


def test_failures_map_to_gateway_statuses() -> None:
    assert failure_status("refused") == (503, "backend_unavailable")
    assert failure_status("circuit_open") == (503, "backend_unavailable")
    assert failure_status("timeout") == (504, "backend_timeout")
    assert failure_status("error") == (502, "bad_gateway")


def test_backoff_grows_is_jittered_and_capped() -> None:
    policy = RetryPolicy(base_backoff_s=0.01, multiplier=4, max_backoff_s=0.25)
    assert policy.backoff(1, rand=lambda: 1.0) == pytest.approx(0.01)
    assert policy.backoff(1, rand=lambda: 0.0) == pytest.approx(0.005)
    assert policy.backoff(2, rand=lambda: 1.0) == pytest.approx(0.04)
    assert policy.backoff(9, rand=lambda: 1.0) == pytest.approx(0.25)


def test_a_refused_backend_costs_well_under_100_ms_of_pauses() -> None:
    policy = RetryPolicy(attempts=3)
    total = sum(policy.backoff(n, rand=lambda: 1.0) for n in range(1, policy.attempts))
    assert total < 0.1


def test_no_retry_past_the_deadline_and_timeouts_shrink_to_fit() -> None:
    policy = RetryPolicy(attempt_timeout_s=2.0, deadline_s=5.0)
    assert policy.next_pause(1, elapsed_s=1.0, rand=lambda: 1.0) is not None
    assert policy.next_pause(1, elapsed_s=4.999, rand=lambda: 1.0) is None
    assert policy.timeout_for(0.0) == 2.0
    assert policy.timeout_for(4.0) == pytest.approx(1.0)
    assert policy.timeout_for(6.0) == pytest.approx(0.01)


def state(breaker: CircuitBreaker) -> str:
    return breaker.state


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_when_nearly_all_recent_attempts_failed() -> None:
    clock = Clock()
    breaker = CircuitBreaker(min_calls=3, failure_ratio=0.8, open_s=2.0, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record(transport_ok=False)
    assert state(breaker) == "closed"  # too few calls to judge
    breaker.record(transport_ok=False)
    assert state(breaker) == "open"
    assert not breaker.allow()


def test_half_the_attempts_failing_does_not_open_the_breaker() -> None:
    """One of two pods dead: retries reach the live one; failing fast would hurt."""
    breaker = CircuitBreaker(clock=Clock())
    for _ in range(20):
        breaker.record(transport_ok=False)
        breaker.record(transport_ok=False)
        breaker.record(transport_ok=True)
    assert state(breaker) == "closed"


def test_old_failures_leave_the_window() -> None:
    clock = Clock()
    breaker = CircuitBreaker(min_calls=3, failure_ratio=0.8, window_s=10.0, clock=clock)
    breaker.record(transport_ok=False)
    breaker.record(transport_ok=False)
    clock.now += 11
    breaker.record(transport_ok=False)
    assert state(breaker) == "closed"


def test_half_open_lets_one_trial_through_then_closes_or_reopens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(min_calls=1, open_s=2.0, clock=clock)
    breaker.record(transport_ok=False)
    assert state(breaker) == "open"
    clock.now += 2.5
    assert state(breaker) == "half-open"
    assert breaker.allow()
    assert not breaker.allow()  # one trial at a time
    breaker.record(transport_ok=False)
    assert state(breaker) == "open"  # the trial failed: open for another period
    clock.now += 2.5
    assert breaker.allow()
    breaker.record(transport_ok=True)
    assert state(breaker) == "closed"
    assert breaker.allow()
