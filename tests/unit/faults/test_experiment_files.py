"""Experiment files: checked before anything runs; a problem names file, path and reason."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskit.ctk.experiment import check_experiment, load_experiment
from chaoskit.errors import InvalidConfig

REPO = Path(__file__).resolve().parents[3]
EXPERIMENTS = sorted(p for p in (REPO / "experiments").rglob("*.yaml") if "suites" not in p.parts)
POD_KILL = yaml.safe_load((REPO / "experiments" / "pod-kill.yaml").read_text())


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_experiment_is_valid(path: Path) -> None:
    doc = load_experiment(path)
    check_experiment(path, doc)
    assert any(
        (c.get("provider") or {}).get("module") == "chaoskit.ctk.control"
        for c in doc.get("controls", [])
    ), "declares chaoskit's control"
    probes = doc["steady-state-hypothesis"]["probes"]
    assert [p["provider"]["func"] for p in probes] == ["desired_state_converged"]
    assert doc["runtime"]["rollbacks"]["strategy"] == "always"
    assert [r["provider"]["func"] for r in doc["rollbacks"]] == ["rollback_faults"]


def problem(tmp_path: Path, doc: Any, name: str = "x.yaml") -> InvalidConfig:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    with pytest.raises(InvalidConfig) as e:
        check_experiment(path, load_experiment(path))
    assert str(e.value).startswith(f"{path}: ")
    return e.value


def edited(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(POD_KILL)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target: Any = doc
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = value
    return doc


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    e = problem(tmp_path, "title: x\nmethod: [\n")
    assert e.field.startswith("line ") and "not valid YAML" in e.reason


def test_a_wrong_argument_type_names_the_path(tmp_path: Path) -> None:
    e = problem(tmp_path, edited(method__0__provider__arguments__count="two"))
    assert e.field == "method[0].provider.arguments.count"
    assert e.reason == "must be an integer, not 'two'"


def test_an_unknown_argument_lists_the_valid_ones(tmp_path: Path) -> None:
    doc = edited()
    doc["method"][0]["provider"]["arguments"]["grace"] = 3
    e = problem(tmp_path, doc)
    assert e.field == "method[0].provider.arguments.grace"
    # The required arguments first, then as pod-kill's parameters declare them.
    assert "valid: namespace, selector, count, percent, max_victims, grace_period" in e.reason


def test_an_unknown_action_lists_the_valid_ones(tmp_path: Path) -> None:
    e = problem(tmp_path, edited(method__0__provider__func="explode_pods"))
    assert e.field == "method[0].provider.func"
    assert "unknown chaoskit action 'explode_pods'" in e.reason and "kill_pods" in e.reason


def test_a_missing_required_argument_is_named(tmp_path: Path) -> None:
    doc = edited()
    del doc["method"][0]["provider"]["arguments"]["selector"]
    e = problem(tmp_path, doc)
    assert (e.field, e.reason) == (
        "method[0].provider.arguments.selector",
        "is required by kill_pods",
    )


def test_values_from_the_configuration_are_checked_too(tmp_path: Path) -> None:
    doc = edited(configuration__count="many")
    e = problem(tmp_path, doc)
    assert e.field == "method[0].provider.arguments.count"
    assert "must be an integer, not 'many'" in e.reason


def test_cross_argument_rules_and_blast_radius_fields(tmp_path: Path) -> None:
    doc = edited()
    doc["method"][0]["provider"]["arguments"]["percent"] = 50
    e = problem(tmp_path, doc)
    assert e.field == "method[0].provider.arguments.percent"
    assert e.reason == "give count or percent, not both"


def test_structure_errors_name_the_field(tmp_path: Path) -> None:
    assert problem(tmp_path, edited(title="")).field == "title"
    assert problem(tmp_path, edited(method__0__type="actoin")).field == "method[0].type"
    doc = edited()
    del doc["method"]
    assert problem(tmp_path, doc).field == "method"
    doc = edited()
    del doc["steady-state-hypothesis"]["probes"][0]["tolerance"]
    assert problem(tmp_path, doc).field == "steady-state-hypothesis.probes[0].tolerance"
    doc = edited()
    doc["methd"] = []
    assert problem(tmp_path, doc).field == "methd"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="no such file"):
        load_experiment(tmp_path / "nope.yaml")
