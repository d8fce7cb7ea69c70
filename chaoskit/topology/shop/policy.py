"""The gateway's rules for calling backends: when to retry, how long to wait, when to give up.

Pure logic, no I/O, so that it is tested without a network:

- a request is retried only if repeating it cannot do harm: GET/HEAD, or a request that
  carries an Idempotency-Key (the backend answers a repeat with the first result);
- only failures that another attempt may cure are retried: connection refused or reset,
  timeouts, and 502/503/504 answers;
- pauses between attempts are short and jittered (a refused connection is usually one
  dead pod behind a Service; the next connection likely reaches a live one), and all
  attempts together stay within one deadline;
- a circuit breaker per backend turns a backend whose attempts (nearly) all fail at the
  transport level into an immediate 503 for a short while, instead of every request
  paying the timeouts.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["ok", "http_5xx", "refused", "timeout", "error", "circuit_open"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRYABLE_STATUS = frozenset({502, 503, 504})


def may_retry(method: str, has_idempotency_key: bool) -> bool:
    return method.upper() in SAFE_METHODS or has_idempotency_key


def worth_retrying(outcome: Outcome, status: int | None = None) -> bool:
    if outcome in ("refused", "timeout", "error"):
        return True
    return outcome == "http_5xx" and status in RETRYABLE_STATUS


def classify_status(status: int) -> Outcome:
    return "http_5xx" if status >= 500 else "ok"


def failure_status(outcome: Outcome) -> tuple[int, str]:
    """The status and error code the gateway answers with when no attempt got a response."""
    if outcome == "timeout":
        return 504, "backend_timeout"
    if outcome == "error":
        return 502, "bad_gateway"
    return 503, "backend_unavailable"  # refused, or the circuit is open


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    """Tries in all, for requests that may be retried (others get exactly one)."""
    attempt_timeout_s: float = 2.0
    connect_timeout_s: float = 0.5
    deadline_s: float = 5.0
    """All attempts and pauses of one request together."""
    base_backoff_s: float = 0.01
    multiplier: float = 4.0
    max_backoff_s: float = 0.25

    def backoff(self, failed_attempts: int, rand: Callable[[], float] = random.random) -> float:
        """Pause after the n-th failed attempt: exponential, jittered to 50-100 %."""
        ceiling = min(
            self.max_backoff_s, self.base_backoff_s * self.multiplier ** (failed_attempts - 1)
        )
        return ceiling * (0.5 + 0.5 * rand())

    def attempts_for(self, method: str, has_idempotency_key: bool) -> int:
        return self.attempts if may_retry(method, has_idempotency_key) else 1

    def next_pause(
        self, failed_attempts: int, elapsed_s: float, rand: Callable[[], float] = random.random
    ) -> float | None:
        """The pause before another attempt, or None if it would not fit the deadline."""
        pause = self.backoff(failed_attempts, rand)
        remaining = self.deadline_s - elapsed_s - pause
        return pause if remaining >= min(0.05, self.attempt_timeout_s) else None

    def timeout_for(self, elapsed_s: float) -> float:
        """This attempt's time limit: the per-attempt limit, cut to what the deadline leaves."""
        return max(0.01, min(self.attempt_timeout_s, self.deadline_s - elapsed_s))


class CircuitBreaker:
    """Opens when nearly every recent attempt failed at the transport level.

    Closed → open when, of the attempts in the last ``window_s`` (at least ``min_calls``),
    a share of ``failure_ratio`` or more failed → after ``open_s``, one trial (half-open) →
    closed on success, open again on failure. A ratio rather than a run of failures: with
    one of two pods dead behind a Service, about half the attempts fail, retries reach the
    live pod, and opening the circuit would turn that partial outage into a total one.
    """

    def __init__(
        self,
        min_calls: int = 10,
        failure_ratio: float = 0.9,
        window_s: float = 10.0,
        open_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_calls = min_calls
        self.failure_ratio = failure_ratio
        self.window_s = window_s
        self.open_s = open_s
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: deque[tuple[float, bool]] = deque(maxlen=max(50, min_calls))
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> Literal["closed", "open", "half-open"]:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._clock() - self._opened_at < self.open_s:
                return "open"
            return "half-open"

    def allow(self) -> bool:
        """Whether a call may go out now (in half-open state: only one trial at a time)."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._clock() - self._opened_at < self.open_s or self._trial_running:
                return False
            self._trial_running = True
            return True

    def record(self, transport_ok: bool) -> None:
        with self._lock:
            now = self._clock()
            was_trial, self._trial_running = self._trial_running, False
            if self._opened_at is not None and was_trial:
                if transport_ok:
                    self._opened_at = None
                    self._recent.clear()
                else:
                    self._opened_at = now
                return
            self._recent.append((now, transport_ok))
            while self._recent and now - self._recent[0][0] > self.window_s:
                self._recent.popleft()
            failures = sum(1 for _, ok in self._recent if not ok)
            if (
                self._opened_at is None
                and len(self._recent) >= self.min_calls
                and failures >= self.failure_ratio * len(self._recent)
            ):
                self._opened_at = now
