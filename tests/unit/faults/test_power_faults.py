"""Power faults (docker stop/kill/pause/restart of a kind node container) run only on
chaoskit's own kind clusters: anywhere else they are refused with one line, before anything
is chosen or changed. The etcd restore drill works through the node agent: any cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from chaoskit.ctk import context as run_context
from chaoskit.ctk import operator
from chaoskit.ctk.experiment import run_experiment_file
from chaoskit.errors import InvalidConfig
from chaoskit.faults import registry
from chaoskit.faults.base import FaultEnv
from chaoskit.faults.errors import InvalidParam
from chaoskit.faults.nodes import NodeOps
from chaoskit.faults.runner import plan
from chaoskit.faults.state import StateFile
from chaoskit.faults.target import Target
from chaoskit.settings import Settings
from tests.unit.faults.test_target import kubeconfig

REPO = Path(__file__).resolve().parents[3]
POWER = ("node-stop", "node-kill", "node-pause", "node-restart")
ARGUMENTS: dict[str, dict[str, Any]] = {"etcd-restore-drill": {"namespace": "shop"}}


class _Untouchable:
    """Nodes that fail the test if a refused fault so much as looks at them."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a refused fault used NodeOps.{name}")


def env(tmp_path: Path, *, managed: bool) -> FaultEnv:
    target = Target(
        "lab" if managed else "production",
        tmp_path / "config",
        "kind-lab" if managed else "production",
        ("shop",),
        managed=managed,
    )
    settings = Settings(cache_dir=tmp_path / "cache")
    return FaultEnv(
        target=target,
        nodes=cast(NodeOps, _Untouchable()),
        state=StateFile.of(settings, target.key),
        run_id="plan",
        settings=settings,
    )


def test_exactly_the_power_faults_are_kind_only() -> None:
    assert {c.name for c in registry.faults() if c.kind_only} == set(POWER)


@pytest.mark.parametrize("name", POWER)
def test_a_power_fault_is_refused_off_chaoskits_kind_clusters(tmp_path: Path, name: str) -> None:
    verb = name.removeprefix("node-")
    with pytest.raises(InvalidParam) as e:
        plan(env(tmp_path, managed=False), name, {}, seed="0")
    assert str(e.value) == (
        f"{name} is a power fault (docker {verb} of a kind node container): it only runs on "
        "chaoskit's own kind clusters, not on context 'production'"
    )
    assert e.value.exit_code == 2
    assert not (tmp_path / "cache").exists()  # no state file, no log: nothing changed


@pytest.mark.parametrize(
    ("name", "managed"),
    [
        *((name, True) for name in POWER),
        ("etcd-restore-drill", True),
        ("etcd-restore-drill", False),
    ],
)
def test_where_they_may_act_they_go_on_to_choose_victims(
    tmp_path: Path, name: str, managed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past the target check, choosing victims lists the nodes: the fake says so.
    def inventory(self: FaultEnv) -> list[object]:
        raise AssertionError("the fault went on to list the nodes")

    monkeypatch.setattr(FaultEnv, "inventory", inventory)
    with pytest.raises(AssertionError, match="the fault went on to list the nodes"):
        plan(env(tmp_path, managed=managed), name, ARGUMENTS.get(name, {}), seed="0")


def test_other_faults_are_not_refused_by_the_target_check(tmp_path: Path) -> None:
    target = env(tmp_path, managed=False).target
    for cls in registry.faults():
        if not cls.kind_only:
            cls.check_target(target)


@pytest.fixture
def foreign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAOSKIT_CACHE_DIR", str(tmp_path / "cache"))
    for _, variable in operator.OPERATOR_KEYS.values():
        monkeypatch.delenv(variable, raising=False)
    return kubeconfig(tmp_path / "kube" / "config", "production", "https://10.0.0.1:6443")


def test_chaoskit_run_refuses_a_power_fault_before_the_run_starts(
    tmp_path: Path, foreign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def get(configuration: Any = None) -> Any:
        raise AssertionError("the run started")

    monkeypatch.setattr(run_context, "get", get)
    with pytest.raises(InvalidConfig) as e:
        run_experiment_file(
            REPO / "experiments" / "node-stop.yaml",
            output=tmp_path / "r.json",
            kubeconfig=foreign,
            allow_context="production",
        )
    operator.give()
    assert e.value.field.startswith("method[")
    assert "node-stop is a power fault" in e.value.reason
    assert "not on context 'production'" in e.value.reason
    assert not (tmp_path / "r.json").exists()
    assert not (tmp_path / "cache" / "state").exists()


def cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHAOSKIT_")}
    return subprocess.run(
        [sys.executable, "-c", "from chaoskit.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**environ, "CHAOSKIT_CACHE_DIR": str(cache)},
    )


def test_faults_plan_refuses_a_power_fault_with_exit_2(tmp_path: Path, foreign: Path) -> None:
    proc = cli(
        "faults",
        "plan",
        "node-kill",
        "--kubeconfig",
        str(foreign),
        "--allow-context",
        "production",
        cache=tmp_path / "cache",
    )
    assert proc.returncode == 2, proc.stderr
    # (above it, the warning that the context is not chaoskit's)
    assert [line for line in proc.stderr.splitlines() if "error" in line] == [
        "chaoskit: error: node-kill is a power fault (docker kill of a kind node container): "
        "it only runs on chaoskit's own kind clusters, not on context 'production'"
    ]
