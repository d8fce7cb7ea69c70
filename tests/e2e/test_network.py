"""Network faults on the shop, measured from inside the victim pod: in effect while held,
gone after rollback. Each fault once, held only for its measurement.

The faults are injected in-process through a fault session (as ``chaoskit run`` does),
without a duration, so that the test measures while they hold and then rolls them back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chaoskit.faults.base import FaultEnv
from chaoskit.faults.nodes import NodeOps
from chaoskit.faults.runner import FaultSession, fault_log
from chaoskit.faults.state import StateFile
from chaoskit.faults.target import resolve_target
from chaoskit.settings import Settings
from tests.e2e.harness import Cluster, Shop, pending_changes
from tests.e2e.workloads import exec_in, ready_pods

ORDER = "app.kubernetes.io/name=order"
PAYMENT = "app.kubernetes.io/name=payment"

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
    settings = Settings.from_env()
    target = resolve_target(settings, cluster=cluster.name, namespaces=(shop.namespace,))
    env = FaultEnv(
        target=target,
        nodes=NodeOps(target.cluster, fault_log(settings, target.key)),
        state=StateFile.of(settings, target.key),
        run_id=f"e2e-net-{uuid.uuid4().hex[:8]}",
        settings=settings,
    )
    faults = FaultSession(env, seed="15", what="e2e network faults")
    try:
        yield faults
    finally:
        faults.close()
    assert pending_changes(cluster) == []


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
    ip, port = peer(cluster, shop, PAYMENT)
    injected = session.inject(
        "network-loss", {"namespace": shop.namespace, "selector": ORDER, "loss": 50}
    )
    pod = victim_pod(injected)
    # A connect whose SYN is dropped waits for the retransmission (1 s): with a 0.3 s
    # timeout, about half of 40 fail; fewer than 8 is a chance of about 1e-5.
    failed = int(run_py(cluster, shop, pod, CONNECT, ip, port, 40, 0.3))
    assert failed >= 8, f"only {failed} of 40 connects failed at 50 % loss"
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
