"""After each trial the system must serve end to end again within the suite's deadline;
the trial that broke it fails, and the trials after it do not run (fake checks: no
network)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chaoskit.errors import OperationFailed
from chaoskit.results import FAILED, PASSED, TrialResult
from chaoskit.suite import runner
from chaoskit.suite.runner import Prepared, SuiteRun, judge_serving
from chaoskit.suite.spec import load_suite
from chaoskit.suite.trial import TrialRecord

SUITES = Path(__file__).resolve().parents[3] / "experiments" / "suites"


def _record() -> TrialRecord:
    return TrialRecord("node-restart", "e.yaml", 1, "s", 0.0, status=PASSED)


def test_a_system_that_serves_again_leaves_the_trial_as_it_was(tmp_path: Path) -> None:
    record = _record()
    deadlines: list[float] = []
    assert judge_serving(record, tmp_path, deadlines.append, 180.0)
    assert deadlines == [180.0]
    saved = TrialResult.from_dict(json.loads((tmp_path / "trial.json").read_text()))
    assert saved.status == PASSED and saved.system_recovered is True


def test_a_trial_that_leaves_the_system_broken_fails(tmp_path: Path) -> None:
    record = _record()

    def broken(deadline: float) -> None:
        raise OperationFailed("order stored, no notification")

    assert not judge_serving(record, tmp_path, broken, 30.0)
    saved = TrialResult.from_dict(json.loads((tmp_path / "trial.json").read_text()))
    assert saved.status == FAILED
    assert saved.system_recovered is False
    assert saved.reasons[0].startswith("the system did not come back")
    assert "within 30 s" in saved.reasons[0] and "no notification" in saved.reasons[0]


class _Progress:
    @contextmanager
    def task(self, description: str) -> Any:
        yield

    def note(self, message: str) -> None:
        pass


def test_the_suite_checks_after_every_trial_and_stops_after_a_broken_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = load_suite(SUITES / "smoke.yaml")
    entry = replace(suite.experiments[0], trials=3)
    suite = replace(suite, experiments=(entry,), serving_deadline=42.0)
    ran: list[int] = []

    def run_trial(target: Any, e: Any, number: int, trial_dir: Path, slos: Any) -> TrialRecord:
        ran.append(number)
        trial_dir.mkdir(parents=True, exist_ok=True)
        return TrialRecord(e.name, str(e.file), number, "s", 0.0, status=PASSED)

    checks: list[float] = []

    def check(deadline: float) -> None:
        checks.append(deadline)
        if len(checks) == 2:
            raise OperationFailed("no order went through")

    monkeypatch.setattr(runner, "run_trial", run_trial)
    monkeypatch.setattr(runner, "_respread", lambda *a: None)
    run = SuiteRun(suite, "r", tmp_path)
    prepared = Prepared(None, 1, 3, False, "http://x", "http://p")  # type: ignore[arg-type]
    runner._run_trials(run, None, prepared, _Progress(), None, check_serving=check)  # type: ignore[arg-type]
    assert ran == [1, 2]  # trial 3 would run on a broken system
    assert checks == [42.0, 42.0]
    assert [r.status for r in run.records] == [PASSED, FAILED]
    assert run.records[1].system_recovered is False
    assert run.skipped == [
        (entry.name, f"trials 3-3 not run: the system did not come back after {entry.name} trial 2")
    ]
