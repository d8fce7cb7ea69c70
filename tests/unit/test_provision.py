"""chaoskit.provision, the one path that makes (or reuses, or remakes) a kind cluster and
deploys (or keeps, checks, reaches) a topology or system on it, for the CLI, the suite runner
and the pytest plugin. Without Docker or a cluster: kind, the engine and the image build are
stand-ins that record what was asked of them; chaoskit's cluster records are real files."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from chaoskit import provision
from chaoskit.cluster import lifecycle
from chaoskit.cluster.config import load_config
from chaoskit.cluster.health import ClusterHealth
from chaoskit.errors import InvalidInput
from chaoskit.images.factory import ImageSet
from chaoskit.progress import LogProgress
from chaoskit.settings import Settings
from chaoskit.system.spec import load_system
from chaoskit.topology import deploy, system_deploy
from chaoskit.topology.catalog import ECOMMERCE

REPO = Path(__file__).resolve().parents[2]
KVSTORE = REPO / "tests" / "unit" / "system" / "fixtures" / "kvstore"


class FakeKind:
    """kind as far as lifecycle uses it: the clusters it lists, create and delete."""

    def __init__(self, steps: list[str], clusters: list[str]) -> None:
        self.steps = steps
        self.existing = clusters

    def clusters(self) -> list[str]:
        return list(self.existing)

    def create(self, name: str, *, kubeconfig: Path, **kwargs: object) -> None:
        self.steps.append(f"create {name}")
        kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
        self.existing.append(name)

    def delete(self, name: str, **kwargs: object) -> None:
        self.steps.append(f"delete {name}")
        self.existing.remove(name)


@pytest.fixture
def steps() -> list[str]:
    return []


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(cache_dir=tmp_path / "cache")


def machine(monkeypatch: pytest.MonkeyPatch, steps: list[str], clusters: list[str]) -> FakeKind:
    """A machine whose engine, image build and kind are stand-ins recording each step."""
    kind = FakeKind(steps, clusters)
    monkeypatch.setattr(provision, "ensure_engine", lambda log: steps.append("engine"))

    def build_all(settings: Settings, *, source: str, progress: object) -> ImageSet:
        steps.append(f"images {source}")
        return ImageSet("kindest/node:test", "local")

    monkeypatch.setattr(provision, "build_all", build_all)
    monkeypatch.setattr(provision.Kind, "find", staticmethod(lambda binary: kind))
    monkeypatch.setattr(provision, "kind_binary", lambda settings: Path("/kind"))
    monkeypatch.setattr(lifecycle, "apply_host_sysctls", lambda: None)
    monkeypatch.setattr(lifecycle, "api_client", lambda kubeconfig: None)
    monkeypatch.setattr(
        lifecycle, "wait_ready", lambda api, **kwargs: ClusterHealth(nodes=(), system_pods=())
    )
    return kind


def record(settings: Settings, name: str) -> None:
    """A cluster chaoskit made earlier: its folder, kubeconfig and state file."""
    cdir = lifecycle.ClusterDir.of(settings, name)
    cdir.root.mkdir(parents=True)
    cdir.kubeconfig.write_text("apiVersion: v1\n")
    info = lifecycle.ClusterInfo(
        name=name, config="k.yaml", image="old", control_planes=3, workers=2,
        created="then", kubeconfig=str(cdir.kubeconfig), create_seconds=1.0,
    )  # fmt: skip
    cdir.state.write_text(json.dumps(asdict(info)))


QUICK = REPO / "kind-config.quick.yaml"


def provide(settings: Settings, mode: provision.ClusterMode) -> provision.ProvidedCluster:
    return provision.provide_cluster(
        settings, load_config(QUICK), name="lab", mode=mode, progress=LogProgress()
    )


def test_a_missing_cluster_is_made_after_the_engine_and_images_in_every_mode(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, steps: list[str]
) -> None:
    for mode in (provision.NEW, provision.REUSE, provision.FRESH):
        steps.clear()
        kind = machine(monkeypatch, steps, [])
        made = provide(settings, mode)
        assert steps == ["engine", "images auto", "create lab"], mode
        assert made.made and made.health is not None
        assert (made.name, made.info.control_planes, made.info.workers) == ("lab", 1, 1)
        assert made.info.image == "kindest/node:test"
        assert lifecycle.recorded(settings, "lab") == made.info
        kind.delete("lab")
        lifecycle.ClusterDir.of(settings, "lab").state.unlink()


def test_reuse_keeps_chaoskits_cluster_and_fresh_remakes_it(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, steps: list[str]
) -> None:
    machine(monkeypatch, steps, ["lab"])
    record(settings, "lab")
    reused = provide(settings, provision.REUSE)
    assert steps == ["engine", "images auto"]
    assert not reused.made and reused.health is None
    assert reused.info.image == "old"

    steps.clear()
    fresh = provide(settings, provision.FRESH)
    assert steps == ["engine", "images auto", "delete lab", "create lab"]
    assert fresh.made and fresh.info.image == "kindest/node:test"


def test_new_refuses_a_cluster_that_is_there_with_the_message_cluster_up_gave(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, steps: list[str]
) -> None:
    machine(monkeypatch, steps, ["lab"])
    record(settings, "lab")
    with pytest.raises(lifecycle.ClusterExists) as caught:
        provide(settings, provision.NEW)
    assert str(caught.value) == (
        "a kind cluster named 'lab' exists already: use it, or remove it with "
        "'chaoskit cluster down --name lab'"
    )
    assert isinstance(caught.value, InvalidInput)  # exit 2
    assert steps == ["engine", "images auto"]


@pytest.mark.parametrize("mode", [provision.REUSE, provision.FRESH])
def test_a_kind_cluster_chaoskit_did_not_make_is_neither_reused_nor_deleted(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, steps: list[str], mode: Any
) -> None:
    machine(monkeypatch, steps, ["lab"])  # no record of chaoskit's
    with pytest.raises(lifecycle.ClusterExists):
        provide(settings, mode)
    assert steps == ["engine", "images auto"]


# --------------------------------------------------------------------------- deployments


class Ports:
    """A kind cluster's host ports: NodePort n is reached on 127.0.0.1:(n + 10000)."""

    name = "lab"

    def host_port(self, node_port: int) -> int:
        return node_port + 10000


