"""The pure parts of a trial: its seed and its fault window."""

from __future__ import annotations

from chaoskit.suite.trial import fault_window, trial_seed


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
