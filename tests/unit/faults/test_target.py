"""Safety: only chaoskit's kind clusters, unless a context is allowed by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from chaoskit.errors import InvalidInput
from chaoskit.faults.errors import InvalidParam
from chaoskit.faults.target import foreign_key, resolve_target
from chaoskit.settings import Settings


def kubeconfig(path: Path, context: str, server: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": context,
                "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
                "clusters": [{"name": context, "cluster": {"server": server}}],
                "users": [{"name": context, "user": {}}],
            }
        )
    )
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    cluster_dir = tmp_path / "cache" / "clusters" / "lab"
    kubeconfig(cluster_dir / "kubeconfig", "kind-lab", "https://127.0.0.1:4000")
    (cluster_dir / "cluster.json").write_text(
        json.dumps(
            {
                "name": "lab",
                "config": "kind-config.yaml",
                "image": "x",
                "control_planes": 1,
                "workers": 1,
                "created": "now",
                "kubeconfig": str(cluster_dir / "kubeconfig"),
                "create_seconds": 1.0,
            }
        )
    )
    return Settings(cache_dir=tmp_path / "cache")


def test_chaoskits_own_cluster_is_a_target(settings: Settings) -> None:
    target = resolve_target(settings, cluster="lab", namespaces=["shop", "e2e"])
    assert (target.cluster, target.context, target.managed) == ("lab", "kind-lab", True)
    assert target.namespaces == ("shop", "e2e")


def test_an_unknown_cluster_is_refused_listing_chaoskits(settings: Settings) -> None:
    with pytest.raises(
        InvalidInput, match=r"no chaoskit cluster named 'prod' \(chaoskit's clusters: lab\)"
    ):
        resolve_target(settings, cluster="prod")


def test_a_foreign_context_is_refused_unless_allowed_by_name(
    settings: Settings, tmp_path: Path
) -> None:
    foreign = kubeconfig(tmp_path / "kube" / "config", "production", "https://10.0.0.1:6443")
    with pytest.raises(InvalidInput) as e:
        resolve_target(settings, kubeconfig=foreign)
    assert "kube context 'production' is not one of chaoskit's kind clusters (kind-lab)" in str(
        e.value
    )
    assert "--allow-context production" in str(e.value)
    with pytest.raises(InvalidInput):
        resolve_target(settings, kubeconfig=foreign, allow_context="staging")
    target = resolve_target(settings, kubeconfig=foreign, allow_context="production")
    assert target.managed is False and target.context == "production"


def test_a_kind_context_pointing_elsewhere_is_not_chaoskits(
    settings: Settings, tmp_path: Path
) -> None:
    other = kubeconfig(tmp_path / "kube" / "config", "kind-lab", "https://192.168.1.5:6443")
    with pytest.raises(InvalidInput, match="not one of chaoskit's kind clusters"):
        resolve_target(settings, kubeconfig=other)
    same = kubeconfig(tmp_path / "kube" / "config2", "kind-lab", "https://127.0.0.1:4000")
    assert resolve_target(settings, kubeconfig=same).managed is True


def test_namespaces_outside_the_allowlist_are_refused(settings: Settings) -> None:
    target = resolve_target(settings, cluster="lab")
    assert target.namespaces == ("shop",)
    target.check_namespace("shop")
    with pytest.raises(InvalidParam) as e:
        target.check_namespace("kube-system")
    assert e.value.field == "namespace"
    assert "not in the allowlist (shop)" in e.value.reason


def test_a_missing_kubeconfig_is_one_line_naming_the_flag_and_file(
    settings: Settings, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "config"
    with pytest.raises(InvalidInput) as e:
        resolve_target(settings, kubeconfig=missing, allow_context="production")
    assert str(e.value) == f"--kubeconfig {missing}: no such file: give the path of a kubeconfig"
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(InvalidInput, match="not a file"):
        resolve_target(settings, kubeconfig=folder)


def test_an_unknown_context_is_refused_listing_the_files_contexts(
    settings: Settings, tmp_path: Path
) -> None:
    foreign = kubeconfig(tmp_path / "kube" / "config", "production", "https://10.0.0.1:6443")
    with pytest.raises(InvalidInput) as e:
        resolve_target(settings, kubeconfig=foreign, context="staging", allow_context="staging")
    assert str(e.value) == f"--context staging: no such context in {foreign} (contexts: production)"
    own = settings.cache_dir / "clusters" / "lab" / "kubeconfig"
    with pytest.raises(InvalidInput, match=r"--context kind-other: no such context in .*kind-lab"):
        resolve_target(settings, cluster="lab", context="kind-other")
    assert own.is_file()


def test_the_context_flag_picks_a_context_that_is_not_the_current_one(
    settings: Settings, tmp_path: Path
) -> None:
    path = kubeconfig(tmp_path / "kube" / "config", "production", "https://10.0.0.1:6443")
    doc = yaml.safe_load(path.read_text())
    doc["contexts"].append({"name": "kind-lab", "context": {"cluster": "lab", "user": "x"}})
    doc["clusters"].append({"name": "lab", "cluster": {"server": "https://127.0.0.1:4000"}})
    path.write_text(yaml.safe_dump(doc))
    # The current context (production) would be refused; --context names chaoskit's own.
    target = resolve_target(settings, kubeconfig=path, context="kind-lab")
    assert (target.cluster, target.context, target.managed) == ("lab", "kind-lab", True)
    with pytest.raises(InvalidInput, match="--allow-context production"):
        resolve_target(settings, kubeconfig=path)


def test_an_allowed_context_has_its_own_state_key_never_a_clusters(
    settings: Settings, tmp_path: Path
) -> None:
    own = resolve_target(settings, cluster="lab")
    assert own.key == "lab"
    # Another kind cluster named like chaoskit's: kind-lab, but another API server.
    other = kubeconfig(tmp_path / "kube" / "config", "kind-lab", "https://192.168.1.5:6443")
    target = resolve_target(settings, kubeconfig=other, allow_context="kind-lab")
    assert (target.cluster, target.managed) == ("lab", False)
    assert target.key == "context.kind-lab" != own.key


def test_a_context_name_that_is_no_file_name_gets_a_safe_distinct_key() -> None:
    eks = foreign_key("arn:aws:eks:eu-west-1:123:cluster/prod")
    assert eks.startswith("context.arn_aws_eks_eu-west-1_123_cluster_prod-")
    assert "/" not in eks and ":" not in eks
    assert foreign_key("arn:aws:eks:eu-west-1:123:cluster:prod") != eks
    assert foreign_key("gke_proj_zone_prod") == "context.gke_proj_zone_prod"


def test_an_allowed_extra_context_in_chaoskits_kubeconfig_is_not_managed(
    settings: Settings,
) -> None:
    own = settings.cache_dir / "clusters" / "lab" / "kubeconfig"
    doc = yaml.safe_load(own.read_text())
    doc["contexts"].append({"name": "admin@lab", "context": {"cluster": "kind-lab", "user": "x"}})
    own.write_text(yaml.safe_dump(doc))
    with pytest.raises(InvalidInput, match="--allow-context admin@lab"):
        resolve_target(settings, cluster="lab", context="admin@lab")
    target = resolve_target(settings, cluster="lab", context="admin@lab", allow_context="admin@lab")
    assert target.managed is False
