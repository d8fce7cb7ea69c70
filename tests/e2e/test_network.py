"""Network faults on the shop, measured from inside the victim pod: in effect while held,
gone after rollback. Each fault once, held only for its measurement.

The faults are injected in-process through a fault session (as ``chaoskit run`` does),
without a duration, so that the test measures while they hold and then rolls them back.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from chaoskit.faults.errors import FaultFailed
from chaoskit.faults.runner import FaultSession
from tests.e2e.harness import Cluster, Shop, fault_session
from tests.e2e.workloads import exec_in, probe_statefulset, ready_pods, wait_for, web_deployment

ORDER = "app.kubernetes.io/name=order"
PAYMENT = "app.kubernetes.io/name=payment"
PRODUCT = "app.kubernetes.io/name=product"

# Small Python programs run with the shop image's python3 inside the victim.
CONNECT = """
import socket, sys, time
host, port, tries, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
failed = 0
for _ in range(tries):
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        failed += 1
    time.sleep(0.05)
print(failed)
"""
UPLOAD = """
import socket, sys, time
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
started = time.monotonic()
s = socket.create_connection((host, port), timeout=60)
lines = ["POST /payments HTTP/1.1", "Host: x", "Content-Type: application/json",
         f"Content-Length: {size}", "Connection: close", "", ""]
