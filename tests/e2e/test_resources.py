"""Resource faults: hogs in a shop Pod, measured from the node's cgroup files (CPU time
and memory charged to the Pod while held, nothing left after rollback), and a disk fill
past a Pod's own storage limit, which the kubelet answers by evicting it."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.harness import Cluster, Shop, fault_session
from tests.e2e.workloads import probe_server, ready_pods, wait_for, web_deployment

GATEWAY = "app.kubernetes.io/name=gateway"
PRODUCT = "app.kubernetes.io/name=product"


def node_read(node: str, path: str) -> str:
    proc = subprocess.run(
        ["docker", "exec", node, "cat", path],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else ""


def cpu_seconds(node: str, cgroups: str) -> float:
    """CPU time charged to the hog's cgroups (v1 cpuacct.usage in ns, v2 cpu.stat
    usage_usec), from whichever of them accounts for it."""
    for cgroup in cgroups.split(","):
        v1 = node_read(node, f"{cgroup}/cpuacct.usage").strip()
        if v1:
            return int(v1) / 1e9
        stat = node_read(node, f"{cgroup}/cpu.stat")
        fields = dict(line.split() for line in stat.splitlines() if line.strip())
        if "usage_usec" in fields:
            return int(fields["usage_usec"]) / 1e6
    return 0.0


def memory_bytes(node: str, cgroups: str) -> int:
    cgroup = cgroups.split(",", maxsplit=1)[0]
    text = node_read(node, f"{cgroup}/memory.usage_in_bytes") or node_read(
        node, f"{cgroup}/memory.current"
    )
    return int(text.strip() or 0)


def test_a_cpu_hog_burns_the_pods_cpu_until_rollback(cluster: Cluster, shop: Shop) -> None:
    with fault_session(cluster, shop.namespace) as session:
        injected = session.inject(
            "cpu-hog", {"namespace": shop.namespace, "selector": GATEWAY, "workers": 2}
        )
        (victim,) = injected.victims
        cgroup = injected.details[0]["agent"]["cgroups"]
        # Each read is a `docker exec`, slow on a busy machine: the window is timed from the
        # end of one read to the end of the other, not taken as the sleep's 3 s.
        first = cpu_seconds(victim.node, cgroup)
        started = time.monotonic()
        time.sleep(3)
        burnt = (cpu_seconds(victim.node, cgroup) - first) / (time.monotonic() - started)
        session.rollback(injected)
    # The gateway's limit is 500m: two busy workers get about half a CPU between them.
    assert 0.25 <= burnt <= 0.7, f"the hog burnt {burnt:.2f} CPU in {cgroup}"
    left = [c for c in cgroup.split(",") if node_read(victim.node, f"{c}/cgroup.procs")]
    assert left == [], f"the hog's cgroups are left: {left}"
    print(f"cpu-hog in {victim.label}: {burnt:.2f} CPU while held (limit 0.5)")


def test_a_memory_hog_is_charged_to_the_pod_until_rollback(cluster: Cluster, shop: Shop) -> None:
    with fault_session(cluster, shop.namespace) as session:
        injected = session.inject(
            "memory-hog", {"namespace": shop.namespace, "selector": PRODUCT, "megabytes": 96}
        )
        (victim,) = injected.victims
        cgroup = injected.details[0]["agent"]["cgroups"]
        deadline = time.monotonic() + 15
        held = 0
        while time.monotonic() < deadline and held < 90 * 2**20:
            held = memory_bytes(victim.node, cgroup)
            time.sleep(0.5)
        session.rollback(injected)
    assert held >= 90 * 2**20, f"only {held / 2**20:.0f} MiB charged to {cgroup}"
    assert memory_bytes(victim.node, cgroup) == 0, "the hog's cgroup is left"
    print(f"memory-hog in {victim.label}: {held / 2**20:.0f} MiB charged while held")


@pytest.mark.usefixtures("probe_loaded")
def test_a_disk_fill_past_the_pods_limit_gets_it_evicted_and_replaced(
    cluster: Cluster, namespace: str
) -> None:
    deployment = web_deployment("web", 1, {"app": "web"})
    spec = deployment.spec.template.spec
    spec.containers[0].resources = client.V1ResourceRequirements(
        limits={"ephemeral-storage": "32Mi"}
    )
    spec.containers[0].volume_mounts = [client.V1VolumeMount(name="scratch", mount_path="/fill")]
    spec.volumes = [client.V1Volume(name="scratch", empty_dir=client.V1EmptyDirVolumeSource())]
    cluster.apps.create_namespaced_deployment(namespace, deployment)
    (before,) = wait_for("web Ready", lambda: ready_pods(cluster.core, namespace, "app=web"), 120)
    with fault_session(cluster, namespace) as session:
        injected = session.inject(
            "disk-fill", {"namespace": namespace, "selector": "app=web", "path": "/fill"}
        )
        assert injected.details[0]["agent"]["megabytes"] == str(32 + 16)
        started = time.monotonic()

        def evicted() -> str:
            """The kubelet's Evicted event on the pod, its message (the pod itself may end
            Succeeded, without a reason: the probe server exits 0 on SIGTERM)."""
            events = cluster.core.list_namespaced_event(
                namespace, field_selector=f"involvedObject.name={before.metadata.name}"
            ).items
            return next((str(e.message) for e in events if e.reason == "Evicted"), "")

        how = wait_for("the filled pod evicted by the kubelet", evicted, 90, poll=1)
        assert "ephemeral" in how, how
        evicted_after = time.monotonic() - started
        wait_for(
            "a replacement Ready",
            lambda: [
                p
                for p in ready_pods(cluster.core, namespace, "app=web")
                if p.metadata.uid != before.metadata.uid
            ],
            90,
        )
        session.rollback(injected)
    print(f"disk-fill: 48 MiB past a 32 MiB limit, evicted {evicted_after:.1f} s later: {how}")


def test_a_node_cpu_hog_burns_outside_every_pod_until_rollback(cluster: Cluster) -> None:
    """One busy worker in cgroups at the roots of a worker's hierarchies: CPU time charged
    there while held (read from the node's cpuacct), the cgroups gone after rollback."""
    with fault_session(cluster, "default") as session:
        injected = session.inject("node-cpu-hog", {"workers": 1})
        (victim,) = injected.victims
        cgroups = injected.details[0]["agent"]["cgroups"]
        assert all("/kubepods" not in c and "pod" not in c for c in cgroups.split(",")), cgroups
        first, started = cpu_seconds(victim.node, cgroups), time.monotonic()
        time.sleep(4)
        burnt = (cpu_seconds(victim.node, cgroups) - first) / (time.monotonic() - started)
        session.rollback(injected)
    # One busy process: up to one CPU, less on a busy 2-core machine, never nothing.
    assert burnt >= 0.25, f"the hog burnt {burnt:.2f} CPU on {victim.node}"
    for cgroup in cgroups.split(","):
        gone = subprocess.run(
            ["docker", "exec", victim.node, "test", "-e", cgroup], check=False, timeout=30
        )
        assert gone.returncode == 1, f"{cgroup} is still there"
    print(f"node-cpu-hog on {victim.node}: {burnt:.2f} CPU while held")


def memory_pod(name: str, node: str, hold_mb: int, memory: tuple[str, str] | None) -> client.V1Pod:
    """A probe server pinned to ``node`` holding ``hold_mb`` MiB; ``memory`` is its
    (request, limit), None for BestEffort."""
    container = probe_server("app")
    container.args = ["serve", "-hold", str(hold_mb)]
    if memory is not None:
        request, limit = memory
        container.resources = client.V1ResourceRequirements(
            requests={"memory": request, "cpu": "10m"}, limits={"memory": limit, "cpu": "10m"}
        )
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "memtest"}),
        spec=client.V1PodSpec(
            node_name=node, containers=[container], termination_grace_period_seconds=1
        ),
    )


