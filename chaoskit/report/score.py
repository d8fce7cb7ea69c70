"""The resilience score: one number from 0 to 100 for a whole run.

    score = max(0, 100 * quality - 10 * lost_orders)
    quality = mean of the components the run has (each 0..1, equal weights):
      trial_pass_share, slo_pass_share, availability_score, recovery_score

- ``trial_pass_share``: trials whose status is ``passed`` / all trials.
- ``slo_pass_share``: passed SLO checks / all SLO checks over every trial; an SLO that
  could not be judged (``error``) counts as not passed. Left out without SLO checks.
- ``availability_score``: what clients saw during the faults. Per trial, the availability
  is successful / all requests (every endpoint) in its fault window, padded as the
  reports pad it (0 s before, 5 s after); it scores ``(availability - 0.90) / 0.10``,
  clamped to 0..1, so each percent of failed requests costs a tenth of the component and
  10 % or more costs all of it. The component is the mean over the trials; a trial
  without figures for its window (no load, no fault injected) scores 0. Left out when no
  trial of the run had load.
- ``recovery_score``: recovery against its budget. Per trial whose experiment has a
  ``recovery_s`` SLO (``<`` or ``<=``), ``1 - recovery_s / threshold``, clamped to 0..1:
  an instant recovery scores 1, one that used the whole budget (or never came back, or
  was not measured) 0. The component is the mean over those trials (the strictest SLO
  where a trial has several); left out when none has one.
- ``lost_orders``: lost + duplicated + mismatched orders over every trial's ledger. An
  acknowledged order that is gone is the worst outcome, so each one costs 10 points. On a
  system of one's own, which has no ledger, each violation its invariant checks report
  counts the same way.

Two runs whose SLOs all pass still score apart when one failed more requests during its
faults or took longer to recover. A run without trials scores 0. The score is rounded to
one decimal; every component is kept in summary.json's ``score``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from chaoskit.results import DuringFault, SLOResult, TrialScoreParts

FORMULA = (
    "score = max(0, 100 * quality - 10 * lost_orders); quality = mean of the components "
    "present: trial_pass_share (passed trials / all), slo_pass_share (passed SLO checks / "
    "all, error = not passed; absent without SLO checks), availability_score (mean over "
    "trials of clamp((availability - 0.90) / 0.10, 0, 1), availability = successful / all "
    "requests in the trial's fault window, 0 for a trial without figures; absent without "
    "load), recovery_score (mean over trials with a recovery_s SLO of "
    "clamp(1 - recovery_s / threshold, 0, 1), 0 if not recovered; absent without one); "
    "lost_orders = lost + duplicated + mismatched orders over all trials (a system's "
    "invariant violations count as such); 0 without trials"
)
AVAILABILITY_FLOOR = 0.90
"""Availability in a fault window at or below which the availability component is 0."""
POINTS_PER_LOST_ORDER = 10.0
RECOVERY_OPS = ("<", "<=")


def availability(during_fault: DuringFault | None) -> float | None:
    """Successful / all requests of a trial's fault window (summary.json's
    ``during_fault``); None when there were no requests to count."""
    if during_fault is None or during_fault.missing is not None or during_fault.requests <= 0:
        return None
    return max(0.0, 1.0 - during_fault.failures / during_fault.requests)


def recovery_budget_used(slo_results: Sequence[SLOResult]) -> float | None:
    """The share of its recovery budget a trial used (the strictest ``recovery_s`` SLO):
    ``recovery_s / threshold``; ``inf`` when it did not recover or was not measured;
    None when the trial has no recovery budget."""
    used: list[float] = []
    for result in slo_results:
        threshold, value = result.threshold, result.value
        if result.kind != "recovery_s" or result.op not in RECOVERY_OPS:
            continue
        if threshold is None or threshold <= 0:
            continue
        if result.status == "error" or value is None:
            used.append(math.inf)
        else:
            used.append(float(value) / float(threshold))
    return max(used) if used else None


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def availability_score(value: float) -> float:
    return _clamp((value - AVAILABILITY_FLOOR) / (1.0 - AVAILABILITY_FLOOR))


def recovery_score(used: float) -> float:
    return _clamp(1.0 - used)


def trial_inputs(
    during_fault: DuringFault | None, slo_results: Sequence[SLOResult]
) -> TrialScoreParts:
    """What one trial gives the score (summary.json's ``trials[].score``)."""
    measured = availability(during_fault)
    used = recovery_budget_used(slo_results)
    return TrialScoreParts(
        availability=measured,
        availability_score=availability_score(measured) if measured is not None else None,
        recovery_budget_used=used if used is not None and math.isfinite(used) else None,
        recovery_score=recovery_score(used) if used is not None else None,
    )


@dataclass(frozen=True)
class Score:
    value: float
    trials: int
    trials_passed: int
    slo_checks: int
    slo_passed: int
    lost_orders: int
    availability: float | None = None
    """Mean availability over the trials that measured one."""
    availability_trials: int = 0
    """Trials that measured their availability."""
    availability_score: float | None = None
    recovery_score: float | None = None
    recovery_trials: int = 0
    """Trials with a recovery budget."""

    @property
    def trial_pass_share(self) -> float | None:
        return self.trials_passed / self.trials if self.trials else None

    @property
    def slo_pass_share(self) -> float | None:
        return self.slo_passed / self.slo_checks if self.slo_checks else None

    @property
    def components(self) -> dict[str, float]:
        """The components present (each 0..1), whose mean is the quality."""
        present = {
            "trial_pass_share": self.trial_pass_share,
            "slo_pass_share": self.slo_pass_share,
            "availability_score": self.availability_score,
            "recovery_score": self.recovery_score,
        }
        return {k: v for k, v in present.items() if v is not None}

    @property
    def quality(self) -> float | None:
        parts = self.components
        return statistics.fmean(parts.values()) if parts else None

    def to_dict(self) -> dict[str, Any]:
        def share(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "value": self.value,
            "formula": FORMULA,
            "quality": share(self.quality),
            "components": sorted(self.components),
            "trial_pass_share": share(self.trial_pass_share),
            "slo_pass_share": share(self.slo_pass_share),
            "availability_score": share(self.availability_score),
            "recovery_score": share(self.recovery_score),
            "availability": share(self.availability),
            "availability_floor": AVAILABILITY_FLOOR,
            "availability_trials": self.availability_trials,
            "recovery_trials": self.recovery_trials,
            "lost_orders": self.lost_orders,
            "lost_order_points": POINTS_PER_LOST_ORDER * self.lost_orders,
            "slo_checks": self.slo_checks,
            "slo_passed": self.slo_passed,
            "trials": self.trials,
            "trials_passed": self.trials_passed,
        }


def compute(
    trial_statuses: Sequence[str],
    slo_statuses: Sequence[str],
    lost_orders: int,
    *,
    availabilities: Sequence[float | None] = (),
    recovery_used: Sequence[float | None] = (),
) -> Score:
    """The score of a run from its trials' statuses, its SLO results and its lost orders;
    ``availabilities`` (:func:`availability`) and ``recovery_used``
    (:func:`recovery_budget_used`) have one entry per trial, None where not applicable."""
    trials = len(trial_statuses)
    passed = sum(1 for s in trial_statuses if s == "passed")
    checks = len(slo_statuses)
    slo_passed = sum(1 for s in slo_statuses if s == "pass")
    measured = [a for a in availabilities if a is not None]
    avail_score = (
        statistics.fmean(availability_score(a) if a is not None else 0.0 for a in availabilities)
        if measured
        else None
    )
    budgets = [u for u in recovery_used if u is not None]
    rec_score = statistics.fmean(recovery_score(u) for u in budgets) if budgets else None
    score = Score(
        value=0.0,
        trials=trials,
        trials_passed=passed,
        slo_checks=checks,
        slo_passed=slo_passed,
        lost_orders=lost_orders,
        availability=statistics.fmean(measured) if measured else None,
        availability_trials=len(measured),
        availability_score=avail_score,
        recovery_score=rec_score,
        recovery_trials=len(budgets),
    )
    quality = score.quality
    if not trials or quality is None:
        return score
    value = max(0.0, 100 * quality - POINTS_PER_LOST_ORDER * lost_orders)
    return replace(score, value=round(value, 1))
