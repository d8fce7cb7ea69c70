"""chaoskit's control stops a run at the first failed chaoskit step of the method, through
chaostoolkit-lib itself (the cluster-facing calls are replaced by fakes: no network)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from chaoslib.exceptions import InterruptExecution
from chaoslib.experiment import run_experiment
from chaoslib.types import Strategy

from chaoskit.ctk import CHAOSKIT_MODULES, actions, control, datatier, experiment
from chaoskit.ctk import context as run_context
from chaoskit.errors import OperationFailed


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The control without a cluster; returns the chaoskit steps that ran, in order."""
    ran: list[str] = []

    class FakeContext:
        def record_desired(self) -> None:
            pass

    monkeypatch.setattr(run_context, "get", lambda configuration=None: FakeContext())
    monkeypatch.setattr(run_context, "finish", lambda: None)
    monkeypatch.setattr(run_context, "reset", lambda: None)

    def mark_leader(**kwargs: Any) -> dict[str, Any]:
        ran.append("mark_kafka_controller_leader")
        raise OperationFailed("no Kafka controller answers")

    def kill_pods(**kwargs: Any) -> dict[str, Any]:
        ran.append("kill_pods")
        return {}

    def rollback_faults(**kwargs: Any) -> list[str]:
        ran.append("rollback_faults")
        raise OperationFailed("could not undo")

    monkeypatch.setattr(datatier, "mark_kafka_controller_leader", mark_leader)
    monkeypatch.setattr(actions, "kill_pods", kill_pods)
    monkeypatch.setattr(actions, "rollback_faults", rollback_faults)
    return ran


def _step(name: str, module: str, func: str) -> dict[str, Any]:
    return {
        "type": "action",
        "name": name,
        "provider": {"type": "python", "module": module, "func": func},
    }


def _run(method: list[dict[str, Any]], rollbacks: list[dict[str, Any]]) -> dict[str, Any]:
    doc = {
        "title": "t",
        "description": "d",
        "controls": [experiment.CONTROL],
        "method": method,
        "rollbacks": rollbacks,
    }
    logging.getLogger("chaostoolkit").setLevel(logging.CRITICAL)
    journal: dict[str, Any] = run_experiment(
        doc, settings={"runtime": {"rollbacks": {"strategy": "always"}}}, strategy=Strategy.DEFAULT
    )
    return journal


def test_a_failed_datatier_action_stops_the_run_before_the_next_fault(
    no_cluster: list[str],
) -> None:
    journal = _run(
        [
            _step("mark", "chaoskit.ctk.datatier", "mark_kafka_controller_leader"),
            _step("kill", "chaoskit.ctk.actions", "kill_pods"),
        ],
        [],
    )
    assert journal["status"] == "interrupted"
    assert no_cluster == ["mark_kafka_controller_leader"]


def test_a_failed_rollback_does_not_stop_the_rollbacks_after_it(no_cluster: list[str]) -> None:
    journal = _run(
        [_step("kill", "chaoskit.ctk.actions", "kill_pods")],
        [
            _step("undo 1", "chaoskit.ctk.actions", "rollback_faults"),
            _step("undo 2", "chaoskit.ctk.actions", "rollback_faults"),
        ],
    )
    assert no_cluster == ["kill_pods", "rollback_faults", "rollback_faults"]
    assert journal["status"] == "completed"


def test_a_failed_chaoskit_probe_in_the_method_interrupts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(control, "_in_method", [True])
    with pytest.raises(InterruptExecution, match="chaoskit probe 'converged' failed: late"):
        control.after_activity_control(
            context={
                "type": "probe",
                "name": "converged",
                "provider": {"module": "chaoskit.ctk.probes"},
            },
            state={"status": "failed", "exception": ["chaoskit.X: late"]},
        )


def test_one_list_of_chaoskit_modules() -> None:
    assert experiment.CHAOSKIT_MODULES is CHAOSKIT_MODULES
    assert "chaoskit.ctk.datatier" in CHAOSKIT_MODULES
    assert control.CHAOSKIT_MODULES is CHAOSKIT_MODULES