def evicted_at(pod: Any) -> float | None:
    """When the kubelet evicted ``pod`` (its DisruptionTarget condition: the pod may end
    Failed with reason Evicted, or Succeeded with none), or None."""
    for condition in pod.status.conditions or []:
        if condition.type == "DisruptionTarget" and condition.reason == "TerminationByKubelet":
            return float(condition.last_transition_time.timestamp())
    return time.time() if pod.status.reason == "Evicted" else None


@pytest.mark.usefixtures("probe_loaded")
def test_node_memory_pressure_evicts_by_qos_class_and_ends_after_its_evictions(
    cluster: Cluster, shop: Shop, namespace: str
) -> None:
    """A worker's kubelet made short of memory: it evicts the BestEffort pod first, then
    the Burstable one above its request, never the Guaranteed one under its request nor a
    shop pod; after the second eviction the agent ends the hog (evictions=2) while the
    fault still holds; rollback puts the kubelet's configuration back."""
    workers = sorted(
        n.metadata.name
        for n in cluster.core.list_node().items
        if "node-role.kubernetes.io/control-plane" not in (n.metadata.labels or {})
    )
    node = workers[0]
    pods = {
        "besteffort": memory_pod("besteffort", node, 500, None),
        "burstable": memory_pod("burstable", node, 500, ("64Mi", "1Gi")),
        "guaranteed": memory_pod("guaranteed", node, 96, ("256Mi", "256Mi")),
    }
    for pod in pods.values():
        cluster.core.create_namespaced_pod(namespace, pod)
    wait_for(
        "the three pods Ready",
        lambda: len(ready_pods(cluster.core, namespace, "app=memtest")) == 3,
        120,
    )
    time.sleep(12)  # the kubelet's statistics catch up with what they hold
    config = "/var/lib/kubelet/config.yaml"
    before = node_read(node, config)
    shop_before = {p.metadata.uid for p in cluster.core.list_namespaced_pod(shop.namespace).items}
    with fault_session(cluster, namespace) as session:
        injected = session.inject(
            "node-memory-pressure",
            {"nodes": [node], "reclaim_mb": 800, "evictions": 2},
        )
        started = time.monotonic()
        details = injected.details[0]
        cgroups = details["agent"]["cgroups"]
        assert f"memory.available: {details['threshold_mb']}Mi" in node_read(node, config)

        def two_evicted() -> dict[str, float]:
            found = {
                p.metadata.name: evicted_at(p)
                for p in cluster.core.list_namespaced_pod(namespace).items
            }
            gone = {k: v for k, v in found.items() if v is not None}
            return gone if len(gone) >= 2 else {}

        evicted = wait_for("two pods evicted", two_evicted, 100, poll=1)
        took = time.monotonic() - started
        # The agent ends the hog once it sees the second eviction, the fault still held.
        wait_for("the hog ended", lambda: memory_bytes(node, cgroups) == 0, 20, poll=1)
        time.sleep(5)  # nothing more is evicted once the hog is gone
        still = {p.metadata.name: p for p in cluster.core.list_namespaced_pod(namespace).items}
        session.rollback(injected)
    assert set(evicted) == {"besteffort", "burstable"}, evicted
    assert evicted["besteffort"] <= evicted["burstable"], evicted
    assert still["guaranteed"].status.phase == "Running" and evicted_at(still["guaranteed"]) is None
    shop_evicted = [
        p.metadata.name
        for p in cluster.core.list_namespaced_pod(shop.namespace).items
        if p.metadata.uid in shop_before and evicted_at(p) is not None
    ]
    assert shop_evicted == [], f"shop pods evicted: {shop_evicted}"
    assert node_read(node, config) == before, "the kubelet's configuration was not put back"
    wait_for(
        f"{node} without MemoryPressure",
        lambda: next(
            c.status == "False"
            for c in cluster.core.read_node(node).status.conditions
            if c.type == "MemoryPressure"
        ),
        60,
        poll=1,
    )
    print(
        f"node-memory-pressure on {node}: threshold {details['threshold_mb']} MiB, hog "
        f"{details['megabytes']} MiB; BestEffort then Burstable evicted within {took:.1f} s, "
        "the Guaranteed pod kept"
    )
