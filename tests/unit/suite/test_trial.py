"""The pure parts of a trial: its seed, its fault window and its record."""

from __future__ import annotations

from typing import Any

from chaoskit.report.metrics import fault_of
from chaoskit.results import FaultWindow, RunResults, TrialResult
from chaoskit.suite.trial import TrialRecord, trial_seed


def fault_window(chaoskit: dict[str, Any] | None) -> dict[str, Any]:
    return dict(RunResults.from_dict(chaoskit or {}).fault_window().to_dict())


def test_trial_seeds_repeat_per_trial_and_differ_between_trials() -> None:
    assert trial_seed("7", "pod-kill", 1) == trial_seed("7", "pod-kill", 1)
    assert len({trial_seed("7", "pod-kill", n) for n in range(1, 4)}) == 3
    assert trial_seed("7", "pod-kill", 1) != trial_seed("8", "pod-kill", 1)


def test_the_window_runs_from_the_first_injection_to_the_last_recovery() -> None:
    chaoskit = {
        "injections": [{"injected_at": 100.0}, {"injected_at": 110.0}],
        "recovery": [{"recovered_after_s": 5.0}, {"recovered_after_s": 2.5}],
    }
    assert fault_window(chaoskit) == {
        "injected_at": 100.0,
        "recovered_at": 112.5,
        "recovery_s": 12.5,
    }


def test_no_recovery_means_no_end_and_no_fault_means_no_window() -> None:
    chaoskit = {
        "injections": [{"injected_at": 100.0}],
        "recovery": [{"recovered_after_s": None}],
    }
    assert fault_window(chaoskit) == {
        "injected_at": 100.0,
        "recovered_at": None,
        "recovery_s": None,
    }
    assert fault_window(None)["injected_at"] is None
    assert fault_window({"injections": [], "recovery": []})["recovery_s"] is None


def test_the_runner_and_the_report_use_one_fault_window() -> None:
    chaoskit = {
        "injections": [{"injected_at": 100.0}, {"injected_at": 110.0}],
        "recovery": [{"recovered_after_s": 5.0}],  # the second never recovered
    }
    window = RunResults.from_dict(chaoskit).fault_window()
    assert window == FaultWindow(100.0, None)
    assert fault_of({}, chaoskit) == window


def test_a_trial_record_round_trips_through_trial_json_field_names() -> None:
    record = TrialRecord("pod-kill", "e.yaml", 2, "7-pod-kill-2", 50.0, status="failed")
    record.fault = FaultWindow(100.0, 112.5)
    record.mark("fault-injected", "x", 100.0)
    raw = record.to_dict()
    assert raw["fault"] == {"injected_at": 100.0, "recovered_at": 112.5, "recovery_s": 12.5}
    assert raw["status"] == "failed" and raw["trial"] == 2
    assert TrialResult.from_dict(raw) == record.to_result()
    # trial.json written before this model (no system check) still reads.
    old = {k: v for k, v in raw.items() if not k.startswith("system_")}
    assert TrialResult.from_dict(old).system_recovered is None
