"""The default cluster (kind-config.yaml) as users rely on it: nodes, DNS, Services, and
etcd quorum through the loss of one member. (A lost worker's pods rescheduled onto the
other is the node-stop trial of the flash-sale suite, tests/e2e/test_suite.py: each fault
runs once in CI.)"""

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
