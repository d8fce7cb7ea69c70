"""The etcd drill through the node agents, against fake orders: the restore orders go out
together while the API serves, and snapshots (they hold every Secret) are left nowhere, or
named when they cannot be removed."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from chaoskit.agent import files
from chaoskit.agent.client import Orders
from chaoskit.agent.nodeagent.orders import Order
from chaoskit.faults import etcd_drill
from chaoskit.faults.agentnodes import Hands
from chaoskit.faults.errors import FaultFailed
from chaoskit.faults.nodes import NodeOps
from chaoskit.faults.state import Change, Undo
from chaoskit.probes import oracle, watch
from chaoskit.settings import Settings

SNAPSHOT = b"every secret"
PLANES = ("cp1", "cp2", "cp3")


class FakeOrders:
    """One-shot orders that the fake agents carry out at once; ``fail`` maps a fault to
    the nodes where it fails."""

    def __init__(self, fail: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self.created: list[tuple[str, str, dict[str, str], float]] = []
        self.orders: dict[str, Order] = {}
        self.fail = fail or {}
        self.in_snapshot = ""
        self.custom = SimpleNamespace(api_client=object())

    def create(self, node: str, fault: str, params: Mapping[str, str], **kw: Any) -> str:
        name = kw["name"]
        self.created.append((node, fault, dict(params), kw["ttl"]))
        if fault == "etcd-snapshot":
            self.in_snapshot = name
        if fault == "etcd-restore" and self.in_snapshot:
            # The restored etcd holds the snapshot's order as it was (Pending).
            snapshot = self.in_snapshot
            self.orders[snapshot] = Order(
                snapshot, "uid", "cp1", "etcd-snapshot", {}, 0.0, "Expired"
            )
        if node in self.fail.get(fault, ()):
            phase, info = "Failed", {}
        else:
            phase, info = "Undone", self.agent(node, fault, params)
        if fault == "etcd-restore-status" and node in self.fail.get("etcd-restore", ()):
            phase, info = "Undone", {"state": "failed", "message": "etcdutl: no space left"}
        self.orders[name] = Order(
            name, "uid-" + name, node, fault, dict(params), time.time() + kw["ttl"], phase,
            f"{fault} failed on {node}" if phase == "Failed" else "", info,
        )  # fmt: skip
        return name

    @staticmethod
    def agent(node: str, fault: str, params: Mapping[str, str]) -> dict[str, str]:
        if fault == "etcd-stage":
            return {"name": node, "peer_url": f"https://{node}:2380", "data_dir": "/var/lib/etcd"}
        if fault == "etcd-snapshot":
            sha = hashlib.sha256(SNAPSHOT).hexdigest()
            return {"bytes": str(len(SNAPSHOT)), "sha256": sha}
        if fault == "etcd-restore-status":
            return {"state": "done", "restored_after_s": "2.50", "started_late_s": "0.10"}
        return {}

    def get(self, name: str) -> Order:
        return self.orders[name]

    def delete(self, name: str) -> None:
        self.orders.pop(name, None)

    def faults(self, fault: str) -> list[tuple[str, dict[str, str], float]]:
        return [(node, params, ttl) for node, f, params, ttl in self.created if f == fault]


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The transport, faked: the host's copy is written, pushes are listed."""
    pushed: list[str] = []

    def fetch(api: object, node: str, name: str, dest: Path, expected: files.Digest) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(SNAPSHOT)

    def push(api: object, node: str, src: Path, name: str, expected: files.Digest) -> bool:
        assert src.read_bytes() == SNAPSHOT
        assert expected == files.Digest(len(SNAPSHOT), hashlib.sha256(SNAPSHOT).hexdigest())
        pushed.append(f"{node}:{name}")
        return True

    monkeypatch.setattr(files, "fetch", fetch)
    monkeypatch.setattr(files, "push", push)
    monkeypatch.setattr(etcd_drill, "check_agents", lambda api, nodes: None)
    monkeypatch.setattr(etcd_drill, "_quiet", lambda api: api)
    monkeypatch.setattr(etcd_drill, "_wait_api", lambda api, timeout, since=None: 12.5)
    monkeypatch.setattr(etcd_drill, "RESTORE_LEAD", 0.0)
    monkeypatch.setattr(etcd_drill, "_min_revision", lambda api: 1_084_211)
    return pushed


