"""wait_converged without a cluster: the desired state must go on holding ``stable_for``
seconds, and a lapse starts the wait again (and is noted)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chaoskit.probes import oracle
from chaoskit.probes.oracle import DesiredState, Verdict


class FakeInformer:
    key = "Pod/shop"
    healthy = True
    last_change_at = 1.0

    def add_listener(self, listener: Any) -> None:
        pass

    def remove_listener(self, listener: Any) -> None:
        pass


class FakeInformers:
    def resync(self, used: Any) -> bool:
        return True


def converge_with(
    monkeypatch: pytest.MonkeyPatch, states: list[bool], **kw: Any
) -> tuple[Verdict, int]:
    """Runs wait_converged over ``states`` (one per check, the last one repeats)."""
    checks = iter(states)
    last = [states[-1]]
    calls = [0]

    def check(informers: Any, desired: Any) -> Verdict:
        calls[0] += 1
        ok = next(checks, last[0])
        return Verdict(ok, () if ok else ("deployment/web: 1 of 2 replicas Ready",), time.time())

    monkeypatch.setattr(oracle, "observe", lambda *a, **k: (None, [FakeInformer()]))
    monkeypatch.setattr(oracle, "check", check)
    monkeypatch.setattr(oracle, "RECHECK_S", 0.05)
    desired = DesiredState(namespaces=("shop",), objects=(), recorded_at=time.time())
    verdict = oracle.wait_converged(FakeInformers(), desired, **kw)  # type: ignore[arg-type]
    return verdict, calls[0]


def test_without_stable_for_the_first_holding_state_is_the_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verdict, calls = converge_with(monkeypatch, [True], timeout=5)
    assert verdict.ok and calls == 1 and verdict.notes == ()


def test_the_state_must_hold_for_stable_for_and_a_lapse_is_noted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = time.monotonic()
    verdict, calls = converge_with(
        monkeypatch, [True, False, False, True], timeout=10, stable_for=0.3
    )
    assert verdict.ok
    assert calls >= 5  # held, lapsed, lapsed, held again, still holding
    assert time.monotonic() - started >= 0.3
    first = verdict.notes[0]
    assert first.startswith("held ") and "then lapsed: deployment/web" in first
    assert verdict.notes[-1].startswith("held for ")


def test_a_state_that_keeps_lapsing_fails_at_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    verdict, _ = converge_with(monkeypatch, [True, False], timeout=0.5, stable_for=5)
    assert not verdict.ok
    assert verdict.problems == ("deployment/web: 1 of 2 replicas Ready",)
    assert any("then lapsed" in n for n in verdict.notes)


def test_a_deadline_inside_the_stability_window_is_not_recovered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The state holds from the first check, but the deadline comes before stable_for.
    verdict, _ = converge_with(monkeypatch, [True], timeout=0.3, stable_for=5)
    assert not verdict.ok
    (problem,) = verdict.problems
    assert problem.startswith("the desired state held only ")
    assert "of the required stable_for 5 s" in problem
