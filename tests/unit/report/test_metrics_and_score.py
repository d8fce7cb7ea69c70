"""A trial's fault window, the load during it, recovery by component; the score."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from chaoskit.report import score
from chaoskit.report.metrics import Fault, Pad, fault_of, recovery_breakdown, spread, window_load
from chaoskit.report.rundir import Trial
from chaoskit.results import RunResults, SLOResult
from tests.unit.report.rundirs import INJECT_AFTER, T0, TrialSpec, write_trial


def _read(tmp_path: Path, **changes: object) -> Trial:
    spec = TrialSpec(**changes)  # type: ignore[arg-type]
    folder = write_trial(tmp_path / "run", spec)
    return Trial.read(spec.experiment, spec.trial, folder)


def test_the_fault_window_comes_from_trial_json_else_from_result_json(tmp_path: Path) -> None:
    trial = _read(tmp_path, recovery_s=7.5)
    injected = T0 + INJECT_AFTER
    assert fault_of(trial.info, trial.chaoskit) == Fault(injected, injected + 7.5)
    assert fault_of({}, trial.chaoskit).recovery_s == 7.5
    assert fault_of({"fault": {"injected_at": None}}, {}) == Fault(None, None)
    assert fault_of({"fault": {"injected_at": 10.0, "recovery_s": 2.0}}, {}).recovered_at == 12.0
    never = _read(tmp_path / "b", recovery_s=None)
    assert fault_of({}, never.chaoskit) == Fault(injected, None)


def test_load_over_the_padded_window(tmp_path: Path) -> None:
    trial = _read(tmp_path, recovery_s=4.0, error_seconds=2, failures_per_s=10, rps=50)
    frame = trial.frame
    assert frame is not None
    fault = fault_of(trial.info, trial.chaoskit)
    tight = window_load(frame, fault, Pad(0, 0))
    assert tight is not None
    # injected at 20.3, recovered at 24.3: the seconds 20..24; failing: 20, 21, 22.
    assert (tight.seconds, tight.requests, tight.failures) == (5, 250, 30)
    assert tight.error_rate_pct == pytest.approx(12.0)
    assert tight.p99_ms == 900 and not tight.open
    wide = window_load(frame, fault, Pad(10, 10))
    assert wide is not None and (wide.seconds, wide.failures) == (25, 30)
    assert window_load(frame, Fault(None, None)) is None
    assert window_load(frame, fault, endpoint="PATCH /x") is None


def test_recovery_by_component_for_a_replaced_pod(tmp_path: Path) -> None:
    trial = _read(tmp_path, recovery_s=4.0)
    assert recovery_breakdown(RunResults.from_dict(trial.chaoskit)) == {
        "controller_manager": 0.06,
        "scheduler": 0.03,
        "kubelet": 3.59,
        "endpoints": 0.2,
        "pod_total": 3.9,
        "desired_state": 4.0,
    }


def test_recovery_by_component_for_a_stopped_node(tmp_path: Path) -> None:
    trial = _read(tmp_path, fault="node", recovery_s=40.0)
    figures = recovery_breakdown(RunResults.from_dict(trial.chaoskit))
    # NotReady 20.5 s after the stop; Ready again 39.5 s after it, 24.5 s after the rollback.
    assert figures == {"node_not_ready": 20.5, "node_ready": 24.5, "desired_state": 40.0}


def test_recovery_medians_and_api_outages_over_injections() -> None:
    chaoskit = {
        "recovery": [
            {"pods": [{"replacement": "p", "phases": {"scheduler": s}, "total": s}
                      for s in (1.0, 2.0, 9.0)],
             "components": [{"ready": 5.0, "ready_after_rollback": 3.0}, {"ready": 7.0}],
             "api_outages": [{"seconds": 1.5}, {"seconds": None}],
             "recovered_after_s": 8.0},
            {"pods": [{"pod": "gone", "replacement": None}],
             "api_outages": [{"seconds": 2.0}], "recovered_after_s": 12.0},
        ]
    }  # fmt: skip
    assert recovery_breakdown(RunResults.from_dict(chaoskit)) == {
        "scheduler": 2.0,
        "pod_total": 2.0,
        "component_ready": 5.0,
        "api_outage": 3.5,
        "desired_state": 12.0,
    }
    assert recovery_breakdown(RunResults.from_dict({})) == {}


def test_spread() -> None:
    assert spread([3.0, None, 1.0, 2.0]).to_dict() == {
        "min": 1.0,
        "median": 2.0,
        "max": 3.0,
        "n": 3,
    }
    assert spread([None]).to_dict() == {"min": None, "median": None, "max": None, "n": 0}


def test_the_score_weighs_slos_and_trials_and_punishes_lost_orders() -> None:
    assert score.compute(["passed"] * 4, ["pass"] * 8, 0).value == 100.0
    # 3 of 4 trials, 6 of 8 SLO checks (an error counts as not passed).
    half = score.compute(["passed"] * 3 + ["failed"], ["pass"] * 6 + ["fail", "error"], 0)
    assert half.value == 75.0
    assert (half.slo_pass_share, half.trial_pass_share) == (0.75, 0.75)
    assert score.compute(["passed"] * 4, ["pass"] * 8, 2).value == 80.0
    assert score.compute(["passed"], ["pass"], 50).value == 0.0
    # Without SLOs the trials carry the whole weight; without trials there is nothing.
    assert score.compute(["passed", "errored"], [], 0).value == 50.0
    assert score.compute([], [], 0).value == 0.0
    as_dict = score.compute(["passed"], ["pass"], 0).to_dict()
    assert as_dict["formula"] == score.FORMULA
    json.dumps(as_dict)


def test_failed_requests_during_faults_and_slow_recovery_cost_points() -> None:
    statuses, slos = ["passed"] * 4, ["pass"] * 8
    perfect = score.compute(statuses, slos, 0, availabilities=[1.0] * 4, recovery_used=[0.0] * 4)
    assert perfect.value == 100.0
    # a tenth of the requests failed during every fault: the availability component is gone
    tenth = score.compute(statuses, slos, 0, availabilities=[0.9] * 4, recovery_used=[0.0] * 4)
    assert (tenth.availability_score, tenth.value) == (0.0, 75.0)
    one_pct = score.compute(statuses, slos, 0, availabilities=[0.99] * 4)
    assert one_pct.availability_score == pytest.approx(0.9)
    assert one_pct.value == round(100 * (1 + 1 + 0.9) / 3, 1)  # no recovery budget: left out
    # a trial without figures for its window counts 0; an unmeasured recovery too
    partial = score.compute(statuses, slos, 0, availabilities=[1.0, 1.0, 1.0, None])
    assert partial.availability_score == 0.75 and partial.availability_trials == 3
    half_budget = score.compute(statuses, slos, 0, recovery_used=[0.5, None, math.inf, None])
    assert half_budget.recovery_score == 0.25 and half_budget.recovery_trials == 2
    as_dict = tenth.to_dict()
    assert as_dict["components"] == [
        "availability_score", "recovery_score", "slo_pass_share", "trial_pass_share"
    ]  # fmt: skip
    assert as_dict["quality"] == 0.75 and as_dict["availability"] == 0.9


def test_the_recovery_budget_is_the_strictest_recovery_slo() -> None:
    results = [
        SLOResult("r60", "recovery_s", "pass", value=30.0, threshold=60),
        SLOResult("r40", "recovery_s", "pass", value=30.0, threshold=40),
        SLOResult("errors", "error_rate", "pass", value=1.0, threshold=5),
    ]
    assert score.recovery_budget_used(results) == 0.75
    assert score.recovery_budget_used(results[2:]) is None
    never = [SLOResult("recovery", "recovery_s", "fail", threshold=60)]
    assert score.recovery_budget_used(never) == math.inf
    assert score.trial_inputs(None, never).recovery_score == 0.0
