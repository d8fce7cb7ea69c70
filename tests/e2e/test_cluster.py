"""The default cluster (kind-config.yaml) as users rely on it: nodes, DNS, Services,
rescheduling from a lost worker, and etcd quorum through the loss of one member."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter

import pytest
from kubernetes import client

from chaoskit import versions
from tests.e2e.harness import Cluster, chaoskit
from tests.e2e.workloads import (
    client_pod,
    exec_in,
    ready_pods,
    service,
    wait_for,
    web_deployment,
)

LABELS = {"app": "web"}
SELECTOR = "app=web"


@pytest.fixture
def web(cluster: Cluster, namespace: str, probe_loaded: None) -> str:
    """3 probe servers behind a Service, Ready, plus a client pod; returns the namespace."""
    cluster.apps.create_namespaced_deployment(namespace, web_deployment("web", 3, LABELS))
    cluster.core.create_namespaced_service(namespace, service("web", LABELS))
    cluster.core.create_namespaced_pod(namespace, client_pod("client"))
    wait_for(
        "3 Ready web pods", lambda: len(ready_pods(cluster.core, namespace, SELECTOR)) == 3, 120
    )
    wait_for(
        "the client pod",
        lambda: cluster.core.read_namespaced_pod("client", namespace).status.phase == "Running",
        120,
    )
    return namespace


def test_status_reports_every_node_ready_at_the_pinned_version(cluster: Cluster) -> None:
    proc = chaoskit("cluster", "status", "--name", cluster.name, "--json")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["ready"] is True
    roles = Counter(n["role"] for n in status["nodes"])
    assert roles == {"control-plane": 3, "worker": 2}
    assert all(n["ready"] for n in status["nodes"])
    assert {n["kubelet_version"] for n in status["nodes"]} == {versions.KUBERNETES}
    etcd = [p for p in status["system_pods"] if p["name"].startswith("etcd-")]
    assert len(etcd) == 3 and all(p["ready"] for p in etcd)


def test_api_server_is_published_on_loopback_only(cluster: Cluster) -> None:
    server = cluster.api.configuration.host
    assert server.startswith("https://127.0.0.1:"), server


def test_coredns_resolves_a_service_name_from_a_pod(cluster: Cluster, web: str) -> None:
    svc = cluster.core.read_namespaced_service("web", web)
    out = exec_in(
        cluster.core, web, "client", ["/probe", "resolve", f"web.{web}.svc.cluster.local"]
    )
    assert out.split() == [svc.spec.cluster_ip]


def test_deployment_spreads_over_both_workers_and_the_service_reaches_every_replica(
    cluster: Cluster, web: str
) -> None:
    pods = ready_pods(cluster.core, web, SELECTOR)
    assert {p.spec.node_name for p in pods} == set(cluster.workers())
    names = {p.metadata.name for p in pods}
    answered: Counter[str] = Counter()

    def every_replica_answered() -> bool:
        # kube-proxy on the client's node learns of a new endpoint a moment after it is
        # Ready: keep sending until every replica has answered, or fail at the deadline.
        # A request that times out on a loaded machine is retried by the next round; what
        # counts is that every replica answers within the deadline.
        out = exec_in(
            cluster.core, web, "client", ["/probe", "get", "-n", "30", "http://web/"], check=False
        )
        answered.update(out.split())
        return set(answered) == names

    wait_for(f"answers from all of {sorted(names)}", every_replica_answered, 60, poll=1)
    assert set(answered) == names, answered


def test_a_stopped_worker_goes_notready_and_its_pods_come_back_on_the_other(
    cluster: Cluster, web: str
) -> None:
    pods = ready_pods(cluster.core, web, SELECTOR)
    victim = max(cluster.workers(), key=lambda n: sum(p.spec.node_name == n for p in pods))
    survivor = next(n for n in cluster.workers() if n != victim)
    # The spread constraint would keep replacements Pending while the victim is gone.
    cluster.apps.patch_namespaced_deployment(
        "web", web, {"spec": {"template": {"spec": {"topologySpreadConstraints": None}}}}
    )
    wait_for("the rollout", lambda: len(ready_pods(cluster.core, web, SELECTOR)) == 3, 120)
    pods = ready_pods(cluster.core, web, SELECTOR)
    if not any(p.spec.node_name == victim for p in pods):
        pytest.fail(f"no web pod on {victim} after the rollout: nothing to reschedule")

    stopped = time.monotonic()
    subprocess.run(["docker", "stop", cluster.node_container(victim)], check=True, timeout=60)
    try:

        def node_not_ready() -> bool:
            node = cluster.core.read_node(victim)
            ready = next(c for c in node.status.conditions if c.type == "Ready")
            return ready.status != "True"

        wait_for(f"{victim} NotReady", node_not_ready, 120, poll=1)
        not_ready_after = time.monotonic() - stopped

        def all_on_survivor() -> bool:
            ready = ready_pods(cluster.core, web, SELECTOR)
            return len(ready) == 3 and all(p.spec.node_name == survivor for p in ready)

        wait_for(f"3 Ready web pods on {survivor}", all_on_survivor, 180, poll=1)
        recovered_after = time.monotonic() - stopped

        def service_answers_all() -> bool:
            cmd = ["/probe", "get", "-n", "20", "http://web/"]
            return len(exec_in(cluster.core, web, "client", cmd, check=False).split()) == 20

        wait_for("20 of 20 requests answered through the Service", service_answers_all, 60)
        print(f"NotReady after {not_ready_after:.0f} s, Ready pods after {recovered_after:.0f} s")
    finally:
        subprocess.run(["docker", "start", cluster.node_container(victim)], check=True, timeout=60)
        wait_for(
            f"{victim} Ready again",
            lambda: not node_not_ready(),
            180,
            poll=1,
        )


def test_killing_one_etcd_member_leaves_the_api_serving(cluster: Cluster) -> None:
    victim = cluster.control_planes()[-1]
    pod_name = f"etcd-{victim}"
    before = cluster.core.read_namespaced_pod(pod_name, "kube-system")
    restarts_before = before.status.container_statuses[0].restart_count
    subprocess.run(
        ["docker", "exec", cluster.node_container(victim), "pkill", "-KILL", "-x", "etcd"],
        check=True,
        timeout=30,
    )
    failures = []
    deadline = time.monotonic() + 15
    requests = 0
    while time.monotonic() < deadline:
        requests += 1
        try:
            cluster.core.list_namespace(_request_timeout=5)
            cluster.core.create_namespaced_config_map(
                "default",
                client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="etcd-kill-")),
            )
        except Exception as e:  # noqa: BLE001 - every failure is what the test counts
            failures.append(repr(e))
        time.sleep(0.2)
    for cm in cluster.core.list_namespaced_config_map("default").items:
        if cm.metadata.name.startswith("etcd-kill-"):
            cluster.core.delete_namespaced_config_map(cm.metadata.name, "default")
    assert not failures, f"{len(failures)} of {requests} API calls failed: {failures[:3]}"

    def member_back() -> bool:
        pod = cluster.core.read_namespaced_pod(pod_name, "kube-system")
        status = pod.status.container_statuses[0]
        return status.ready and status.restart_count > restarts_before

    wait_for(f"{pod_name} restarted and Ready", member_back, 120, poll=1)
