"""Faults through the node agent, against a fake orders API: what is recorded first, how
long a hold lasts, releases through an API outage, the orders of dead harnesses."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes.client.exceptions import ApiException

from chaoskit.agent import install
from chaoskit.agent.client import Orders
from chaoskit.agent.nodeagent.orders import Order
from chaoskit.faults import agentnodes
from chaoskit.faults.agentnodes import NodeAgents, release_order, release_orphans
from chaoskit.faults.errors import FaultFailed
from chaoskit.faults.state import Undo
from chaoskit.faults.target import Target
from chaoskit.settings import Settings


class FakeOrders:
    """Orders the 'agent' (``agent_step``) applies and undoes; ``down`` = API outage."""

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.events: list[str] = []
        self.down = False
        self.fail_with = ""
        self.info: dict[str, str] = {}

    def _check(self) -> None:
        if self.down:
            raise ApiException(status=503, reason="etcdserver: no leader")

    def create(self, node: str, fault: str, params: Mapping[str, str], **kw: Any) -> str:
        self._check()
        name = kw["name"]
        self.events.append(f"create {name}")
        expires = time.time() + kw["ttl"]
        phase = "Failed" if self.fail_with else "Pending"
        self.orders[name] = Order(
            name, "uid-" + name, node, fault, dict(params), expires, phase, self.fail_with,
            run=kw.get("run", ""), harness=kw.get("harness", ""),
        )  # fmt: skip
        return name

    def get(self, name: str) -> Order:
        self._check()
        order = self.orders.get(name)
        if order is None:
            raise ApiException(status=404, reason="Not Found")
        if order.phase == "Pending":  # the agent acts on its next look
            one_shot = order.fault.endswith("kill") or order.fault == "etcd-status"
            phase = "Undone" if one_shot else "Applied"
            order = Order(**{**order.__dict__, "phase": phase, "info": self.info})
            self.orders[name] = order
        return order

    def release(self, name: str) -> None:
        self._check()
        if name not in self.orders:
            raise ApiException(status=404, reason="Not Found")
        self.events.append(f"release {name}")
        order = self.orders[name]
        if order.phase != "Failed":  # a failed order stays failed; there is nothing to undo
            self.orders[name] = Order(**{**order.__dict__, "phase": "Undone"})

    def renew_until(self, name: str, expires_at: float) -> None:
        self._check()
        self.events.append(f"renew {name}")

    def delete(self, name: str) -> None:
        self.orders.pop(name, None)

    def list(self, node: str | None = None) -> list[Order]:
        self._check()
        return list(self.orders.values())


class FakeClock:
    """agentnodes' time: sleeping moves it on at once."""

    def __init__(self) -> None:
        self.slept = 0.0

    def monotonic(self) -> float:
        return 1000.0 + self.slept

    def time(self) -> float:
        return time.time() + self.slept

    def sleep(self, seconds: float) -> None:
        self.slept += seconds


