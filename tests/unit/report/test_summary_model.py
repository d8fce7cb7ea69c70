"""summary.json as a typed model: what is written reads back equal, summaries written
before the model (and before the score parts) still load, and a damaged one is one clear
error naming the file and the field."""

from __future__ import annotations

import copy
import itertools
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from chaoskit.cli import main
from chaoskit.errors import InvalidConfig, InvalidInput
from chaoskit.report import render
from chaoskit.report.gate import gate
from chaoskit.report.rundir import load_run
from chaoskit.report.summary import build_summary, dumps
from chaoskit.results import Summary
from tests.unit.report.rundirs import standard_run

DATA = Path(__file__).parent / "data"
WRITTEN_BEFORE_THE_MODEL = ("summary-standard.json", "summary-failing.json")
"""What ``build_summary`` wrote before it built a typed Summary (the standard run, and a
failing one: lost orders, a trial without trial.json, one without load, a system that
did not come back)."""
OLDER = "summary-v1-before-score-parts.json"
"""A v1 summary as chaoskit wrote it before the score's availability and recovery parts,
the p99 over requests and the serving check."""


def _doc(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return loaded


def test_a_summary_reads_back_equal_from_its_json(tmp_path: Path) -> None:
    summary = build_summary(load_run(standard_run(tmp_path / "run")))
    assert Summary.from_dict(json.loads(dumps(summary))) == summary
    assert summary.experiments[0].trials[0].score.availability is not None


@pytest.mark.parametrize("name", WRITTEN_BEFORE_THE_MODEL)
def test_summaries_written_before_the_model_load_and_keep_every_field(name: str) -> None:
    document = _doc(name)
    summary = Summary.from_dict(document)
    # Same names, same values, same order: the JSON field names did not move.
    assert json.dumps(summary.to_dict()) == json.dumps(document)


def test_an_older_summary_without_the_score_parts_loads_and_gates(tmp_path: Path) -> None:
    older = Summary.from_dict(_doc(OLDER))
    assert older.system_not_back == ()
    assert older.score.value == 100.0 and older.score.availability_score is None
    trial = older.experiments[0].trials[0]
    assert trial.system_recovered is None and trial.score.availability is None
    assert trial.during_fault.p99_basis == "worst second"
    assert older.experiments[0].aggregate.worst_second_p99_ms.n == 0
    # As a baseline: experiments compared, the score of another formula only noted.
    current = standard_run(tmp_path / "run")
    render(current)
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    (baseline / "summary.json").write_text(json.dumps(_doc(OLDER)))
    result = gate(current, baseline)
    assert result.passed, [f.line() for f in result.failures]
    kinds = {(f.subject, f.kind) for f in result.findings}
    assert ("pod-kill", "ok") in kinds and ("score", "note") in kinds


DAMAGE: list[tuple[str, Any, str]] = [
    ("experiments", "all of them", "experiments: must be a list, not str"),
    ("experiments.0.trials.1.status", "fine", "experiments[0].trials[1].status: must be one of"),
    ("experiments.0.aggregate.recovery_s.median", "4.75",
     "aggregate.recovery_s.median: must be a number, not str"),
    ("score.value", None, None),  # a missing score is a regression, not damage
    ("score", [], "score: must be an object, not list"),
    ("verdict", None, "verdict: is missing"),
    ("experiments.1.name", 7, "experiments[1].name: must be a string, not int"),
    ("reasons", [1], "reasons: must be a list of strings, not list"),
]  # fmt: skip


def _damage(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    damaged = copy.deepcopy(document)
    *parents, last = path.split(".")
    node: Any = damaged
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is None and isinstance(node, dict):
        node.pop(last)
    else:
        node[int(last) if isinstance(node, list) else last] = value
    return damaged


@pytest.mark.parametrize(("path", "value", "message"), DAMAGE)
def test_a_damaged_summary_names_the_file_and_the_field(
    path: str, value: Any, message: str | None
) -> None:
    damaged = _damage(_doc("summary-standard.json"), path, value)
    if message is None:
        assert Summary.from_dict(damaged, "x/summary.json").score.value is None
        return
    with pytest.raises(InvalidConfig) as error:
        Summary.from_dict(damaged, "x/summary.json")
    assert str(error.value).startswith("x/summary.json: ")
    assert message in str(error.value)


def test_the_gate_on_a_damaged_summary_is_exit_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = standard_run(tmp_path / "run")
    render(run_dir)
    baseline = tmp_path / "baseline"
    shutil.copytree(run_dir, baseline)
    file = baseline / "summary.json"
    file.write_text(json.dumps(_damage(json.loads(file.read_text()), "experiments.0.trials", {})))
    with pytest.raises(InvalidInput, match=r"experiments\[0\]\.trials: must be a list, not dict"):
        gate(run_dir, baseline)
    with pytest.raises(SystemExit) as exited:
        main(["gate", "--report", str(run_dir), "--baseline", str(baseline)])
    out, err = capsys.readouterr()
    assert (exited.value.code, out) == (2, "")
    assert err == (
        f"chaoskit: error: baseline {file}: experiments[0].trials: must be a list, not dict\n"
    )


ODD_VALUES: list[Any] = [None, True, -1, 2.5, "", "x", [], [1, "a"], {}, {"a": {"b": 1}}]


def _paths(node: Any, prefix: str = "") -> list[str]:
    out = []
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, child in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        out += [path, *_paths(child, path)]
    return out


def test_any_damaged_field_loads_or_is_invalid_config() -> None:
    """Whatever a field holds, reading the summary fails with nothing but InvalidConfig
    (exit 2, naming the field), never a traceback: odd values in fields drawn from every
    level of a real summary."""
    standard = _doc("summary-standard.json")
    cases = list(itertools.product(_paths(standard), ODD_VALUES))
    invalid = 0
    for path, value in random.Random(13).sample(cases, 400):
        try:
            Summary.from_dict(_damage(standard, path, value), "summary.json")
        except InvalidConfig as e:
            invalid += 1
            assert e.field and e.reason, (path, value)
    assert invalid > 100  # the sample does reach damage the reader refuses
