"""The node agent on a real cluster: install, orders undone by the agent alone, remove.

A kubelet-stop order that nobody renews is undone by the agent at its expiry (no
``chaoskit recover``, no harness); a static pod hold that is renewed stays held until it
is released. The agent is removed at the end, as the cluster was before.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from kubernetes.client.exceptions import ApiException

from chaoskit.agent.client import Orders
from chaoskit.agent.nodeagent.orders import NAMESPACE
from tests.e2e.harness import Cluster, chaoskit


def node_sh(node: str, script: str) -> str:
    proc = subprocess.run(
        ["docker", "exec", node, "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.stdout.strip()


def node_ready(cluster: Cluster, node: str) -> bool:
    conditions = cluster.core.read_node(node).status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def pod_ready(cluster: Cluster, name: str) -> bool:
    try:
        pod = cluster.core.read_namespaced_pod(name, "kube-system")
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    conditions = pod.status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


@pytest.fixture(scope="module")
def agent(cluster: Cluster) -> Iterator[Orders]:
    started = time.monotonic()
    install = chaoskit("agent", "install", "--cluster", cluster.name, timeout=900)
    assert install.returncode == 0, f"{install.stdout}\n{install.stderr}"
    print(f"agent install: {time.monotonic() - started:.1f} s")
    try:
        yield Orders(cluster.api)
    finally:
        removed = chaoskit("agent", "remove", "--cluster", cluster.name, timeout=300)
        assert removed.returncode == 0, f"{removed.stdout}\n{removed.stderr}"
        with pytest.raises(ApiException) as gone:
            cluster.core.read_namespace(NAMESPACE)
        assert gone.value.status == 404


def test_agent_status_lists_every_node(cluster: Cluster, agent: Orders) -> None:
    status = chaoskit("agent", "status", "--cluster", cluster.name, timeout=120)
    assert status.returncode == 0, status.stderr
    for node in cluster.workers() + cluster.control_planes():
        assert node in status.stdout


def test_unrenewed_kubelet_stop_is_undone_by_the_agent(cluster: Cluster, agent: Orders) -> None:
    node = cluster.workers()[0]
    ordered = time.monotonic()
    name = agent.create(node, "kubelet-stop", {}, ttl=20)
    order = agent.wait_phase(name, ("Applied",), timeout=15)
    print(f"order to Applied: {time.monotonic() - ordered:.2f} s")
    assert node_sh(node, "systemctl is-active kubelet") != "active"
    # Nobody renews it: the agent undoes it at the expiry by itself.
    undone = agent.wait_phase(name, ("Undone",), timeout=45)
    late = time.time() - order.expires_at
    print(f"Undone seen {late:.2f} s after the expiry")
    assert late < 10
    assert "expired" in agent.message(undone.name)
    assert node_sh(node, "systemctl is-active kubelet") == "active"
    deadline = time.monotonic() + 90
    while not node_ready(cluster, node):
        assert time.monotonic() < deadline, f"{node} not Ready 90 s after the undo"
        time.sleep(1)
    agent.delete(name)


def test_renewed_static_pod_hold_lasts_until_released(cluster: Cluster, agent: Orders) -> None:
    node = cluster.control_planes()[0]
    name = agent.create(node, "static-pod-hold", {"component": "kube-scheduler"}, ttl=10)
    agent.wait_phase(name, ("Applied",), timeout=15)
    for _ in range(3):  # 15 s: past the first expiry, held because it is renewed
        time.sleep(5)
        agent.renew(name, ttl=10)
        assert agent.get(name).phase == "Applied"
    assert node_sh(node, "ls /etc/kubernetes/chaoskit-held") == "kube-scheduler.yaml"
    agent.release(name)
    agent.wait_phase(name, ("Undone",), timeout=15)
    assert "kube-scheduler.yaml" in node_sh(node, "ls /etc/kubernetes/manifests")
    assert node_sh(node, "ls /etc/kubernetes/chaoskit-held") == ""
    mirror = f"kube-scheduler-{node}"
    deadline = time.monotonic() + 120
    while not pod_ready(cluster, mirror):
        assert time.monotonic() < deadline, f"{mirror} not Ready 120 s after the release"
        time.sleep(1)
    agent.delete(name)


def test_unknown_fault_is_failed_not_applied(cluster: Cluster, agent: Orders) -> None:
    name = agent.create(cluster.workers()[0], "disk-fill", {}, ttl=20)
    deadline = time.monotonic() + 15
    while agent.get(name).phase != "Failed":
        assert time.monotonic() < deadline, "the agent did not refuse an unknown fault"
        time.sleep(0.5)
    assert "unknown fault 'disk-fill'" in agent.message(name)
    agent.delete(name)
