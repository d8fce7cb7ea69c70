"""Deploying a system folder, the parts without a cluster: what is refused before anything
changes, what kubectl is given, when a workload counts as Ready, a failed build's lines."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from chaoskit.cluster.access import ClusterAccess
from chaoskit.errors import ClusterFailed, InvalidConfig
from chaoskit.progress import LogProgress
from chaoskit.settings import Settings
from chaoskit.system.spec import HelmDeploy, ManifestsDeploy, Workload, load_system
from chaoskit.topology import deploy, system_deploy

KVSTORE = Path(__file__).parent / "fixtures" / "kvstore"


class Ports:
    """A cluster that maps only the NodePorts it is given."""

    name = "c"

    def __init__(self, mapped: dict[int, int]) -> None:
        self.mapped = mapped

    def host_port(self, node_port: int) -> int:
        if node_port not in self.mapped:
            raise ClusterFailed(f"cluster 'c' publishes no host port for NodePort {node_port}")
        return self.mapped[node_port]


def test_published_services_become_loopback_urls() -> None:
    spec = load_system(KVSTORE)
    urls = system_deploy.published_urls(cast(ClusterAccess, Ports({30080: 41234})), spec)
    assert urls == {"entry": "http://127.0.0.1:41234"}


def test_an_unmapped_node_port_is_bad_input_naming_the_field(tmp_path: Path) -> None:
    spec = load_system(KVSTORE)
    with pytest.raises(InvalidConfig, match=r"publish\[0\]\.node_port: .*NodePort 30080"):
        system_deploy.deploy_system(
            Settings(cache_dir=tmp_path), cast(ClusterAccess, Ports({})), spec,
            progress=LogProgress(),
        )  # fmt: skip


def test_a_helm_chart_is_refused_before_anything_changes(tmp_path: Path) -> None:
    spec = load_system(KVSTORE)
    helm = replace(spec, deploy=HelmDeploy(chart=tmp_path, release="kv", namespace="kv", values=()))
    with pytest.raises(InvalidConfig, match=r"deploy\.helm: Helm charts cannot be deployed yet"):
        system_deploy.deploy_system(
            Settings(cache_dir=tmp_path), cast(ClusterAccess, Ports({30080: 1})), helm,
            progress=LogProgress(),
        )  # fmt: skip


def test_kubectl_applies_the_kustomization_or_each_manifest() -> None:
    spec = load_system(KVSTORE)
    assert system_deploy.apply_args(spec) == ["-k", str(KVSTORE / "manifests")]
    plain = replace(spec, deploy=ManifestsDeploy((Path("/s/a.yaml"), Path("/s/more"))))
    assert system_deploy.apply_args(plain) == ["-f", "/s/a.yaml", "-f", "/s/more"]


def workload(generation: int = 2, observed: int = 2, **status: Any) -> Any:
    return SimpleNamespace(
        metadata=SimpleNamespace(generation=generation),
        spec=SimpleNamespace(replicas=2),
        status=SimpleNamespace(observed_generation=observed, **status),
    )


def test_a_workload_is_ready_once_its_current_generation_is_ready_in_full() -> None:
    ready = {"ready_replicas": 2, "updated_replicas": 2, "current_replicas": 2}
    assert deploy.workload_ready("Deployment", workload(**ready))
    assert not deploy.workload_ready("Deployment", workload(observed=1, **ready))
    assert not deploy.workload_ready("Deployment", workload(**{**ready, "updated_replicas": 1}))
    assert deploy.workload_ready("StatefulSet", workload(**ready))
    daemons = {"desired_number_scheduled": 3, "number_ready": 3, "updated_number_scheduled": 3}
    assert deploy.workload_ready("DaemonSet", workload(**daemons))
    assert not deploy.workload_ready("DaemonSet", workload(**{**daemons, "number_ready": 2}))


def test_a_failed_build_is_told_by_its_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "deploy.log"
    failed = "The command '/bin/sh -c false' returned a non-zero code: 1"
    log.write_text(
        f"\n$ docker build\nStep 1/2 : FROM base\nStep 2/2 : RUN false\n{failed}\n# exit 1\n"
    )
    assert system_deploy.log_tail(log, 2) == (
        "Step 2/2 : RUN false | The command '/bin/sh -c false' returned a non-zero code: 1"
    )
    assert system_deploy.log_tail(tmp_path / "missing.log") == ""


def test_a_published_url_serves_once_it_takes_a_connection() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        system_deploy.wait_published({"entry": f"http://127.0.0.1:{port}"}, timeout=2)
    # closed now: nothing listens there
    with pytest.raises(deploy.DeployFailed, match=r"published 'entry' \(http://127.0.0.1:\d+\)"):
        system_deploy.wait_published({"entry": f"http://127.0.0.1:{port}"}, 0.2, poll=0.05)


def test_the_system_check_waits_for_its_workloads_then_its_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = load_system(KVSTORE)
    seen: list[Any] = []
    monkeypatch.setattr(system_deploy, "new_client", lambda *a, **k: "api")
    monkeypatch.setattr(system_deploy, "missing_namespaces", lambda api, s: [])
    monkeypatch.setattr(system_deploy, "system_digest", lambda access, s: "d1")
    monkeypatch.setattr(system_deploy, "other_deployment", lambda api, s, digest: None)
    monkeypatch.setattr(
        system_deploy,
        "wait_workloads",
        lambda api, s, timeout, absent_fails: seen.append(("workloads", api, absent_fails)),
    )
    monkeypatch.setattr(
        system_deploy, "wait_published", lambda urls, timeout: seen.append(("urls", urls))
    )
    access = ClusterAccess("c", Path("/k"), Path("/kubectl"))
    monkeypatch.setattr(ClusterAccess, "host_port", lambda self, port: 41234)
    checked = system_deploy.check_system(access, spec, progress=LogProgress(), timeout=30)
    assert checked.published == {"entry": "http://127.0.0.1:41234"}
    assert seen == [("workloads", "api", True), ("urls", {"entry": "http://127.0.0.1:41234"})]


@pytest.mark.parametrize(
    ("found", "reason"),
    [([], "no workloads in kv"), (["kv-store"], "kv/statefulset/kv-store does not exist")],
)
def test_a_system_not_deployed_fails_its_check_at_once(
    monkeypatch: pytest.MonkeyPatch, found: list[str], reason: str
) -> None:
    """A suite run asks first whether its system is deployed: when it is not, it is
    deployed at once, not after the check's whole timeout."""
    spec = load_system(KVSTORE)
    wanted = [Workload("kv", "StatefulSet", name) for name in found]
    monkeypatch.setattr(system_deploy, "wanted_workloads", lambda apps, s: wanted)
    monkeypatch.setattr(system_deploy, "read_workload", lambda apps, w: None)
    with pytest.raises(deploy.DeployFailed, match=f"system 'kvstore' is not deployed: {reason}"):
        system_deploy.wait_workloads(cast(Any, None), spec, 30, absent_fails=True)
    # Waiting after an apply still waits (for a workload an operator makes, say).
    with pytest.raises(deploy.DeployFailed, match="after 0 s"):
        system_deploy.wait_workloads(cast(Any, None), spec, 0.01, absent_fails=False)