head = "\\r\\n".join(lines)
s.sendall(head.encode() + b" " * size)
s.recv(100)
print(f"{time.monotonic() - started:.2f}")
"""
DNS = """
import socket, struct, sys
server = next(l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver"))
query = struct.pack(">HHHHHH", 0x4b1d, 0x0100, 1, 0, 0, 0)
labels = "kubernetes.default.svc.cluster.local".split(".")
query += b"".join(bytes([len(p)]) + p.encode() for p in labels) + b"\\0"
query += struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
try:
    s.sendto(query, (server, 53))
    s.recv(512)
    print("answered")
except OSError:
    print("no answer")
"""


@pytest.fixture
def session(cluster: Cluster, shop: Shop) -> Iterator[FaultSession]:
    with fault_session(cluster, shop.namespace) as faults:
        yield faults


def victim_pod(injected: Any) -> str:
    (victim,) = injected.victims
    assert victim.kind == "pod"
    return str(victim.name)


def peer(cluster: Cluster, shop: Shop, selector: str) -> tuple[str, int]:
    pod = ready_pods(cluster.core, shop.namespace, selector)[0]
    port = pod.spec.containers[0].ports[0].container_port
    return pod.status.pod_ip, int(port)


def run_py(cluster: Cluster, shop: Shop, pod: str, program: str, *args: object) -> str:
    argv = ["python3", "-c", program, *map(str, args)]
    return exec_in(cluster.core, shop.namespace, pod, argv).strip()


def test_partition_cuts_the_pod_off_from_its_peers_until_rollback(
    cluster: Cluster, shop: Shop, session: FaultSession
) -> None:
    ip, port = peer(cluster, shop, PAYMENT)
    injected = session.inject(
        "network-partition",
        {"namespace": shop.namespace, "selector": ORDER, "peer_selector": PAYMENT},
    )
    pod = victim_pod(injected)
    assert run_py(cluster, shop, pod, CONNECT, ip, port, 3, 2) == "3"
    session.rollback(injected)
    assert run_py(cluster, shop, pod, CONNECT, ip, port, 3, 2) == "0"


def test_loss_drops_a_share_of_the_pods_packets_until_rollback(
    cluster: Cluster, shop: Shop, session: FaultSession
) -> None:
    """Loss between the order pod and its peers (the payment pods), both ways: connects to
    payment fail, connects to a pod that is no peer (product) do not."""
    ip, port = peer(cluster, shop, PAYMENT)
    other_ip, other_port = peer(cluster, shop, PRODUCT)
    injected = session.inject(
        "network-loss",
        {"namespace": shop.namespace, "selector": ORDER, "peer_selector": PAYMENT, "loss": 50,
         "direction": "both"},
    )  # fmt: skip
    pod = victim_pod(injected)
    # A connect whose SYN (or SYN-ACK) is dropped waits for the retransmission (1 s): with a
    # 0.3 s timeout, over half of 40 fail; fewer than 8 is a chance of about 1e-5.
    failed = int(run_py(cluster, shop, pod, CONNECT, ip, port, 40, 0.3))
    assert failed >= 8, f"only {failed} of 40 connects failed at 50 % loss"
    assert run_py(cluster, shop, pod, CONNECT, other_ip, other_port, 40, 0.3) == "0"
    session.rollback(injected)
    assert run_py(cluster, shop, pod, CONNECT, ip, port, 40, 0.3) == "0"


def test_bandwidth_limits_what_the_pod_sends_until_rollback(
    cluster: Cluster, shop: Shop, session: FaultSession
) -> None:
    ip, port = peer(cluster, shop, PAYMENT)
    injected = session.inject(
        "network-bandwidth", {"namespace": shop.namespace, "selector": ORDER, "rate": "256kbit"}
    )
    pod = victim_pod(injected)
    # 256 KiB at 256 kbit/s (32 KB/s) takes about 8 s; unlimited, well under a second.
    limited = float(run_py(cluster, shop, pod, UPLOAD, ip, port, 256 * 1024))
    session.rollback(injected)
    free = float(run_py(cluster, shop, pod, UPLOAD, ip, port, 256 * 1024))
    assert limited >= 4.0, f"256 KiB took {limited} s under a 256kbit limit"
    assert free < 2.0, f"256 KiB took {free} s after the limit was lifted"


def test_dns_outage_stops_the_pods_lookups_until_rollback(
    cluster: Cluster, shop: Shop, session: FaultSession
) -> None:
    injected = session.inject("dns-outage", {"namespace": shop.namespace, "selector": ORDER})
    pod = victim_pod(injected)
    assert run_py(cluster, shop, pod, DNS) == "no answer"
    started = time.monotonic()
    session.rollback(injected)
    assert run_py(cluster, shop, pod, DNS) == "answered"
    print(f"dns-outage rolled back in {time.monotonic() - started:.2f} s")


# ---------------------------------------------------------------------------- nodes


def etcd_status(session: FaultSession, node: str) -> dict[str, str]:
    try:
        return session.env.agents().once(node, "etcd-status", {}, timeout=15)
    except FaultFailed as e:
        return {"error": str(e)}


def write_config_map(cluster: Cluster, timeout: float) -> str:
    """A ConfigMap written through the API (its load balancer), retried until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(generate_name="partition-", namespace="default"),
            data={"written": str(time.time())},
        )
        try:
            made = cluster.core.create_namespaced_config_map("default", body, _request_timeout=5)
            return str(made.metadata.name)
        except Exception:  # the API may fail while etcd elects: retry
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def static_pods_ready(cluster: Cluster, node: str, components: tuple[str, ...]) -> bool:
    pods = cluster.core.list_namespaced_pod(
        "kube-system", field_selector=f"spec.nodeName={node}", label_selector="tier=control-plane"
    ).items
    ready = {
        p.metadata.labels.get("component")
        for p in pods
        if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    }
    return set(components) <= ready


def test_the_etcd_leader_partitioned_from_its_followers_is_replaced_and_rejoins(
    cluster: Cluster, shop: Shop, session: FaultSession
) -> None:
    injected = session.inject(
        "node-partition",
        {"etcd_leader": True, "peer_role": "control-plane", "peer_api_server": True},
    )
    (victim,) = injected.victims
    old = victim.node
    others = [n for n in cluster.control_planes() if n != old]
    assert len(others) == 2, cluster.control_planes()
    written = ""
    try:
        # The followers elect a new leader among themselves; the API serves through them.
        new = wait_for(
            "a new etcd leader among the followers",
            lambda: next(
                (n for n in others if etcd_status(session, n).get("is_leader") == "1"), None
            ),
            timeout=30,
            poll=1,
        )
        written = write_config_map(cluster, timeout=20)
        # (The old leader's own agent is not asked meanwhile: a third of its API calls go
        # to the API server beside the cut-off member, which cannot answer.)
    finally:
        session.rollback(injected)
    # Healed: the old leader follows the new one, and what was written meanwhile is there.
    status = wait_for(
        f"etcd on {old} following a leader again",
        lambda: (s := etcd_status(session, old)).get("has_leader") == "1" and s,
        timeout=60,
        poll=2,
    )
    assert status["is_leader"] == "0", f"{old} leads again right after the heal: {status}"
    print(f"leader {old} partitioned; {new} took over; {written} written meanwhile")
    wait_for(
        f"etcd and kube-apiserver on {old} Ready",
        lambda: static_pods_ready(cluster, old, ("etcd", "kube-apiserver")),
        timeout=120,
        poll=2,
    )
    cluster.core.read_namespaced_config_map(written, "default")
    cluster.core.delete_namespaced_config_map(written, "default")


