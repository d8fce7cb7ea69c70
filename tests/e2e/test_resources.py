"""Resource faults: hogs in a shop Pod, measured from the node's cgroup files (CPU time
and memory charged to the Pod while held, nothing left after rollback), and a disk fill
past a Pod's own storage limit, which the kubelet answers by evicting it."""

from __future__ import annotations

import subprocess
import time

import pytest
from kubernetes import client

from tests.e2e.harness import Cluster, Shop, fault_session
from tests.e2e.workloads import ready_pods, wait_for, web_deployment

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
        first = cpu_seconds(victim.node, cgroup)
        time.sleep(3)
        burnt = (cpu_seconds(victim.node, cgroup) - first) / 3
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