def _env(tmp_path: Path, orders: FakeOrders) -> Any:
    agents = SimpleNamespace(ensure=lambda node: None, orders=lambda: orders)
    return SimpleNamespace(
        nodes=cast(NodeOps, None),
        settings=Settings(cache_dir=tmp_path),
        target=SimpleNamespace(cluster="c", api=lambda retries=True: None),
        mark=lambda *args: None,
        state=SimpleNamespace(mark=lambda *args: None),
        core=lambda: None,
        agents=lambda: agents,
    )


def _verdict(ok: bool) -> oracle.Verdict:
    return oracle.Verdict(
        ok=ok, problems=() if ok else ("deployment/shop/cart: missing",), checked_at=0.0
    )


@pytest.fixture
def drill(monkeypatch: pytest.MonkeyPatch) -> etcd_drill.EtcdRestoreDrill:
    planes = [SimpleNamespace(name=n) for n in PLANES]
    monkeypatch.setattr(etcd_drill, "control_planes", lambda env, skip: planes)
    # The drill imports the watch machinery only when it acts: patch it where it lives.
    monkeypatch.setattr(watch, "Informers", lambda api: SimpleNamespace(stop=lambda: None))
    monkeypatch.setattr(oracle, "record", lambda informers, spaces: object())
    monkeypatch.setattr(oracle, "wait_converged", lambda *args: _verdict(True))
    monkeypatch.setattr(etcd_drill, "_delete_namespace", lambda *args: 0.1)
    return etcd_drill.EtcdRestoreDrill(etcd_drill.DrillParams(namespace="shop"))


def _record(undo: Undo) -> Change:
    return Change("r-1", "r", "etcd-restore-drill", "etcd", undo, 0.0)


def _victim() -> Any:
    return etcd_drill.Victim(kind="cluster", name="etcd", namespace="shop")


def _snapshots(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "state" / "snapshots").iterdir())


def test_the_drill_orders_every_restore_together_with_one_start(
    drill: etcd_drill.EtcdRestoreDrill, copies: list[str], tmp_path: Path
) -> None:
    orders = FakeOrders()
    started = time.time()
    details = drill.inject(_env(tmp_path, orders), _victim(), _record)
    restores = orders.faults("etcd-restore")
    assert [node for node, _, _ in restores] == list(PLANES)
    assert len({params["not_before"] for _, params, _ in restores}) == 1
    assert {params["initial_cluster"] for _, params, _ in restores} == {
        "cp1=https://cp1:2380,cp2=https://cp2:2380,cp3=https://cp3:2380"
    }
    assert all(ttl >= etcd_drill.RESTORE_TIMEOUT for _, _, ttl in restores)
    assert {params["min_revision"] for _, params, _ in restores} == {"1084211"}
    # The snapshot's order (in the snapshot, Pending) has expired when the restore starts.
    ((_, _, snapshot_ttl),) = orders.faults("etcd-snapshot")
    assert snapshot_ttl == etcd_drill.SNAPSHOT_ORDER_TTL
    assert float(restores[0][1]["not_before"]) > started + snapshot_ttl
    # Each member's outcome was asked for with a new order (the restore's are gone).
    assert [node for node, _, _ in orders.faults("etcd-restore-status")] == list(PLANES)
    assert orders.orders == {}, "no order is left, the snapshot's own included"
    # The snapshot went to every member before the restore; then every copy went away.
    rid = restores[0][1]["rid"]
    assert set(copies) == {f"{n}:{etcd_drill.snapshot_name(rid)}" for n in PLANES}
    assert [node for node, _, _ in orders.faults("etcd-drill-cleanup")] == list(PLANES)
    assert _snapshots(tmp_path) == []
    assert details["snapshot_bytes"] == len(SNAPSHOT)
    assert details["api_back_after_s"] == 12.5
    assert details["restore_s"] == pytest.approx(2.6)


