"""A trial on a system of the user's own: its invariant checks run before and after it, go
into trial.json and decide the verdict (violated: failed; errored: errored, never passed).
The experiment and the checks are fakes: no cluster, no processes."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskit.cluster.access import ClusterAccess
from chaoskit.ctk.experiment import RunOutcome
from chaoskit.results import TrialResult
from chaoskit.suite import trial
from chaoskit.suite.spec import load_suite
from chaoskit.suite.trial import TrialTarget, run_trial
from chaoskit.system.checks import CheckOutcome
from chaoskit.system.invariants import InvariantInput, InvariantResult
from chaoskit.system.spec import SystemSpec

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO / "tests" / "unit" / "system" / "fixtures" / "kvstore"


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TrialTarget:
    shutil.copytree(FIXTURE, tmp_path / "kvstore")
    shutil.copy(REPO / "kind-config.quick.yaml", tmp_path / "kind.yaml")
    doc = {
        "name": "kv",
        "cluster": {"config": "kind.yaml"},
        "topology": "./kvstore",
        "experiments": [{"file": "chaoskit:pod-kill"}],
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(doc))
    suite = replace(load_suite(tmp_path / "suite.yaml"), load=None)  # no Locust here

    def experiment(path: Path, *, output: Path, **_: Any) -> RunOutcome:
        return RunOutcome(path, "completed", False, output, {}, {})

    monkeypatch.setattr(trial, "run_experiment_file", experiment)
    monkeypatch.setattr(trial, "ledger", _no_ledger)
    kubeconfig = tmp_path / "kubeconfig"
    return TrialTarget(
        suite=suite,
        access=ClusterAccess("kv", kubeconfig, Path("/usr/bin/kubectl")),
        shop_namespace="kv",
        ingress="http://127.0.0.1:30080",
        prometheus=None,
        run_id="run-1",
        published={"entry": "http://127.0.0.1:30080"},
    )


def _no_ledger(*_: Any, **__: Any) -> None:
    raise AssertionError("a system's trial has no ledger")


class FakeChecks:
    """Answers each phase as told, and remembers what it was given."""

    def __init__(self, **answers: list[CheckOutcome]) -> None:
        self.answers = answers
        self.given: list[InvariantInput] = []

    def __call__(self, system: SystemSpec, given: InvariantInput) -> list[CheckOutcome]:
        self.given.append(given)
        return self.answers.get(given.phase, [passed("no-lost-writes")])


def passed(name: str, checked: int = 3) -> CheckOutcome:
    return CheckOutcome(name, InvariantResult(name, checked), None, 0.1)


def violated(name: str) -> CheckOutcome:
    result = InvariantResult(name, 5, ({"what": "write 17 acknowledged, not stored"},))
    return CheckOutcome(name, result, None, 0.2)


def errored(name: str) -> CheckOutcome:
    return CheckOutcome(name, None, "timed out after 60 s", 60.0)


def no_slos(*_: Any) -> list[dict[str, Any]]:
    return []


def run(target: TrialTarget, trial_dir: Path, checks: FakeChecks) -> TrialResult:
    entry = target.suite.experiments[0]
    record = run_trial(target, entry, 1, trial_dir, no_slos, check_invariants=checks)
    saved = TrialResult.from_dict(json.loads((trial_dir / "trial.json").read_text()))
    assert saved == record.to_result()
    return saved


def test_invariants_that_hold_pass_the_trial_and_land_in_trial_json(
    target: TrialTarget, tmp_path: Path
) -> None:
    trial_dir = tmp_path / "trial"
    (trial_dir / "load").mkdir(parents=True)
    (trial_dir / "load" / "acked-h-1.jsonl").write_text('{"t": 2, "key": 2}\n{"t": 1, "key": 1}\n')
    checks = FakeChecks()
    result = run(target, trial_dir, checks)

    assert result.status == "passed", result.reasons
    assert [(i["phase"], i["name"], i["ok"], i["checked"]) for i in result.invariants] == [
        ("before", "no-lost-writes", True, 3),
        ("after", "no-lost-writes", True, 3),
    ]
    assert result.invariants[0]["error"] is None and result.invariants[0]["violations"] == []
    before, after = checks.given
    assert before.window.start == before.window.end == result.started_at
    assert before.acknowledged is None
    assert after.window.start == result.started_at and after.window.end == result.ended_at
    assert after.acknowledged == trial_dir / "acknowledged.jsonl"
    keys = [json.loads(x)["key"] for x in after.acknowledged.read_text().splitlines()]
    assert keys == [1, 2]
    assert after.published == {"entry": "http://127.0.0.1:30080"}
    assert after.kubeconfig == target.access.kubeconfig
    assert [m["label"] for m in result.markers if m["kind"] == "invariants"] == [
        "before: passed",
        "after: passed",
    ]


def test_a_violation_fails_the_trial_naming_the_invariant(
    target: TrialTarget, tmp_path: Path
) -> None:
    checks = FakeChecks(after=[passed("balances"), violated("no-lost-writes")])
    result = run(target, tmp_path / "trial", checks)
    assert result.status == "failed"
    assert result.reasons == (
        "invariant no-lost-writes: 5 checked, 1 violations "
        "(first: write 17 acknowledged, not stored) (after)",
    )
    [entry] = [i for i in result.invariants if i["name"] == "no-lost-writes" and not i["ok"]]
    assert entry["violations"] == [{"what": "write 17 acknowledged, not stored"}]


@pytest.mark.parametrize("phase", ["before", "after"])
def test_a_check_that_gave_no_answer_errors_the_trial(
    target: TrialTarget, tmp_path: Path, phase: str
) -> None:
    checks = FakeChecks(**{phase: [errored("no-lost-writes")]})
    result = run(target, tmp_path / "trial", checks)
    assert result.status == "errored"
    assert result.reasons == (f"invariant no-lost-writes: errored: timed out after 60 s ({phase})",)
    [entry] = [i for i in result.invariants if i["phase"] == phase]
    assert entry["ok"] is False and entry["checked"] is None
    assert entry["error"] == "timed out after 60 s"


def test_a_violation_fails_even_beside_an_error_and_a_crashing_runner_errors(
    target: TrialTarget, tmp_path: Path
) -> None:
    checks = FakeChecks(after=[violated("a"), errored("b")])
    result = run(target, tmp_path / "one", checks)
    assert result.status == "failed"  # a violation found is a finding, as a failed SLO is
    assert len(result.reasons) == 2

    def crash(system: SystemSpec, given: InvariantInput) -> list[CheckOutcome]:
        raise RuntimeError("boom")

    entry = target.suite.experiments[0]
    record = run_trial(target, entry, 1, tmp_path / "two", no_slos, check_invariants=crash)
    assert record.status == "errored"
    assert record.reasons == [
        "invariants (before): RuntimeError: boom",
        "invariants (after): RuntimeError: boom",
    ]