def running_copies(nodes: list[str], namespace: str, pod: str) -> dict[str, int]:
    """Running containers of ``pod`` on each node, asked of the node's own crictl (what
    runs, whatever the API says)."""
    counts = {}
    for node in nodes:
        proc = subprocess.run(
            ["docker", "exec", node, "crictl", "ps", "-q", "--state", "running",
             f"--label=io.kubernetes.pod.namespace={namespace}",
             f"--label=io.kubernetes.pod.name={pod}"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        counts[node] = len(proc.stdout.split())
    return counts


def node_ready(cluster: Cluster, node: str) -> bool:
    conditions = cluster.core.read_node(node).status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


@pytest.mark.usefixtures("probe_loaded")
def test_a_worker_partitioned_from_the_control_plane_is_replaced_but_never_runs_a_pod_twice(
    cluster: Cluster, namespace: str
) -> None:
    web, db = {"app": "web"}, {"app": "db"}
    cluster.apps.create_namespaced_deployment(namespace, web_deployment("web", 2, web))
    cluster.apps.create_namespaced_stateful_set(namespace, probe_statefulset("db", db))
    wait_for(
        "web 2/2 and db-0 Ready",
        lambda: len(ready_pods(cluster.core, namespace, "app in (web,db)")) == 3,
        120,
    )
    before = cluster.core.read_namespaced_pod("db-0", namespace)
    workers = cluster.workers()
    seen: list[dict[str, int]] = []

    def once() -> int:
        counts = running_copies(workers, namespace, "db-0")
        seen.append(counts)
        assert sum(counts.values()) <= 1, f"db-0 runs more than once: {counts}"
        return sum(counts.values())

    with fault_session(cluster, namespace) as session:
        injected = session.inject(
            "node-partition",
            {
                "holding": f"{namespace}/app=db",
                "peer_role": "control-plane",
                "peer_api_server": True,
            },
        )
        (victim,) = injected.victims
        assert victim.node == before.spec.node_name
        try:
            started = time.monotonic()
            wait_for(
                f"{victim.node} not Ready",
                lambda: once() >= 0 and not node_ready(cluster, victim.node),
                60,
                poll=1,
            )
            lost = time.monotonic() - started

            def replaced() -> bool:
                once()
                pods = ready_pods(cluster.core, namespace, "app=web")
                return len([p for p in pods if p.spec.node_name != victim.node]) >= 2

            wait_for("web's pods replaced on other nodes", replaced, 90, poll=1)
            # The StatefulSet made no second db-0: the one on the lost node is the only one,
            # and it still runs there (its kubelet cannot be told to stop it).
            now = cluster.core.read_namespaced_pod("db-0", namespace)
            assert now.metadata.uid == before.metadata.uid
            assert running_copies(workers, namespace, "db-0")[victim.node] == 1
        finally:
            session.rollback(injected)
    healed = time.monotonic()
    wait_for(
        f"{victim.node} Ready", lambda: once() >= 0 and node_ready(cluster, victim.node), 90, poll=1
    )
    wait_for(
        "db-0 Ready again",
        lambda: once() >= 0 and len(ready_pods(cluster.core, namespace, "app=db")) == 1,
        120,
        poll=1,
    )
    print(
        f"{victim.node}: NotReady {lost:.1f} s after the partition, Ready "
        f"{time.monotonic() - healed:.1f} s after the heal; db-0 copies seen: "
        f"max {max(sum(c.values()) for c in seen)} in {len(seen)} looks"
    )