def test_a_drill_that_fails_after_its_restore_removes_every_snapshot_copy(
    drill: etcd_drill.EtcdRestoreDrill,
    copies: list[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(oracle, "wait_converged", lambda *args: _verdict(False))
    orders = FakeOrders()
    with pytest.raises(FaultFailed, match="is not back"):
        drill.inject(_env(tmp_path, orders), _victim(), _record)
    assert _snapshots(tmp_path) == []
    assert [node for node, _, _ in orders.faults("etcd-drill-cleanup")] == list(PLANES)


def test_a_drill_whose_restore_is_pending_keeps_the_snapshot_for_the_undo(
    drill: etcd_drill.EtcdRestoreDrill,
    copies: list[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    def destroy_fails(env: object, marker: str, details: object) -> None:
        raise FaultFailed("deleting namespace 'shop': Forbidden")

    monkeypatch.setattr(drill, "_destroy", destroy_fails)
    recorded: list[Undo] = []
    orders = FakeOrders()
    with pytest.raises(FaultFailed, match="Forbidden"):
        drill.inject(_env(tmp_path, orders), _victim(), lambda u: recorded.append(u) or _record(u))
    (snapshot,) = _snapshots(tmp_path)
    assert orders.faults("etcd-restore") == [] and orders.faults("etcd-drill-cleanup") == []

    # rollback / chaoskit recover, from the state file's record alone
    later = FakeOrders()
    etcd_drill._restore_op(
        Hands(cast(NodeOps, None), lambda n, e: None, lambda: cast(Orders, later)), recorded[0].args
    )
    assert [node for node, _, _ in later.faults("etcd-restore")] == list(PLANES)
    assert [node for node, _, _ in later.faults("etcd-drill-cleanup")] == list(PLANES)
    assert not snapshot.exists(), "the undo removes it once the restore is done"


def test_a_member_whose_restore_failed_fails_the_undo_and_keeps_the_snapshot(
    copies: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    snapshot = tmp_path / "c-abc123.db"
    snapshot.write_bytes(SNAPSHOT)
    members = [FakeOrders.agent(n, "etcd-stage", {}) | {"node": n} for n in PLANES]
    args = {"restore_id": "abc123", "snapshot": str(snapshot), "members": members}
    orders = FakeOrders(fail={"etcd-restore": ("cp2",)})
    hands = Hands(cast(NodeOps, None), lambda n, e: None, lambda: cast(Orders, orders))
    with caplog.at_level(logging.WARNING), pytest.raises(FaultFailed, match="cp2: etcdutl"):
        etcd_drill._restore_op(hands, args)
    assert snapshot.exists()
    assert "kept for 'chaoskit recover'" in caplog.text
    # Every member's restore was ordered before any result was awaited.
    assert [node for node, _, _ in orders.faults("etcd-restore")] == list(PLANES)


def test_a_host_snapshot_that_is_not_the_drills_is_refused_before_any_order(
    copies: list[str], tmp_path: Path
) -> None:
    snapshot = tmp_path / "c-abc123.db"
    snapshot.write_bytes(b"something else")
    args = {
        "restore_id": "abc123",
        "snapshot": str(snapshot),
        "sha256": hashlib.sha256(SNAPSHOT).hexdigest(),
        "members": [],
    }
    orders = FakeOrders()
    with pytest.raises(FaultFailed, match="SHA-256 differs"):
        etcd_drill.restore(cast(Orders, orders), args)
    assert orders.created == []


def test_a_snapshot_that_cannot_be_removed_is_named_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    orders = FakeOrders(fail={"etcd-drill-cleanup": ("cp1",)})
    member = etcd_drill.Member("cp1", "cp1", "https://cp1:2380", "/var/lib/etcd")
    with caplog.at_level(logging.WARNING):
        left = etcd_drill.remove_snapshots(cast(Orders, orders), [member], "abc123", None)
    assert left == ["cp1:snapshot-abc123.db"]
    assert "snapshot-abc123.db" in caplog.text
    assert "every Secret" in caplog.text