ACCESS: Any = Ports()


def calls_recorded(monkeypatch: pytest.MonkeyPatch, *, serving: bool) -> list[str]:
    """system_deploy and deploy as stand-ins: what was called; the checks pass if
    ``serving``, else raise DeployFailed as they do."""
    calls: list[str] = []

    def check_system(access: Any, spec: Any, *, progress: Any, timeout: float) -> Any:
        calls.append(f"check_system {timeout:g}")
        if not serving:
            raise deploy.DeployFailed("namespace 'kv' does not exist: nothing is deployed")
        return system_deploy.DeployedSystem(spec.name, {"entry": "http://127.0.0.1:1"}, 1.0)

    def deploy_system(settings: Any, access: Any, spec: Any, *, progress: Any, timeout: Any) -> Any:
        calls.append(f"deploy_system {timeout}")
        return system_deploy.DeployedSystem(spec.name, {"entry": "http://127.0.0.1:2"}, 9.0)

    endpoints = deploy.Endpoints("http://127.0.0.1:3", "http://127.0.0.1:4")

    def check(access: Any, topo: Any, *, progress: Any, timeout: float) -> Any:
        calls.append(f"check {timeout:g}")
        if not serving:
            raise deploy.DeployFailed("namespace 'shop' does not exist: nothing is deployed")
        return deploy.DeployResult(endpoints, "order-1", 1.0)

    def deploy_(settings: Any, access: Any, topo: Any, *, progress: Any, timeout: float) -> Any:
        calls.append(f"deploy {timeout:g}")
        return deploy.DeployResult(endpoints, "order-2", 9.0)

    monkeypatch.setattr(system_deploy, "check_system", check_system)
    monkeypatch.setattr(system_deploy, "deploy_system", deploy_system)
    monkeypatch.setattr(deploy, "check", check)
    monkeypatch.setattr(deploy, "deploy", deploy_)
    return calls


def on(settings: Settings, target: Any, mode: provision.DeployMode, **kw: Any) -> Any:
    return provision.provide_deployment(
        settings, ACCESS, target, mode=mode, progress=LogProgress(), **kw
    )


def test_keep_keeps_a_system_that_serves_and_deploys_one_that_does_not(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    spec = load_system(KVSTORE)
    calls = calls_recorded(monkeypatch, serving=True)
    kept = on(settings, spec, provision.KEEP)
    assert calls == ["check_system 90"]
    assert (kept.applied, kept.published, kept.ingress) == (
        False,
        {"entry": "http://127.0.0.1:1"},
        "http://127.0.0.1:1",
    )
    assert (kept.is_system, kept.namespaces, kept.prometheus) == (True, ("kv",), None)

    calls = calls_recorded(monkeypatch, serving=False)
    deployed = on(settings, spec, provision.KEEP)
    assert calls == ["check_system 90", "deploy_system None"]  # the system's wait.timeout
    assert deployed.applied and deployed.ingress == "http://127.0.0.1:2"


def test_keep_deploy_and_check_on_the_shop(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    calls = calls_recorded(monkeypatch, serving=False)
    shop = on(settings, ECOMMERCE, provision.KEEP)
    assert calls == ["check 90", "deploy 600"]
    assert (shop.applied, shop.order_id, shop.namespaces) == (True, "order-2", ("shop",))
    assert (shop.ingress, shop.prometheus) == ("http://127.0.0.1:3", "http://127.0.0.1:4")
    assert not shop.is_system

    calls = calls_recorded(monkeypatch, serving=True)
    assert on(settings, ECOMMERCE, provision.DEPLOY, timeout=30).applied
    assert not on(settings, ECOMMERCE, provision.CHECK).applied
    assert calls == ["deploy 30", "check 600"]


def test_check_of_a_system_waits_its_own_timeout_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    spec = load_system(KVSTORE)
    calls = calls_recorded(monkeypatch, serving=False)
    with pytest.raises(deploy.DeployFailed, match="nothing is deployed"):
        on(settings, spec, provision.CHECK)
    assert calls == ["check_system 120"]  # wait.timeout of the fixture's file
    with pytest.raises(deploy.DeployFailed):
        on(settings, spec, provision.CHECK, timeout=5)
    assert calls[-1] == "check_system 5"


def test_reach_only_gives_the_urls(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    calls = calls_recorded(monkeypatch, serving=False)
    system = on(settings, load_system(KVSTORE), provision.REACH)
    assert (system.applied, system.published) == (False, {"entry": "http://127.0.0.1:40080"})
    shop = on(settings, ECOMMERCE, provision.REACH)
    assert (shop.ingress, shop.prometheus) == ("http://127.0.0.1:40080", "http://127.0.0.1:40090")
    assert calls == []


def test_a_system_without_load_sends_load_to_its_first_published_url(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    spec = replace(load_system(KVSTORE), load=None)
    assert on(settings, spec, provision.REACH).ingress == "http://127.0.0.1:40080"
    assert on(settings, replace(spec, publish=()), provision.REACH).ingress == ""
