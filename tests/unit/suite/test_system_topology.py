"""Suites on a system folder of the user's own (``topology: ./path``) and chaoskit's own
experiments named ``chaoskit:NAME``: checked with the suite, reported in the system file's
own name when that file is wrong."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskit.cluster.access import ClusterAccess
from chaoskit.errors import InvalidConfig
from chaoskit.progress import LogProgress
from chaoskit.suite import runner
from chaoskit.suite.runner import check_suite
from chaoskit.suite.spec import load_suite
from chaoskit.suite.trial import TrialTarget
from chaoskit.system.spec import is_system_path
from tests.unit.cli_run import invoke

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO / "tests" / "unit" / "system" / "fixtures" / "kvstore"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A suite folder holding a copy of the fixture system (``kvstore/``) and a kind
    config."""
    shutil.copytree(FIXTURE, tmp_path / "kvstore")
    shutil.copy(REPO / "kind-config.quick.yaml", tmp_path / "kind.yaml")
    return tmp_path


def write(folder: Path, **changes: Any) -> Path:
    doc: dict[str, Any] = {
        "name": "kv",
        "cluster": {"config": "kind.yaml"},
        "topology": "./kvstore",
        "experiments": [
            {"file": "chaoskit:pod-kill", "vars": {"namespace": "kv", "selector": "app=kv"}}
        ],
    }
    doc.update(changes)
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_suite_on_a_system_folder_loads_the_system(folder: Path) -> None:
    suite = load_suite(write(folder))
    assert suite.topology == "./kvstore"
    assert suite.system is not None
    assert suite.system.name == "kvstore"
    assert suite.system.path == (folder / "kvstore" / "chaoskit-system.yaml").resolve()
    # Namespaces and load come from the system file when the suite gives none.
    assert suite.namespaces == ("kv",)
    assert suite.load is not None
    assert suite.load.profile == str((folder / "kvstore/load/locustfile.py").resolve())
    assert (suite.load.users, suite.load.spawn_rate) == (20, 5.0)
    assert suite.to_dict()["system"] == str(suite.system.path)
    check_suite(suite)


@pytest.mark.parametrize(
    "topology", ["./kvstore/", "kvstore/chaoskit-system.yaml", "{folder}/kvstore", "../x/kvstore"]
)
def test_every_form_of_path_names_the_system(folder: Path, topology: str) -> None:
    (folder / "x").mkdir()
    suite_folder = folder / "x" if topology.startswith("..") else folder
    if topology.startswith(".."):
        shutil.copy(folder / "kind.yaml", suite_folder / "kind.yaml")
        shutil.move(folder / "kvstore", folder / "x" / "kvstore")
    suite = load_suite(write(suite_folder, topology=topology.format(folder=folder)))
    assert suite.system is not None and suite.system.name == "kvstore"


def test_the_suites_own_load_fields_take_precedence(folder: Path) -> None:
    suite = load_suite(write(folder, load={"users": 7, "warmup": 3}, namespaces=["kv", "other"]))
    assert suite.load is not None
    assert suite.load.profile.endswith("locustfile.py")
    assert (suite.load.users, suite.load.spawn_rate, suite.load.warmup) == (7, 5.0, 3.0)
    assert suite.namespaces == ("kv", "other")


def test_the_suites_load_profile_may_only_repeat_the_systems(folder: Path) -> None:
    same = load_suite(write(folder, load={"profile": "kvstore/load/locustfile.py", "users": 3}))
    assert same.load is not None and same.load.profile.endswith("kvstore/load/locustfile.py")
    path = write(folder, load={"profile": "steady"})
    with pytest.raises(InvalidConfig) as caught:
        load_suite(path)
    assert (caught.value.file, caught.value.field) == (str(path), "load.profile")
    assert "conflicts with the system 'kvstore'" in caught.value.reason
    assert "leave load.profile out" in caught.value.reason


@pytest.mark.parametrize(
    ("where", "changes", "why"),
    [
        ("slos[1].kind", {"slos": [{"kind": "recovery_s", "threshold": 30},
                                   {"kind": "lost_orders"}]}, "ledger"),
        ("experiments[0].slos[0].kind",
         {"experiments": [{"file": "chaoskit:pod-kill",
                           "slos": [{"kind": "prometheus", "query": "up", "threshold": 1}]}]},
         "Prometheus"),
    ],
)  # fmt: skip
def test_slos_of_the_shop_are_refused_on_a_system(
    folder: Path, where: str, changes: dict[str, Any], why: str
) -> None:
    path = write(folder, **changes)
    with pytest.raises(InvalidConfig) as caught:
        load_suite(path)
    assert (caught.value.file, caught.value.field) == (str(path), where)
    assert "cannot be judged on the system 'kvstore'" in caught.value.reason
    assert why in caught.value.reason


