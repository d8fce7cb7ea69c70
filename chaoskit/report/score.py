"""The resilience score: one number from 0 to 100 for a whole run.

    score = max(0, 100 * (0.5 * slo_pass_share + 0.5 * trial_pass_share) - 10 * lost_orders)

- ``slo_pass_share``: passed SLO checks / all SLO checks over every trial; an SLO that
  could not be judged (``error``) counts as not passed. Without SLOs it is
  ``trial_pass_share``, so the trials carry the whole weight.
- ``trial_pass_share``: trials whose status is ``passed`` / all trials.
- ``lost_orders``: lost + duplicated + mismatched orders over every trial's ledger. An
  acknowledged order that is gone is the worst outcome, so each one costs 10 points.

A run without trials scores 0. The score is rounded to one decimal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FORMULA = (
    "score = max(0, 100 * (0.5 * slo_pass_share + 0.5 * trial_pass_share) - 10 * lost_orders); "
    "slo_pass_share = passed SLO checks / all SLO checks (error counts as not passed; "
    "trial_pass_share when there are no SLO checks); trial_pass_share = passed trials / "
    "all trials; lost_orders = lost + duplicated + mismatched orders over all trials; "
    "0 without trials"
)
SLO_WEIGHT = 0.5
TRIAL_WEIGHT = 0.5
POINTS_PER_LOST_ORDER = 10.0


@dataclass(frozen=True)
class Score:
    value: float
    trials: int
    trials_passed: int
    slo_checks: int
    slo_passed: int
    lost_orders: int

    @property
    def trial_pass_share(self) -> float | None:
        return self.trials_passed / self.trials if self.trials else None

    @property
    def slo_pass_share(self) -> float | None:
        return self.slo_passed / self.slo_checks if self.slo_checks else None

    def to_dict(self) -> dict[str, Any]:
        def share(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "value": self.value,
            "formula": FORMULA,
            "slo_pass_share": share(self.slo_pass_share),
            "trial_pass_share": share(self.trial_pass_share),
            "lost_orders": self.lost_orders,
            "slo_checks": self.slo_checks,
            "slo_passed": self.slo_passed,
            "trials": self.trials,
            "trials_passed": self.trials_passed,
        }


def compute(trial_statuses: Sequence[str], slo_statuses: Sequence[str], lost_orders: int) -> Score:
    """The score of a run from its trials' statuses, its SLO results and its lost orders."""
    trials = len(trial_statuses)
    passed = sum(1 for s in trial_statuses if s == "passed")
    checks = len(slo_statuses)
    slo_passed = sum(1 for s in slo_statuses if s == "pass")
    if not trials:
        value = 0.0
    else:
        trial_share = passed / trials
        slo_share = slo_passed / checks if checks else trial_share
        raw = 100 * (SLO_WEIGHT * slo_share + TRIAL_WEIGHT * trial_share)
        value = max(0.0, raw - POINTS_PER_LOST_ORDER * lost_orders)
    return Score(round(value, 1), trials, passed, checks, slo_passed, lost_orders)
