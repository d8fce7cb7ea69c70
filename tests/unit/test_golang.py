from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from chaoskit import versions
from chaoskit.images import catalog
from chaoskit.images.golang import go_env, staging_modules
from chaoskit.images.steps import BuildEnv

GOMOD = """
module k8s.io/kubernetes

go 1.24.0

require (
\tk8s.io/api v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tk8s.io/code-generator => ./staging/src/k8s.io/code-generator
\tk8s.io/sample-apiserver => ./staging/src/k8s.io/sample-apiserver
\tgithub.com/x/y => github.com/x/y v1.0.0
)
"""


def test_staging_modules_are_read_from_the_go_mod() -> None:
    assert staging_modules(GOMOD) == ["k8s.io/api", "k8s.io/client-go"]


def test_go_caches_live_in_chaoskit_cache(tmp_path: Path) -> None:
    env = BuildEnv(cache_dir=tmp_path, contexts_dir=tmp_path)
    values = go_env(env, checksum_db=False)
    assert values["GOMODCACHE"] == str(tmp_path / "go" / "pkg" / "mod")
    assert values["GOCACHE"] == str(tmp_path / "go-build")
    assert values["CGO_ENABLED"] == "0"
    assert values["GOSUMDB"] == "off"
    assert "GOSUMDB" not in go_env(env)


def test_kubernetes_binaries_carry_their_true_version() -> None:
    flags = catalog.KUBERNETES.ldflags
    assert f"k8s.io/component-base/version.gitVersion={versions.KUBERNETES}" in flags
    assert f"k8s.io/client-go/pkg/version.gitVersion={versions.KUBERNETES}" in flags
    names = {out for out, _ in catalog.KUBERNETES.binaries}
    assert names == {
        "kubeadm",
        "kubelet",
        "kubectl",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
    }


def test_a_version_change_changes_the_recipe() -> None:
    other = replace(catalog.KIND, version="v0.31.0")
    assert other.recipe() != catalog.KIND.recipe()
