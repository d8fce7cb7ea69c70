"""A rollback that fails is a failed run: for ``chaoskit run``, a suite trial and a pytest
item, naming what is still changed and how to undo it (no cluster: fakes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from chaoskit import cli
from chaoskit.ctk import context as run_context
from chaoskit.ctk import experiment
from chaoskit.ctk.experiment import RunOutcome
from chaoskit.errors import OperationFailed
from chaoskit.faults.state import StateFile, Undo
from chaoskit.pytest_plugin import ExperimentFailed
from chaoskit.results import ERRORED
from chaoskit.suite import trial
from chaoskit.suite.trial import TrialRecord, _experiment, _Verdict

UNDO = Undo("docker-start", {"container": "kind1-worker"}, "docker start kind1-worker")


def _outcome(
    tmp_path: Path, *, rollback_error: str = "", still: tuple[str, ...] = ()
) -> RunOutcome:
    chaoskit = {
        "run_id": "r1",
        "cluster": "kind1",
        "namespaces": ["shop"],
        "injections": [],
        "recovery": [],
        "verdicts": [{"name": "after", "ok": True, "problems": []}],
        "rollback_error": rollback_error,
        "still_changed": list(still),
    }
    return RunOutcome(
        tmp_path / "e.yaml",
        "completed",
        False,
        tmp_path / "result.json",
        chaoskit,
        {"status": "completed", "run": []},
    )


def test_a_run_whose_undo_failed_is_not_ok(tmp_path: Path) -> None:
    assert _outcome(tmp_path).ok
    failed = _outcome(tmp_path, rollback_error="docker: no such container", still=("w: x",))
    assert not failed.ok
    problem = failed.rollback_problem
    assert problem is not None
    assert "still changed: w: x" in problem
    assert "chaoskit recover --cluster kind1" in problem


def test_chaoskit_run_exits_1_and_says_how_to_recover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = _outcome(tmp_path, rollback_error="boom", still=("kind1-worker: docker start",))
    monkeypatch.setattr(experiment, "run_experiment_file", lambda *a, **k: outcome)
    result = CliRunner().invoke(cli.cli, ["run", str(tmp_path / "e.yaml")])
    assert result.exit_code == 1, result.output
    assert "chaoskit recover --cluster kind1" in result.output
    assert "still changed: kind1-worker: docker start" in result.output


def test_a_suite_trial_whose_undo_failed_is_errored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = _outcome(tmp_path, rollback_error="boom", still=("kind1-worker: docker start",))
    monkeypatch.setattr(trial, "run_experiment_file", lambda *a, **k: outcome)

    class Entry:
        name = "node-pause"
        file = tmp_path / "e.yaml"
        variables: ClassVar[dict[str, str]] = {}

    class Suite:
        cluster_name = "kind1"
        namespaces = ("shop",)

    class Target:
        suite = Suite()

    record = TrialRecord("node-pause", "e.yaml", 1, "s", 0.0)
    verdict = _Verdict()
    _experiment(Target(), Entry(), tmp_path, record, verdict)  # type: ignore[arg-type]
    assert verdict.status == ERRORED
    assert verdict.rollback is not None
    assert "chaoskit recover --cluster kind1" in verdict.rollback


def test_a_pytest_item_shows_the_failed_undo(tmp_path: Path) -> None:
    outcome = _outcome(tmp_path, rollback_error="boom", still=("kind1-worker: docker start",))
    assert not outcome.ok  # so the item raises ExperimentFailed
    shown = ExperimentFailed(Path("e.yaml"), outcome).describe()
    assert "rollback failed: boom" in shown
    assert "chaoskit recover --cluster kind1" in shown


def test_finish_names_what_the_failed_rollback_left_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = StateFile(tmp_path / "state.json", "kind1")
    state.begin_run("r1", "e.yaml")
    state.record("r1", "pause-nodes", "kind1-worker", UNDO)

    class Session:
        injections: ClassVar[list[Any]] = []

        def close(self) -> None:
            raise OperationFailed("rollback left 1 change(s) in place")

    class Env:
        run_id = "r1"

    Env.state = state  # type: ignore[attr-defined]

    class Timeline:
        def events(self) -> list[Any]:
            return []

        def mark(self, *a: Any) -> None:
            pass

        def stop(self) -> None:
            pass

    class Informers:
        def stop(self) -> None:
            pass

    class Target:
        cluster = "kind1"
        context = "kind-kind1"
        namespaces = ("shop",)

    ctx = run_context.RunContext(
        settings=None,  # type: ignore[arg-type]
        target=Target(),  # type: ignore[arg-type]
        session=Session(),  # type: ignore[arg-type]
        informers=Informers(),  # type: ignore[arg-type]
        timeline=Timeline(),  # type: ignore[arg-type]
        seed="1",
        system=True,
        what="e.yaml",
    )
    monkeypatch.setattr(type(ctx), "env", property(lambda self: Env()))
    monkeypatch.setattr(run_context, "_current", ctx)
    result = run_context.finish()
    assert result is not None
    assert result["rollback_error"] == "rollback left 1 change(s) in place"
    assert result["still_changed"] == ["kind1-worker: docker start kind1-worker"]