def test_no_load_when_neither_has_one_and_a_suite_load_needs_the_systems(folder: Path) -> None:
    system = folder / "kvstore" / "chaoskit-system.yaml"
    doc = yaml.safe_load(system.read_text())
    del doc["load"]
    system.write_text(yaml.safe_dump(doc))
    assert load_suite(write(folder)).load is None
    path = write(folder, load={"profile": "steady"})
    with pytest.raises(InvalidConfig) as caught:
        load_suite(path)
    assert (caught.value.file, caught.value.field) == (str(path), "load")
    assert "has no load: its load.target names the published Service" in caught.value.reason


def test_a_broken_system_file_is_named_with_its_field_and_reason(folder: Path) -> None:
    system = folder / "kvstore" / "chaoskit-system.yaml"
    system.write_text(system.read_text().replace("context: images/kv", "context: images/kvv"))
    with pytest.raises(InvalidConfig) as caught:
        load_suite(write(folder))
    assert caught.value.file == str(system.resolve())
    assert caught.value.field == "images[0].context"
    assert "no such folder in the system folder: 'images/kvv'" in caught.value.reason


@pytest.mark.parametrize(
    ("topology", "reason"),
    [
        ("./nowhere", "no such system folder or file"),
        ("./kvstore/images", "holds no chaoskit-system.yaml"),
    ],
)
def test_a_path_that_is_no_system_is_the_suites_topology_field(
    folder: Path, topology: str, reason: str
) -> None:
    path = write(folder, topology=topology)
    with pytest.raises(InvalidConfig) as caught:
        load_suite(path)
    assert (caught.value.file, caught.value.field) == (str(path), "topology")
    assert reason in caught.value.reason


def test_built_in_names_are_no_paths(folder: Path) -> None:
    assert not is_system_path("ecommerce") and not is_system_path("ecommerce-ha")
    assert is_system_path("./x") and is_system_path("a/b") and is_system_path("/x")
    assert is_system_path(".") and is_system_path("..")
    suite = load_suite(write(folder, topology="ecommerce-ha"))
    assert suite.system is None and suite.namespaces == ("shop",) and suite.load is None


def test_chaoskits_own_experiments_by_name(folder: Path) -> None:
    suite = load_suite(write(folder, experiments=["chaoskit:node-stop", "chaoskit:pod-kill"]))
    assert [e.file for e in suite.experiments] == [
        REPO / "experiments" / "node-stop.yaml",
        REPO / "experiments" / "pod-kill.yaml",
    ]
    assert [e.name for e in suite.experiments] == ["node-stop", "pod-kill"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("chaoskit:pod-kil", "chaoskit has no such experiment (it has: "),
        ("chaoskit:../pod-kill", "after 'chaoskit:' comes an experiment name"),
        ("chaoskit:", "after 'chaoskit:' comes an experiment name"),
    ],
)
def test_an_unknown_shipped_experiment_is_named(folder: Path, name: str, reason: str) -> None:
    path = write(folder, experiments=[name])
    with pytest.raises(InvalidConfig) as caught:
        load_suite(path)
    assert (caught.value.file, caught.value.field) == (str(path), "experiments[0].file")
    assert reason in caught.value.reason


def test_shipped_experiments_need_chaoskits_source_tree(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "chaoskit.suite.spec.shipped_experiments", lambda: folder / "site-packages" / "none"
    )
    with pytest.raises(InvalidConfig, match="experiments/ folder is not beside its package"):
        load_suite(write(folder))


def test_suite_validate_names_the_system(folder: Path) -> None:
    path = write(folder)
    code, out, err = invoke("suite", "validate", str(path))
    assert (code, err) == (0, "")
    system = (folder / "kvstore" / "chaoskit-system.yaml").resolve()
    assert out.splitlines() == [
        f"{path}: ok (1 experiments, 1 trials)",
        f"  system 'kvstore': ok ({system})",
    ]


def test_after_each_trial_a_system_is_checked_as_deploy_path_check_does(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = load_suite(write(folder))
    calls: list[tuple[str, float]] = []

    def check_system(access: Any, system: Any, *, progress: Any, timeout: float) -> None:
        calls.append((system.name, timeout))

    monkeypatch.setattr(runner.system_deploy, "check_system", check_system)
    target = TrialTarget(
        suite=suite,
        access=ClusterAccess("c", Path("/k"), Path("/kubectl")),
        shop_namespace="kv",
        ingress="http://127.0.0.1:1",
        prometheus=None,
        run_id="r",
    )
    runner._deploy_check(target, LogProgress())(42.0)
    assert calls == [("kvstore", 42.0)]
