"""The etcd drill's faults on a node, with the node's commands faked: the member read from
kubeadm's etcd.yaml, the snapshot, the restore that always puts the manifests back, the
clean-up; and the agent reporting a restore once the API it took away is back."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chaoskit.agent.nodeagent import host as h
from chaoskit.agent.nodeagent import orders as o
from chaoskit.agent.nodeagent.daemon import Agent
from chaoskit.agent.nodeagent.kube import ApiUnavailable
from chaoskit.agent.nodeagent.store import Store
from tests.unit.agent.test_daemon import FakeApi

ETCD_YAML = """\
apiVersion: v1
kind: Pod
spec:
  containers:
  - command:
    - etcd
    - --advertise-client-urls=https://172.18.0.3:2379
    - --data-dir={data}
    - --initial-advertise-peer-urls=https://172.18.0.3:2380
    - --initial-cluster=cp1=https://172.18.0.3:2380
    - "--name=cp1"
    image: registry.k8s.io/etcd:3.6.5-0
"""
RID = "abc123def456"


@dataclass(frozen=True)
class FakeNode(h.Host):
    """A node whose commands are recorded; ``running`` names the containers crictl lists,
    ``fail`` words of commands that exit 1, ``during_restore`` runs inside the restore."""

    commands: list[tuple[str, ...]] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    fail: tuple[str, ...] = ()
    during_restore: Callable[[], None] | None = None

    def run(
        self, *argv: str, check: bool = True, timeout: float = h.COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        self.commands.append(argv)
        line = " ".join(argv)
        out, code = "", 1 if any(word in line for word in self.fail) else 0
        if argv[:2] == ("crictl", "ps"):
            name = next(a.rpartition("=")[2] for a in argv if "container.name=" in a)
            out = f"id-{name}\n" if name in self.running else ""
        elif argv[:2] == ("crictl", "inspect"):
            out = "4242"
        elif argv[:2] == ("crictl", "exec") and "save" in argv and not code:
            Path(argv[-1]).write_bytes(b"every secret")
        elif argv[0] == "mv" and not code:
            Path(argv[1]).replace(argv[2])
        elif argv[1:3] == ("snapshot", "status"):
            out = '{"hash":1,"revision":84211,"totalKey":900,"totalSize":16932896}'
        elif argv[0] == "cp" and not code:
            Path(argv[2]).write_bytes(b"#!etcdutl")
        elif argv[:2] == ("sh", "-c") and "snapshot restore" in argv[2]:
            if self.during_restore is not None:
                self.during_restore()
            # what the manifests' state is while etcdutl runs
            self.commands.append(("held:", *sorted(p.name for p in self.held.iterdir())))
        if check and code:
            raise h.HostFailed(f"{line} failed")
        return subprocess.CompletedProcess(argv, code, out, "failed" if code else "")


def _node(tmp_path: Path, **kw: Any) -> FakeNode:
    kube = tmp_path / "kubernetes"
    (kube / "manifests").mkdir(parents=True)
    data = tmp_path / "etcd"
    data.mkdir()
    (kube / "manifests" / "etcd.yaml").write_text(ETCD_YAML.format(data=data))
    (kube / "manifests" / "kube-apiserver.yaml").write_text("api")
    return FakeNode("cp1", kube, files_dir=tmp_path / "drill", **kw)


def _stage(node: FakeNode) -> None:
    node.files_dir.mkdir(parents=True, exist_ok=True)
    (node.files_dir / "etcdutl").write_bytes(b"#!etcdutl")
    (node.files_dir / f"snapshot-{RID}.db").write_bytes(b"every secret")


def _restore_params(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "rid": RID,
        "name": "cp1",
        "peer_url": "https://172.18.0.3:2380",
        "data_dir": str(tmp_path / "etcd"),
        "initial_cluster": "cp1=https://172.18.0.3:2380",
        "not_before": f"{time.time():.3f}",
        **extra,
    }


def _restores(node: FakeNode) -> list[tuple[str, ...]]:
    return [c for c in node.commands if c[:2] == ("sh", "-c") and "snapshot restore" in c[2]]


def _manifests(node: FakeNode) -> list[str]:
    return sorted(p.name for p in node.manifests.iterdir())


def test_member_flags_from_kubeadms_manifest() -> None:
    flags = h.member_flags(ETCD_YAML.format(data="/var/lib/etcd"))
    assert flags["name"] == "cp1"
    assert flags["data-dir"] == "/var/lib/etcd"
    assert flags["initial-advertise-peer-urls"] == "https://172.18.0.3:2380"


def test_the_member_is_read_also_while_its_manifest_is_held(tmp_path: Path) -> None:
    node = _node(tmp_path)
    node.held.mkdir()
    (node.manifests / "etcd.yaml").replace(node.held / "etcd.yaml")
    assert h.etcd_member(node)["name"] == "cp1"
    (node.held / "etcd.yaml").unlink()
    with pytest.raises(h.FaultRefused, match=r"node cp1 has no etcd\.yaml"):
        h.etcd_member(node)


def test_stage_copies_the_members_own_etcdutl(tmp_path: Path) -> None:
    node = _node(tmp_path, running=["etcd"])
    info = h.FAULTS["etcd-stage"].apply(node, {})
    assert info["name"] == "cp1" and info["data_dir"] == str(tmp_path / "etcd")
    part = str(node.files_dir / "etcdutl.part")
    assert ("cp", "/proc/4242/root/usr/local/bin/etcdutl", part) in node.commands
    assert (node.files_dir / "etcdutl").read_bytes() == b"#!etcdutl"


def test_stage_refuses_an_image_without_etcdutl(tmp_path: Path) -> None:
    node = _node(tmp_path, running=["etcd"], fail=("cp /proc",))
    with pytest.raises(h.FaultRefused, match="etcd's image on node cp1 has no"):
        h.FAULTS["etcd-stage"].apply(node, {})


def test_snapshot_lands_in_the_drill_folder_and_nowhere_else(tmp_path: Path) -> None:
    node = _node(tmp_path, running=["etcd"])
    info = h.FAULTS["etcd-snapshot"].apply(node, {"rid": RID})
    assert info["bytes"] == "12"
    assert info["sha256"] == hashlib.sha256(b"every secret").hexdigest()
    assert (node.files_dir / f"snapshot-{RID}.db").read_bytes() == b"every secret"
    assert list((tmp_path / "etcd").iterdir()) == []  # not left in etcd's data dir
    saves = [c for c in node.commands if "save" in c]
    assert saves[0][:3] == ("crictl", "exec", "id-etcd")
    assert "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt" in saves[0]
    # Again for the same rid (an agent that restarted): the same file, no new snapshot.
    assert h.FAULTS["etcd-snapshot"].apply(node, {"rid": RID}) == info
    assert len([c for c in node.commands if "save" in c]) == 1


def test_restore_holds_both_down_restores_and_puts_etcd_back_first(tmp_path: Path) -> None:
    node = _node(tmp_path)
    _stage(node)
    params = _restore_params(tmp_path, min_revision="1084211")
    info = h.FAULTS["etcd-restore"].apply(node, params)
    (script,) = _restores(node)
    assert script[4:] == (
        str(node.files_dir / "etcdutl"),
        str(node.files_dir / f"snapshot-{RID}.db"),
        RID,
        "cp1",
        "cp1=https://172.18.0.3:2380",
        "https://172.18.0.3:2380",
        str(tmp_path / "etcd"),
        "1000000",  # 1084211 minus the snapshot's revision: the restored etcd starts there
    )
    assert "--bump-revision" in script[2] and "--mark-compacted" in script[2]
    assert '--initial-cluster-token "chaoskit-$rid"' in script[2]
    assert ("held:", "etcd.yaml", "kube-apiserver.yaml") in node.commands
    assert _manifests(node) == ["etcd.yaml", "kube-apiserver.yaml"]
    assert float(info["restored_after_s"]) >= 0


def test_a_failed_restore_still_puts_both_manifests_back(tmp_path: Path) -> None:
    node = _node(tmp_path, fail=("snapshot restore",))
    _stage(node)
    with pytest.raises(h.HostFailed):
        h.FAULTS["etcd-restore"].apply(node, _restore_params(tmp_path))
    assert _manifests(node) == ["etcd.yaml", "kube-apiserver.yaml"]


def test_a_member_that_does_not_stop_fails_and_is_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(h, "STOP_TIMEOUT", 0.3)
    node = _node(tmp_path, running=["etcd"])
    _stage(node)
    with pytest.raises(h.HostFailed, match="etcd on cp1 still runs"):
        h.FAULTS["etcd-restore"].apply(node, _restore_params(tmp_path))
    assert _manifests(node) == ["etcd.yaml", "kube-apiserver.yaml"]
    assert _restores(node) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"name": "cp2"}, "the etcd member on cp1 is"),
        ({"data_dir": "/var/lib/../etc"}, "not a plain absolute path"),
        ({"sha256": "0" * 64}, "SHA-256 differs"),
        ({"rid": "../x"}, "hex digits"),
        ({"not_before": "soon"}, "is not a time"),
        ({"min_revision": "1e9; rm -rf /"}, "is not a number"),
    ],
)
def test_restore_refuses_before_it_takes_anything_down(
    tmp_path: Path, change: dict[str, str], reason: str
) -> None:
    node = _node(tmp_path)
    _stage(node)
    with pytest.raises(h.FaultRefused, match=reason):
        h.FAULTS["etcd-restore"].apply(node, _restore_params(tmp_path, **change))
    assert _manifests(node) == ["etcd.yaml", "kube-apiserver.yaml"]
    assert node.commands == []


def test_restore_refuses_a_node_without_the_staged_snapshot(tmp_path: Path) -> None:
    node = _node(tmp_path)
    with pytest.raises(h.FaultRefused, match=r"has no .*etcdutl"):
        h.FAULTS["etcd-restore"].apply(node, _restore_params(tmp_path))


def test_restore_starts_at_not_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(h.time, "sleep", slept.append)
    node = _node(tmp_path)
    _stage(node)
    start = time.time() + 4
    h.FAULTS["etcd-restore"].apply(node, _restore_params(tmp_path, not_before=f"{start:.3f}"))
    assert 3 < slept[0] <= 4.01  # (not_before has milliseconds)


def test_cleanup_removes_the_snapshot_etcdutl_and_the_old_data(tmp_path: Path) -> None:
    node = _node(tmp_path)
    _stage(node)
    data = str(tmp_path / "etcd")
    h.FAULTS["etcd-drill-cleanup"].apply(node, {"rid": RID, "data_dir": data})
    assert list(node.files_dir.iterdir()) == []
    assert ("rm", "-rf", f"{data}.pre-{RID}", f"{data}.restore-{RID}") in node.commands
    with pytest.raises(h.FaultRefused, match="plain absolute path"):
        h.FAULTS["etcd-drill-cleanup"].apply(node, {"rid": RID, "data_dir": "/"})


def _status(node: FakeNode) -> dict[str, str]:
    return h.FAULTS["etcd-restore-status"].apply(node, {"rid": RID})


def test_the_restores_outcome_stays_on_the_node_for_etcd_restore_status(tmp_path: Path) -> None:
    node = _node(tmp_path)
    assert _status(node) == {"state": "none"}
    _stage(node)
    h.FAULTS["etcd-restore"].apply(node, _restore_params(tmp_path))
    assert _status(node)["state"] == "done"
    assert "restored_after_s" in _status(node)
    failing = _node(tmp_path / "other", fail=("snapshot restore",))
    _stage(failing)
    with pytest.raises(h.HostFailed):
        h.FAULTS["etcd-restore"].apply(failing, _restore_params(tmp_path / "other"))
    assert _status(failing)["state"] == "failed"
    assert "failed" in _status(failing)["message"]
    h.FAULTS["etcd-drill-cleanup"].apply(node, {"rid": RID, "data_dir": str(tmp_path / "etcd")})
    assert _status(node) == {"state": "none"}


class GoneApi(FakeApi):
    """Like the API: an order that is not there any more is a 404 (ApiUnavailable)."""

    def write_status(self, name: str, status: dict[str, Any]) -> None:
        if name not in self.objects:
            raise ApiUnavailable(f"PATCH {name}: HTTP 404 Not Found")
        super().write_status(name, status)


def test_an_agent_whose_restore_took_the_api_and_its_order_away_carries_on(
    tmp_path: Path,
) -> None:
    api = GoneApi()

    def api_goes_away() -> None:
        api.down = True
        # The restored etcd never held this order (it was made after the snapshot).
        del api.objects["restore-cp1"]

    node = _node(tmp_path, during_restore=api_goes_away)
    _stage(node)
    agent = Agent(node, api, Store(tmp_path / "orders.json"))
    agent.start()
    obj = o.order_object(
        "restore-cp1", "cp1", "etcd-restore", _restore_params(tmp_path), time.time() + 60
    )
    obj["metadata"]["uid"] = "uid-restore"
    api.objects["restore-cp1"] = obj
    agent.tick()  # applies; the API goes away meanwhile (its status is not written)
    assert _manifests(node) == ["etcd.yaml", "kube-apiserver.yaml"]
    assert agent.entries["uid-restore"].phase == "Undone"
    agent.tick()  # still down: nothing crashes, nothing is lost
    api.down = False
    agent.tick()  # back, without the order: the entry is forgotten, the outcome stays
    assert agent.entries == {}
    assert _status(node)["state"] == "done"
