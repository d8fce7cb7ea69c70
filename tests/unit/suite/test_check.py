"""Everything a suite needs is checked before anything is made."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaoskit.errors import InvalidConfig
from chaoskit.suite.runner import check_suite
from chaoskit.suite.spec import load_suite

REPO = Path(__file__).resolve().parents[3]


def suite_file(tmp_path: Path, **changes: object) -> Path:
    doc = {
        "name": "checked",
        "cluster": {"config": str(REPO / "kind-config.quick.yaml")},
        "load": {"profile": "steady"},
        "slos": [{"kind": "recovery_s", "threshold": 30}],
        "experiments": [{"file": str(REPO / "experiments/pod-kill.yaml")}],
    }
    doc.update(changes)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_good_suite_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    check_suite(load_suite(suite_file(tmp_path)))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {
                "experiments": [
                    {"file": str(REPO / "experiments/pod-kill.yaml"), "vars": {"colour": "red"}}
                ]
            },
            "experiments[0].vars.colour: pod-kill.yaml has no configuration key 'colour'",
        ),
        ({"load": {"profile": "stampede"}}, "load.profile: profile 'stampede': unknown profile"),
        ({"slos": [{"kind": "uptime", "threshold": 1}]}, "slos[0].kind"),
        ({"topology": "bank"}, "unknown topology"),
    ],
)
def test_what_cannot_run_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict[str, object], message: str
) -> None:
    monkeypatch.chdir(REPO)
    path = suite_file(tmp_path, **changes)
    with pytest.raises(Exception) as caught:
        check_suite(load_suite(path))
    assert isinstance(caught.value, InvalidConfig) or "topology" in message
    assert message in str(caught.value)


def test_a_broken_experiment_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    doc = yaml.safe_load((REPO / "experiments/pod-kill.yaml").read_text())
    doc["method"][0]["provider"]["arguments"]["count"] = "two"
    broken.write_text(yaml.safe_dump(doc))
    path = suite_file(tmp_path, experiments=[{"file": str(broken)}])
    with pytest.raises(InvalidConfig, match=r"broken.yaml: method\[0\].provider.arguments.count"):
        check_suite(load_suite(path))
