"""Any cluster: --kubeconfig/--context/--allow-context on run, suite run, faults plan and
recover, checked the same way everywhere; run and recover agree on where a foreign
context's record lives. No network: kubeconfigs are files in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chaoskit.cli import cli
from chaoskit.ctk import context as run_context
from chaoskit.ctk import operator
from chaoskit.errors import InvalidInput
from chaoskit.faults import undo
from chaoskit.faults.nodes import NodeOps
from chaoskit.faults.state import StateFile, Undo, state_path
from chaoskit.faults.target import Target, resolve_target
from chaoskit.settings import Settings
from tests.unit.faults.test_target import kubeconfig

REPO = Path(__file__).resolve().parents[2]
undone: list[dict[str, Any]] = []


@undo.undo_op("any-cluster-test")
def _record(nodes: NodeOps, args: dict[str, Any]) -> None:
    undone.append(args)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A cache with chaoskit's kind cluster 'lab'; no operator setting from outside."""
    for _, variable in operator.OPERATOR_KEYS.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CHAOSKIT_CACHE_DIR", str(tmp_path / "cache"))
    operator.give()
    lab = tmp_path / "cache" / "clusters" / "lab"
    kubeconfig(lab / "kubeconfig", "kind-lab", "https://127.0.0.1:4000")
    (lab / "cluster.json").write_text(
        json.dumps(
            {
                "name": "lab",
                "config": "kind-config.yaml",
                "image": "x",
                "control_planes": 1,
                "workers": 2,
                "created": "now",
                "kubeconfig": str(lab / "kubeconfig"),
                "create_seconds": 1.0,
            }
        )
    )
    undone.clear()
    return Settings(cache_dir=tmp_path / "cache")


@pytest.fixture
def foreign(tmp_path: Path) -> Path:
    return kubeconfig(tmp_path / "kube" / "config", "production", "https://10.0.0.1:6443")


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def leave_a_change(settings: Settings, target: Target) -> Path:
    """What a killed run leaves: a pending undo in the target's state file."""
    state = StateFile.of(settings, target.key)
    state.begin_run("r1", "experiments/kubelet-stop.yaml")
    state.record("r1", "kubelet-stop", "node w1", Undo("any-cluster-test", {"n": 1}, "start it"))
    # The harness is gone: another pid, no longer running.
    doc = json.loads(state.path.read_text())
    doc["runs"][0]["pid"] = 2**22 + 12345
    state.path.write_text(json.dumps(doc))
    return state.path