def agents(fake: FakeOrders, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> NodeAgents:
    target = Target("c", tmp_path / "kubeconfig", "kind-c", ("shop",), managed=True)
    result = NodeAgents(target, lambda: cast(Any, None), Settings(cache_dir=tmp_path), ttl=3)
    result._orders = cast(Orders, fake)
    monkeypatch.setattr(result, "ensure", lambda node: None)
    monkeypatch.setattr(agentnodes.time, "sleep", lambda s: None)
    return result


def test_a_hold_is_recorded_before_it_is_ordered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeOrders()
    fake.info = {"manifest": "etcd.yaml", "stopped_after_s": "1.50"}
    nodes = agents(fake, monkeypatch, tmp_path)

    def record(undo: Undo) -> None:
        fake.events.append(f"record {undo.args['order']}")

    info = nodes.hold("cp1", "static-pod-hold", {"component": "etcd"}, record=record,
                      description="put etcd.yaml back")  # fmt: skip
    name = next(iter(fake.orders))
    assert fake.events[:2] == [f"record {name}", f"create {name}"]
    assert info["stopped_after_s"] == "1.50"
    nodes.release(name)
    assert f"release {name}" in fake.events and name not in fake.orders
    nodes.close()


def test_a_hold_with_a_duration_expires_at_its_end_by_itself(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeOrders()
    nodes = agents(fake, monkeypatch, tmp_path)
    before = time.time()
    recorded: list[Undo] = []
    nodes.hold("cp1", "static-pod-hold", {"component": "etcd"}, record=recorded.append,
               description="d", duration=30)  # fmt: skip
    (order,) = fake.orders.values()
    expected = before + 30 + agentnodes.HOLD_MARGIN
    assert expected - 1 < order.expires_at < expected + 1
    assert abs(recorded[0].args["expires_at"] - order.expires_at) < 1
    assert nodes._held[order.name].renew is False  # an API outage cannot end it early
    # once in effect, the expiry is moved to a duration from then (once, not renewed)
    assert fake.events.count(f"renew {order.name}") == 1
    nodes.close()


def test_a_hold_undone_before_it_was_seen_in_effect_fails_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeOrders()
    nodes = agents(fake, monkeypatch, tmp_path)
    real_create = fake.create

    def create_applied_and_expired(*args: Any, **kw: Any) -> str:
        name = real_create(*args, **kw)
        order = fake.orders[name]
        fake.orders[name] = Order(**{**order.__dict__, "phase": "Undone", "message": "expired"})
        return name

    monkeypatch.setattr(fake, "create", create_applied_and_expired)
    clock = FakeClock()
    monkeypatch.setattr(agentnodes, "time", clock)
    with pytest.raises(FaultFailed, match="undone before it was seen in effect"):
        nodes.hold("cp1", "static-pod-hold", {"component": "etcd"}, record=lambda u: None,
                   description="d", duration=5)  # fmt: skip
    assert clock.slept < 1  # not after HOLD_TIMEOUT
    nodes.close()


def test_a_hold_whose_fault_takes_the_api_away_is_in_effect_unconfirmed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeOrders()
    nodes = agents(fake, monkeypatch, tmp_path)
    real_create = fake.create

    def create_then_outage(*args: Any, **kw: Any) -> str:
        name = real_create(*args, **kw)
        fake.down = True  # the second etcd member went down: no quorum, no API
        return name

    monkeypatch.setattr(fake, "create", create_then_outage)
    clock = FakeClock()
    monkeypatch.setattr(agentnodes, "time", clock)
    info = nodes.hold("cp2", "static-pod-hold", {"component": "etcd"}, record=lambda u: None,
                      description="d", duration=5)  # fmt: skip
    assert info["confirmed"] == "false"
    # said only once the API had failed for a while, not at its first failed request
    assert agentnodes.UNAVAILABLE_AFTER <= clock.slept < agentnodes.UNAVAILABLE_AFTER + 2
    nodes.close()


def test_one_failed_request_is_not_the_api_gone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # One API server of three fails a request while its own etcd member stops.
    fake = FakeOrders()
    fake.info = {"manifest": "etcd.yaml", "stopped_after_s": "8.00"}
    nodes = agents(fake, monkeypatch, tmp_path)
    real_get = fake.get
    calls = {"n": 0}

    def flaky_get(name: str) -> Order:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ApiException(status=503, reason="etcdserver: request timed out")
        return real_get(name)

    monkeypatch.setattr(fake, "get", flaky_get)
    monkeypatch.setattr(agentnodes, "time", FakeClock())
    info = nodes.hold("cp1", "static-pod-hold", {"component": "etcd"}, record=lambda u: None,
                      description="d", duration=5)  # fmt: skip
    assert info == fake.info
    nodes.close()


def test_a_kill_waits_through_a_restarted_api_server_that_has_not_loaded_rbac(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # kube-apiserver killed: the one that comes back answers 403 to kubeadm's admin
    # (bound by RBAC) until its authorizer has synced; the kill itself went well.
    fake = FakeOrders()
    fake.info = {"restarted": "true"}
    nodes = agents(fake, monkeypatch, tmp_path)
    real_get = fake.get
    calls = {"n": 0}

    def get_denied_for_a_while(name: str) -> Order:
        calls["n"] += 1
        if calls["n"] <= 6:
            raise ApiException(status=403, reason="Forbidden")
        return real_get(name)

    monkeypatch.setattr(fake, "get", get_denied_for_a_while)
    monkeypatch.setattr(agentnodes, "time", FakeClock())
    assert nodes.once("cp1", "container-kill", {"container": "kube-apiserver"}) == fake.info
    assert calls["n"] == 7
    nodes.close()


def test_an_api_that_keeps_refusing_an_order_fails_it_after_the_grace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeOrders()
    nodes = agents(fake, monkeypatch, tmp_path)

    def get_denied(name: str) -> Order:
        raise ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(fake, "get", get_denied)
    clock = FakeClock()
    monkeypatch.setattr(agentnodes, "time", clock)
    with pytest.raises(FaultFailed, match=r"refused to show it for \d+ s \(403 Forbidden\)"):
        nodes.once("cp1", "container-kill", {"container": "kube-apiserver"})
    assert agentnodes.DENIED_GRACE <= clock.slept < agentnodes.DENIED_GRACE + 2
    nodes.close()


def test_a_release_waits_out_an_api_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOrders()
    fake.create("cp1", "static-pod-hold", {}, name="o1", ttl=10)
    fake.orders["o1"] = Order(**{**fake.orders["o1"].__dict__, "phase": "Applied"})
    fake.down = True
    tries = {"n": 0}
    real_release = fake.release

    def release(name: str) -> None:
        tries["n"] += 1
        if tries["n"] == 3:
            fake.down = False  # the agent undid it at its expiry; quorum is back
        real_release(name)

    monkeypatch.setattr(fake, "release", release)
    monkeypatch.setattr(agentnodes.time, "sleep", lambda s: None)
    release_order(cast(Orders, fake), "o1", expires_at=time.time() + 10)
    assert tries["n"] == 3 and "o1" not in fake.orders


def test_a_release_that_never_reaches_the_api_fails_saying_the_agent_undoes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeOrders()
    fake.create("cp1", "unit-stop", {}, name="o1", ttl=10)
    fake.down = True
    clock = {"t": 0.0}

    def sleep(seconds: float) -> None:
        clock["t"] += 30

    monkeypatch.setattr(agentnodes.time, "sleep", sleep)
    monkeypatch.setattr(agentnodes.time, "monotonic", lambda: clock["t"])
    with pytest.raises(FaultFailed, match="the agent undoes it at its expiry"):
        release_order(cast(Orders, fake), "o1", expires_at=time.time() + 10)


def test_a_failed_one_shot_names_the_node_and_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = FakeOrders()
    fake.fail_with = "node w1 has no crictl (needed to find containers)"
    nodes = agents(fake, monkeypatch, tmp_path)
    with pytest.raises(FaultFailed, match="on w1: node w1 has no crictl"):
        nodes.once("w1", "container-kill", {"namespace": "shop", "container": "order"})
    assert not fake.orders, "the one-shot order is deleted"


def test_recover_releases_orders_of_dead_harnesses_only(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOrders()
    here = socket.gethostname()
    fake.create("w1", "unit-stop", {}, name="live", ttl=30, harness=f"{here}:{os.getpid()}")
    fake.create("w1", "unit-stop", {}, name="dead", ttl=30, harness=f"{here}:999999999")
    fake.create("w2", "unit-stop", {}, name="elsewhere", ttl=30, harness="other-host:1")
    monkeypatch.setattr(agentnodes, "_harness_alive", lambda h: h == f"{here}:{os.getpid()}")
    report = release_orphans(cast(Orders, fake))
    assert sorted(r.split()[0] for r in report.released) == ["dead", "elsewhere"]
    assert [s.split()[0] for s in report.skipped] == ["live"]
    assert release_orphans(cast(Orders, fake), force=True).released[0].startswith("live")


def test_a_node_without_a_ready_agent_fails_before_anything_is_ordered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = Target("c", tmp_path / "kubeconfig", "kind-c", ("shop",), managed=True)
    fake = FakeOrders()
    nodes = NodeAgents(target, lambda: cast(Any, None), Settings(cache_dir=tmp_path))
    nodes._orders = cast(Orders, fake)
    monkeypatch.setattr(install, "installed", lambda api: True)
    monkeypatch.setattr(
        install,
        "node_agents",
        lambda api: [
            install.NodeAgent("w1", "agent-x1", False, "CrashLoopBackOff: exited 1: no systemd"),
            install.NodeAgent("w2", "agent-x2", True, ""),
        ],
    )
    clock = FakeClock()
    monkeypatch.setattr(agentnodes, "time", clock)
    with pytest.raises(FaultFailed, match=r"no Ready chaoskit agent on node w1 \(pod agent-x1\)"):
        nodes.once("w1", "unit-kill", {"unit": "kubelet"})
    assert not fake.events, "nothing was ordered"
    assert clock.slept >= agentnodes.AGENT_READY_WAIT, "a running agent gets time to be Ready"
    assert nodes.once("w2", "unit-kill", {"unit": "kubelet"}) == {}
    assert not nodes.installed_here


def test_a_plan_never_installs_the_agent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = Target("c", tmp_path / "kubeconfig", "kind-c", ("shop",), managed=True)
    nodes = NodeAgents(target, lambda: cast(Any, None), Settings(cache_dir=tmp_path), install=False)
    monkeypatch.setattr(install, "installed", lambda api: False)
    monkeypatch.setattr(install, "install_on", lambda *a, **kw: pytest.fail("installed"))
    with pytest.raises(FaultFailed, match="run 'chaoskit agent install' first"):
        nodes.ensure("cp1")


def test_releasing_an_order_that_failed_when_applied_deletes_it() -> None:
    fake = FakeOrders()
    fake.fail_with = "cannot find the cgroup of pid 1624 on the node"
    fake.create("w1", "cpu-hog", {}, name="o1", ttl=10)
    release_order(cast(Orders, fake), "o1", expires_at=time.time() + 10)
    assert "o1" not in fake.orders


def test_an_agent_that_becomes_ready_within_the_wait_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = Target("c", tmp_path / "kubeconfig", "kind-c", ("shop",), managed=True)
    nodes = NodeAgents(target, lambda: cast(Any, None), Settings(cache_dir=tmp_path))
    nodes._orders = cast(Orders, FakeOrders())
    clock = FakeClock()
    monkeypatch.setattr(agentnodes, "time", clock)
    monkeypatch.setattr(install, "installed", lambda api: True)
    monkeypatch.setattr(
        install,
        "node_agents",
        lambda api: [install.NodeAgent("w1", "agent-x1", clock.slept >= 5, "Running")],
    )
    nodes.ensure("w1")
    assert 5 <= clock.slept < agentnodes.AGENT_READY_WAIT


def test_one_listing_of_the_agents_serves_every_victims_node(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The second member of a quorum loss is held while the first one's API server fails
    requests: its node's agent was seen Ready with the first, and is not asked for again."""
    target = Target("c", tmp_path / "kubeconfig", "kind-c", ("shop",), managed=True)
    nodes = NodeAgents(target, lambda: cast(Any, None), Settings(cache_dir=tmp_path))
    monkeypatch.setattr(install, "installed", lambda api: True)
    listings: list[int] = []

    def node_agents(api: Any) -> list[install.NodeAgent]:
        listings.append(1)
        return [
            install.NodeAgent("cp1", "agent-1", True, ""),
            install.NodeAgent("cp2", "agent-2", True, ""),
            install.NodeAgent("w1", "agent-3", False, "ContainerCreating"),
        ]

    monkeypatch.setattr(install, "node_agents", node_agents)
    nodes.ensure("cp1")
    nodes.ensure("cp2")
    assert len(listings) == 1
    clock = FakeClock()
    monkeypatch.setattr(agentnodes, "time", clock)
    with pytest.raises(FaultFailed, match="no Ready chaoskit agent on node w1"):
        nodes.ensure("w1")  # not Ready when listed: asked for again, until its wait ends
    assert len(listings) > 2