def test_the_system_check_fails_at_once_when_a_namespace_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing deployed: nothing to wait for (a suite or a pytest session then deploys it
    without first waiting out the check's timeout)."""
    spec = load_system(KVSTORE)
    waited: list[str] = []
    monkeypatch.setattr(system_deploy, "new_client", lambda *a, **k: "api")
    monkeypatch.setattr(system_deploy, "missing_namespaces", lambda api, s: ["kv"])
    monkeypatch.setattr(system_deploy, "wait_workloads", lambda *a, **k: waited.append("workloads"))
    access = ClusterAccess("c", Path("/k"), Path("/kubectl"))
    monkeypatch.setattr(ClusterAccess, "host_port", lambda self, port: 41234)
    with pytest.raises(deploy.DeployFailed, match="namespace 'kv' does not exist: nothing is"):
        system_deploy.check_system(access, spec, progress=LogProgress(), timeout=300)
    assert waited == []


class _Namespaces:
    """The namespace reads of CoreV1Api, from a dict (no cluster in unit tests)."""

    def __init__(self, found: dict[str, tuple[dict[str, str], dict[str, str]]]) -> None:
        self.found = found

    def read_namespace(self, name: str, **_: Any) -> Any:
        labels, annotations = self.found[name]
        return SimpleNamespace(metadata=SimpleNamespace(labels=labels, annotations=annotations))


@pytest.mark.parametrize(
    ("labels", "annotations", "why"),
    [
        ({deploy.TOPOLOGY_LABEL: "kvstore"}, {system_deploy.DIGEST_ANNOTATION: "d1"}, None),
        (
            {deploy.TOPOLOGY_LABEL: "kvstore-unsafe"},
            {system_deploy.DIGEST_ANNOTATION: "d0"},
            "namespace 'kv' holds 'kvstore-unsafe', not 'kvstore'",
        ),
        ({}, {}, "namespace 'kv' holds 'something else', not 'kvstore'"),
        (
            {deploy.TOPOLOGY_LABEL: "kvstore"},
            {system_deploy.DIGEST_ANNOTATION: "d0"},
            "namespace 'kv' was deployed from other files of system 'kvstore'",
        ),
        (
            {deploy.TOPOLOGY_LABEL: "kvstore"},
            None,
            "namespace 'kv' was deployed from other files of system 'kvstore'",
        ),
    ],
)
def test_a_deployed_system_is_kept_only_when_it_is_this_one_from_these_files(
    monkeypatch: pytest.MonkeyPatch,
    labels: dict[str, str],
    annotations: dict[str, str] | None,
    why: str | None,
) -> None:
    """The unsafe variant of a system shares its namespaces: a suite of the safe one must
    not find it Ready and keep it."""
    spec = load_system(KVSTORE)
    fake = _Namespaces({"kv": (labels, cast(Any, annotations))})
    monkeypatch.setattr(system_deploy.client, "CoreV1Api", lambda api: fake)
    assert system_deploy.other_deployment(cast(Any, None), spec, "d1") == why


def test_the_digest_covers_the_system_file_and_its_manifests(tmp_path: Path) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text("kind: ConfigMap\n")
    system_file = tmp_path / "chaoskit-system.yaml"
    system_file.write_text("name: a\n")
    spec = replace(load_system(KVSTORE), path=system_file, deploy=ManifestsDeploy((manifest,)))
    access = ClusterAccess("c", Path("/k"), Path("/kubectl"))
    first = system_deploy.system_digest(access, spec)
    assert system_deploy.system_digest(access, spec) == first
    manifest.write_text("kind: Secret\n")
    changed_manifest = system_deploy.system_digest(access, spec)
    system_file.write_text("name: b\n")
    assert len({first, changed_manifest, system_deploy.system_digest(access, spec)}) == 3