def test_recover_undoes_a_foreign_contexts_changes_and_waits_for_its_nodes(
    settings: Settings, foreign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = resolve_target(settings, kubeconfig=foreign, allow_context="production")
    path = leave_a_change(settings, target)
    assert path == state_path(settings, "context.production")
    waited: list[tuple[Any, int]] = []
    monkeypatch.setattr(Target, "api", lambda self, retries=True: f"api of {self.context}")
    monkeypatch.setattr(
        "chaoskit.cluster.health.wait_ready",
        lambda api, *, expected_nodes, timeout: waited.append((api, expected_nodes)),
    )

    result = invoke("recover", "--kubeconfig", str(foreign), "--allow-context", "production")

    assert result.exit_code == 0, result.output
    assert "undone: start it (kubelet-stop, run r1)" in result.output
    assert "context 'production' is Ready" in result.output
    assert undone == [{"n": 1}]
    assert waited == [("api of production", 1)]
    assert not path.exists()


def test_recover_of_a_foreign_context_needs_allow_context_and_changes_nothing(
    settings: Settings, foreign: Path
) -> None:
    target = resolve_target(settings, kubeconfig=foreign, allow_context="production")
    path = leave_a_change(settings, target)

    result = invoke("recover", "--kubeconfig", str(foreign))

    assert isinstance(result.exception, InvalidInput)
    assert result.exception.exit_code == 2
    assert "pass --allow-context production" in str(result.exception)
    assert undone == []
    assert path.exists()


def test_recover_with_a_missing_kubeconfig_is_exit_2_naming_it(
    settings: Settings, tmp_path: Path
) -> None:
    missing = tmp_path / "nope"
    result = invoke("recover", "--kubeconfig", str(missing), "--allow-context", "x")
    assert isinstance(result.exception, InvalidInput)
    assert (
        str(result.exception)
        == f"--kubeconfig {missing}: no such file: give the path of a kubeconfig"
    )


def test_recover_by_cluster_name_still_reads_the_clusters_state_file(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = leave_a_change(settings, resolve_target(settings, cluster="lab"))
    assert path == state_path(settings, "lab")
    monkeypatch.setattr("chaoskit.cluster.health.api_client", lambda kubeconfig: "api of lab")
    waited: list[tuple[Any, int]] = []
    monkeypatch.setattr(
        "chaoskit.cluster.health.wait_ready",
        lambda api, *, expected_nodes, timeout: waited.append((api, expected_nodes)),
    )
    result = invoke("recover", "--cluster", "lab")
    assert result.exit_code == 0, result.output
    assert undone == [{"n": 1}]
    assert waited == [("api of lab", 3)]


class _Timeline:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def start(self) -> _Timeline:
        return self

    def mark(self, *args: Any) -> None:
        pass

    def events(self) -> list[Any]:
        return []

    def stop(self) -> None:
        pass


class _Informers:
    def __init__(self, api: Any) -> None:
        pass

    def stop(self) -> None:
        pass


def test_a_run_records_a_foreign_context_where_recover_looks(
    settings: Settings, foreign: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_context, "Timeline", _Timeline)
    monkeypatch.setattr(run_context, "Informers", _Informers)
    monkeypatch.setattr(Target, "api", lambda self, retries=True: None)
    operator.give(kubeconfig=str(foreign), allow_context="production")
    run_context.reset()
    try:
        ctx = run_context.get({})
        assert ctx.env.state.path == state_path(settings, "context.production")
        assert ctx.env.state.path.is_file()  # the run is recorded before any fault
    finally:
        run_context.reset()
        operator.give()


def cli_process(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHAOSKIT_")}
    return subprocess.run(
        [sys.executable, "-c", "from chaoskit.cli import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**environ, "CHAOSKIT_CACHE_DIR": str(cache)},
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--kubeconfig", "{missing}"), "--kubeconfig {missing}: no such file"),
        (
            ("--kubeconfig", "{foreign}", "--context", "staging"),
            "--context staging: no such context",
        ),
        (
            ("--kubeconfig", "{foreign}"),
            "kube context 'production' is not one of chaoskit's kind clusters (kind-lab): "
            "pass --allow-context production",
        ),
    ],
)
def test_chaoskit_run_refuses_a_bad_target_with_one_line_and_exit_2(
    settings: Settings, foreign: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    values = {"missing": str(tmp_path / "missing"), "foreign": str(foreign)}
    output = tmp_path / "result.json"
    proc = cli_process(
        "run",
        str(REPO / "experiments" / "pod-kill.yaml"),
        "--output",
        str(output),
        *(a.format(**values) for a in args),
        cache=settings.cache_dir,
    )
    assert proc.returncode == 2, proc.stderr
    # (chaostoolkit's own INFO lines come before it)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("chaoskit: error: ")]
    assert len(errors) == 1, proc.stderr
    assert message.format(**values) in errors[0]
    assert not output.exists()
    assert not (settings.cache_dir / "state").exists()


def test_faults_plan_checks_kubeconfig_and_context_as_run_does(
    settings: Settings, foreign: Path
) -> None:
    unknown = cli_process(
        "faults",
        "plan",
        "node-stop",
        "--cluster",
        "lab",
        "--context",
        "kind-other",
        cache=settings.cache_dir,
    )
    assert unknown.returncode == 2, unknown.stderr
    assert "--context kind-other: no such context in" in unknown.stderr
    not_allowed = cli_process(
        "faults",
        "plan",
        "node-stop",
        "--kubeconfig",
        str(foreign),
        "--context",
        "production",
        cache=settings.cache_dir,
    )
    assert not_allowed.returncode == 2, not_allowed.stderr
    assert "pass --allow-context production" in not_allowed.stderr


def test_suite_run_refuses_a_foreign_context_before_making_anything(
    settings: Settings, foreign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def prepare(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the suite started preparing the cluster")

    monkeypatch.setattr("chaoskit.suite.runner.prepare", prepare)
    result = invoke(
        "suite",
        "run",
        str(REPO / "experiments" / "suites" / "smoke.yaml"),
        "--kubeconfig",
        str(foreign),
        "--allow-context",
        "production",
        "--out",
        str(tmp_path / "out"),
    )
    assert isinstance(result.exception, InvalidInput), result.output
    assert (
        f"kube context 'production' of {foreign}: a suite runs only on chaoskit's own kind clusters"
        in str(result.exception)
    )
    assert not (tmp_path / "out").exists()


class _Stop(Exception):
    pass


def test_suite_run_through_a_kubeconfig_runs_on_the_chaoskit_cluster_it_names(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = kubeconfig(tmp_path / "kube" / "mine", "kind-lab", "https://127.0.0.1:4000")
    seen: list[str] = []

    def prepare(settings: Any, suite: Any, **kwargs: Any) -> Any:
        seen.append(suite.cluster_name)
        raise _Stop

    monkeypatch.setattr("chaoskit.suite.runner.prepare", prepare)
    result = invoke(
        "suite",
        "run",
        str(REPO / "experiments" / "suites" / "smoke.yaml"),
        "--kubeconfig",
        str(mine),
        "--out",
        str(tmp_path / "out"),
    )
    assert isinstance(result.exception, _Stop), result.output
    assert seen == ["lab"]

    other = invoke(
        "suite",
        "run",
        str(REPO / "experiments" / "suites" / "smoke.yaml"),
        "--kubeconfig",
        str(mine),
        "--cluster",
        "other",
        "--out",
        str(tmp_path / "out"),
    )
    assert isinstance(other.exception, InvalidInput)
    assert "--cluster other: the kube context 'kind-lab' is chaoskit's cluster 'lab'" in str(
        other.exception
    )
