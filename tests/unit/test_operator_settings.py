"""Only the person running chaoskit widens the target; down deletes only chaoskit's clusters."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskit.cluster import lifecycle
from chaoskit.ctk import context as run_context
from chaoskit.ctk import operator
from chaoskit.ctk.experiment import run_experiment_file
from chaoskit.errors import InvalidInput
from chaoskit.settings import Settings

REPO = Path(__file__).resolve().parents[2]
POD_KILL = yaml.safe_load((REPO / "experiments" / "pod-kill.yaml").read_text())


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Any:
    for _, variable in operator.OPERATOR_KEYS.values():
        monkeypatch.delenv(variable, raising=False)
    operator.give()
    yield
    operator.give()


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("chaoskit_allow_context", "use --allow-context or CHAOSKIT_ALLOW_CONTEXT"),
        ("chaoskit_kubeconfig", "use --kubeconfig or CHAOSKIT_KUBECONFIG"),
        ("chaoskit_context", "use --context or CHAOSKIT_CONTEXT"),
    ],
)
def test_validate_rejects_a_file_that_widens_the_target(
    tmp_path: Path, key: str, hint: str
) -> None:
    doc = copy.deepcopy(POD_KILL)
    doc.setdefault("configuration", {})[key] = "kind-someone-elses"
    path = tmp_path / "shared.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = subprocess.run(
        [sys.executable, "-c", "from chaoskit.cli import main; main()", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert f"{path}: configuration.{key}: set by the person running chaoskit" in proc.stderr
    assert hint in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_configuration_value_is_ignored_at_run_time_the_operators_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = {"chaoskit_allow_context": "kind-other", "chaoskit_kubeconfig": "/elsewhere"}
    assert run_context.setting(config, "chaoskit_allow_context") is None
    assert run_context.setting(config, "chaoskit_kubeconfig") is None
    monkeypatch.setenv("CHAOSKIT_ALLOW_CONTEXT", "from-env")
    assert run_context.setting(config, "chaoskit_allow_context") == "from-env"
    operator.give(allow_context="from-cli")
    assert run_context.setting(config, "chaoskit_allow_context") == "from-cli"
    assert run_context.setting({"chaoskit_cluster": "c"}, "chaoskit_cluster") == "c"


class _Stop(Exception):
    pass


def test_chaoskit_run_passes_the_target_outside_the_experiment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    def resolve(configuration: Any = None, settings: Any = None) -> Any:
        seen["configuration"] = dict(configuration or {})
        for key in operator.OPERATOR_KEYS:
            seen[key] = run_context.setting(configuration, key)
        raise _Stop

    monkeypatch.setattr(run_context, "resolve", resolve)
    with pytest.raises(_Stop):
        run_experiment_file(
            REPO / "experiments" / "pod-kill.yaml",
            output=tmp_path / "r.json",
            allow_context="kind-mine",
            kubeconfig=Path("/k/config"),
            context="kind-mine",
        )
    assert seen["chaoskit_allow_context"] == "kind-mine"
    assert seen["chaoskit_kubeconfig"] == "/k/config"
    assert seen["chaoskit_context"] == "kind-mine"
    assert not set(operator.OPERATOR_KEYS) & set(seen["configuration"])


def test_a_configured_context_is_ignored_at_run_time() -> None:
    # Before, an experiment's chaoskit_context chose the context; now only the operator does.
    assert run_context.setting({"chaoskit_context": "production"}, "chaoskit_context") is None
    operator.give(context="kind-lab")
    assert run_context.setting({"chaoskit_context": "production"}, "chaoskit_context") == (
        "kind-lab"
    )


class _Kind:
    def __init__(self, clusters: list[str]) -> None:
        self.existing = clusters
        self.deleted: list[str] = []

    def clusters(self) -> list[str]:
        return self.existing

    def delete(self, name: str, **kwargs: object) -> None:
        self.deleted.append(name)


def test_down_deletes_only_clusters_chaoskit_made(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path)
    kind = _Kind(["theirs", "ours"])
    with pytest.raises(InvalidInput, match=r"not made by chaoskit.*--force"):
        lifecycle.down(settings, kind, "theirs")  # type: ignore[arg-type]
    assert kind.deleted == []

    lifecycle.ClusterDir.of(settings, "ours").root.mkdir(parents=True)
    assert lifecycle.down(settings, kind, "ours")  # type: ignore[arg-type]
    assert lifecycle.down(settings, kind, "theirs", force=True)  # type: ignore[arg-type]
    assert kind.deleted == ["ours", "theirs"]


def test_down_of_a_cluster_that_does_not_exist_is_a_quiet_no_op(tmp_path: Path) -> None:
    kind = _Kind([])
    assert not lifecycle.down(Settings(cache_dir=tmp_path), kind, "gone")  # type: ignore[arg-type]
    assert kind.deleted == []
