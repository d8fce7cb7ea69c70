"""etcd snapshots hold every Secret: a drill leaves none behind, or names what it left."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chaoskit.agent.client import Orders
from chaoskit.faults import etcd_drill
from chaoskit.faults.agentnodes import Hands
from chaoskit.faults.errors import FaultFailed
from chaoskit.faults.nodes import NodeOps
from chaoskit.faults.state import Change, Undo
from chaoskit.probes import oracle, watch
from chaoskit.settings import Settings


def _no_orders() -> Orders:
    raise AssertionError("the etcd drill's undo needs no agent")


class FakeNodes(NodeOps):
    """Records every command; ``fail`` names words of commands that exit 1."""

    def __init__(self, tmp: Path, fail: tuple[str, ...] = ()) -> None:
        super().__init__("c", tmp / "nodes.log")
        self.fail = fail
        self.commands: list[list[str]] = []

    def run(
        self, argv: list[str], *, what: str, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        self.commands.append(argv)
        if argv[:2] == ["docker", "cp"] and argv[-1].startswith("/"):
            Path(argv[-1]).write_bytes(b"every secret")  # the copy out to the host
        code = 1 if any(word in " ".join(argv) for word in self.fail) else 0
        if check and code:
            raise FaultFailed(f"{what} failed")
        return subprocess.CompletedProcess(argv, code, "", "")

    def removals(self) -> list[list[str]]:
        return [c for c in self.commands if "rm" in " ".join(c)]


def _env(tmp_path: Path, nodes: FakeNodes) -> Any:
    return SimpleNamespace(
        nodes=nodes,
        settings=Settings(cache_dir=tmp_path),
        target=SimpleNamespace(cluster="c", api=lambda retries=True: None),
        mark=lambda *args: None,
        state=SimpleNamespace(mark=lambda *args: None),
        core=lambda: None,
    )


@pytest.fixture
def drill(monkeypatch: pytest.MonkeyPatch) -> etcd_drill.EtcdRestoreDrill:
    planes = [SimpleNamespace(name="c-control-plane")]
    member = etcd_drill.Member("c-control-plane", "m", "https://x:2380", "/var/lib/etcd")
    monkeypatch.setattr(etcd_drill, "control_planes", lambda env, skip: planes)
    monkeypatch.setattr(etcd_drill, "read_member", lambda nodes, node: member)
    # The drill imports the watch machinery only when it acts: patch it where it lives.
    monkeypatch.setattr(watch, "Informers", lambda api: SimpleNamespace(stop=lambda: None))
    monkeypatch.setattr(oracle, "record", lambda informers, spaces: object())
    monkeypatch.setattr(etcd_drill, "etcdctl", lambda *args, **kwargs: None)
    monkeypatch.setattr(etcd_drill, "_running_etcd_pid", lambda *args: 1)
    monkeypatch.setattr(etcd_drill, "_delete_namespace", lambda *args: 0.1)
    monkeypatch.setattr(etcd_drill, "restore", lambda nodes, args: None)
    return etcd_drill.EtcdRestoreDrill(etcd_drill.DrillParams(namespace="shop"))


def _record(undo: Undo) -> Change:
    return Change("r-1", "r", "etcd-restore-drill", "etcd", undo, 0.0)


def _victim() -> Any:
    return etcd_drill.Victim(kind="cluster", name="etcd", namespace="shop")


def test_a_drill_that_fails_after_its_restore_removes_every_snapshot_copy(
    drill: etcd_drill.EtcdRestoreDrill, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def api_never_back(core: object, timeout: float) -> float:
        raise FaultFailed("the API did not serve within 300 s")

    monkeypatch.setattr(etcd_drill, "_wait_api", api_never_back)
    nodes = FakeNodes(tmp_path)
    with pytest.raises(FaultFailed, match="did not serve"):
        drill.inject(_env(tmp_path, nodes), _victim(), _record)
    assert list((tmp_path / "state" / "snapshots").iterdir()) == []
    assert any("snapshot-" in " ".join(c) for c in nodes.removals()), "node copies removed"


def test_a_drill_whose_restore_is_pending_keeps_the_snapshot_for_the_undo(
    drill: etcd_drill.EtcdRestoreDrill, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def destroy_fails(env: object, marker: str, details: object) -> None:
        raise FaultFailed("deleting namespace 'shop': Forbidden")

    monkeypatch.setattr(drill, "_destroy", destroy_fails)
    recorded: list[Undo] = []
    nodes = FakeNodes(tmp_path)
    with pytest.raises(FaultFailed, match="Forbidden"):
        drill.inject(_env(tmp_path, nodes), _victim(), lambda u: recorded.append(u) or _record(u))
    (snapshot,) = (tmp_path / "state" / "snapshots").iterdir()

    etcd_drill._restore_op(
        Hands(nodes, _no_orders), recorded[0].args
    )  # rollback / chaoskit recover
    assert not snapshot.exists(), "the undo removes it once the restore is done"


def test_the_in_node_snapshot_is_removed_when_the_copy_out_fails(
    drill: etcd_drill.EtcdRestoreDrill, tmp_path: Path
) -> None:
    nodes = FakeNodes(tmp_path, fail=("docker cp",))
    with pytest.raises(FaultFailed, match="copying the snapshot out"):
        drill.inject(_env(tmp_path, nodes), _victim(), _record)
    removed = " ".join(" ".join(c) for c in nodes.removals())
    assert "/var/lib/etcd/chaoskit-snapshot-" in removed


def test_a_snapshot_that_cannot_be_removed_is_named_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nodes = FakeNodes(tmp_path, fail=("rm -f",))
    with caplog.at_level(logging.WARNING):
        left = etcd_drill.remove_snapshots(nodes, ["c-control-plane"], "abc", None)
    assert left == [f"c-control-plane:{etcd_drill.NODE_WORKDIR}/snapshot-abc.db"]
    assert "snapshot-abc.db" in caplog.text
    assert "every Secret" in caplog.text
