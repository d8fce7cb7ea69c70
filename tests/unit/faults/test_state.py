"""The state file: undo records written before the change, found again after a crash."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chaoskit.faults import undo
from chaoskit.faults.nodes import NodeOps
from chaoskit.faults.runner import recover, undo_changes
from chaoskit.faults.state import StateFile, Undo
from chaoskit.settings import Settings

applied: list[dict[str, Any]] = []


@undo.undo_op("test-op")
def _test_op(nodes: NodeOps, args: dict[str, Any]) -> None:
    if args.get("fail"):
        raise OSError("node is gone")
    applied.append(args)


def test_a_recorded_change_survives_the_process_and_is_undone_newest_first(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "state" / "c.json", "c")
    state.begin_run("r1", "experiments/x.yaml")
    state.record("r1", "node-stop", "node c-worker", Undo("test-op", {"n": 1}, "first"))
    state.record("r1", "node-stop", "node c-worker2", Undo("test-op", {"n": 2}, "second"))

    again = StateFile(tmp_path / "state" / "c.json", "c")  # another process reads it
    pending = again.pending()
    assert [c.undo.description for c in pending] == ["second", "first"]
    doc = json.loads((tmp_path / "state" / "c.json").read_text())
    assert doc["runs"][0]["what"] == "experiments/x.yaml"

    applied.clear()
    failed = undo_changes(again, NodeOps("c", tmp_path / "log"), pending)
    assert failed == []
    assert applied == [{"n": 2}, {"n": 1}]
    assert again.pending() == []
    again.end_run("r1")
    assert not (tmp_path / "state" / "c.json").exists()


def test_a_failed_undo_stays_pending_for_recover(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "c.json", "c")
    state.record("r1", "kubelet-stop", "node x", Undo("test-op", {"fail": True}, "start kubelet"))
    failed = undo_changes(state, NodeOps("c", tmp_path / "log"), state.pending())
    assert [c.error for c in failed] == ["node is gone"]
    assert [c.status for c in state.pending()] == ["failed"]
    state.end_run("r1")
    assert state.pending(), "a run with something left to undo is kept"


def test_recover_undoes_the_runs_of_dead_harnesses(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path)
    state = StateFile.of(settings, "c")
    state.record("dead", "node-pause", "node c-worker", Undo("test-op", {"n": 3}, "unpause"))
    raw = json.loads(state.path.read_text())
    raw["runs"][0]["pid"] = 2**22 + 12345  # no such process
    state.path.write_text(json.dumps(raw))
    applied.clear()
    report = recover(settings, "c")
    assert [c.undo.description for c in report.undone] == ["unpause"]
    assert applied == [{"n": 3}]
    assert not state.path.exists()


def test_recover_leaves_a_live_harness_alone_unless_forced(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path)
    state = StateFile.of(settings, "c")
    state.record("live", "node-stop", "node c-worker", Undo("test-op", {"n": 4}, "start"))
    raw = json.loads(state.path.read_text())
    raw["runs"][0]["pid"] = os.getppid()  # alive, and not this process
    state.path.write_text(json.dumps(raw))
    report = recover(settings, "c")
    assert report.undone == [] and len(report.skipped_runs) == 1
    assert recover(settings, "c", force=True).undone
