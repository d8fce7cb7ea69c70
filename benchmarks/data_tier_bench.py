"""Measures the data-tier figures of BENCHMARKS.md on a cluster running topology
``ecommerce-ha``: how long checkouts fail after the Galera writer is deleted, how long order
events stop reaching the notification service after a Kafka broker is deleted (both under a
steady stream of orders, median of several trials), and the CPU and memory of the data tier
idle and under that stream.

    python benchmarks/data_tier_bench.py --cluster NAME [--trials 5] [--threads 4]

The cluster must exist and run ecommerce-ha (`chaoskit deploy --name NAME --topology
ecommerce-ha`). Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chaoskit.cluster.access import ClusterAccess, access  # noqa: E402
from chaoskit.settings import Settings  # noqa: E402
from chaoskit.topology import datatier  # noqa: E402
from chaoskit.topology.catalog import ECOMMERCE_HA  # noqa: E402
from chaoskit.topology.client import place_order  # noqa: E402
from chaoskit.topology.deploy import endpoints  # noqa: E402
from chaoskit.topology.shopdb import query  # noqa: E402

NS = ECOMMERCE_HA.namespace


@dataclass
class Stream:
    """Orders placed back to back from a few threads: (started, ended, order id or None)."""

    url: str
    threads: int
    results: list[tuple[float, float, str | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        def work() -> None:
            while not self._stop.is_set():
                started = time.time()
                ack, _ = place_order(self.url, key=f"bench-{uuid.uuid4()}", attempts=1, timeout=5)
                self.results.append((started, time.time(), ack.order_id if ack else None))
                if ack is None:
                    time.sleep(0.1)

        self._workers = [threading.Thread(target=work, daemon=True) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=10)

    def first_ack_started_after(self, moment: float) -> tuple[float, str] | None:
        acks = [(end, oid) for start, end, oid in self.results if oid and start >= moment]
        return min(acks) if acks else None


def usage(nodes: list[str]) -> dict[str, tuple[float, float]]:
    """CPU (cores over 10 s) and memory (MiB) per data-tier workload (mysql, kafka)."""

    def sample() -> dict[str, tuple[str, int, int]]:
        found: dict[str, tuple[str, int, int]] = {}
        for node in nodes:
            out = subprocess.run(
                ["docker", "exec", node, "crictl", "stats", "-o", "json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for stat in json.loads(out).get("stats", []):
                labels = stat["attributes"]["labels"]
                pod = labels.get("io.kubernetes.pod.name", "")
                if labels.get("io.kubernetes.pod.namespace") != NS:
                    continue
                workload = pod.rpartition("-")[0]
                if workload not in ("mysql", "kafka"):
                    continue
                found[f"{node}/{stat['attributes']['id']}"] = (
                    workload,
                    int(stat["cpu"]["usageCoreNanoSeconds"]["value"]),
                    int(stat["memory"]["workingSetBytes"]["value"]),
                )
        return found

    first = sample()
    time.sleep(10)
    second = sample()
    result: dict[str, tuple[float, float]] = {}
    for key, (workload, cpu, mem) in second.items():
        c, m = result.get(workload, (0.0, 0.0))
        before = first.get(key)
        delta = (cpu - before[1]) / 10e9 if before else 0.0
        result[workload] = (c + delta, m + mem / 2**20)
    return result


def wait(what: str, check: Callable[[], bool], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(2)
    raise SystemExit(f"timed out waiting for {what}")


def data_tier_ready(api: client.ApiClient) -> bool:
    core = client.CoreV1Api(api)

    def ready(selector: str) -> int:
        pods = core.list_namespaced_pod(NS, label_selector=selector).items
        return sum(
            1
            for p in pods
            if p.metadata.deletion_timestamp is None
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        )

    return (
        ready(datatier.GALERA_SELECTOR) == 3
        and ready(datatier.KAFKA_SELECTOR) == 3
        and ready(datatier.GALERA_WRITER_SELECTOR) == 1
    )


def all_notified(cluster: ClusterAccess, order_ids: list[str]) -> bool:
    listed = ", ".join("'" + oid.replace("'", "") + "'" for oid in order_ids)
    rows = query(cluster, NS, f"SELECT COUNT(*) FROM notifications WHERE order_id IN ({listed})")  # noqa: S608
    return bool(rows) and rows[0][0] == str(len(order_ids))


def writer_failover(api: client.ApiClient, url: str, threads: int) -> float:
    """Seconds from deleting the writer to the first acknowledged order placed after it."""
    stream = Stream(url, threads)
    stream.start()
    time.sleep(5)
    pod = datatier.galera_writer(api, NS)
    assert pod is not None
    killed = time.time()
    client.CoreV1Api(api).delete_namespaced_pod(pod.metadata.name, NS, grace_period_seconds=0)
    deadline = time.monotonic() + 120
    while stream.first_ack_started_after(killed) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    stream.stop()
    first = stream.first_ack_started_after(killed)
    if first is None:
        raise SystemExit("no order was acknowledged within 120 s of the writer's deletion")
    return first[0] - killed


def broker_failover(api: client.ApiClient, cluster: ClusterAccess, url: str, threads: int) -> float:
    """Seconds from deleting the controller leader's broker until every order acknowledged
    in the 2 s after it has its notification: events on every partition flow again (the
    relay publishes a batch across all partitions and waits for all of it)."""
    stream = Stream(url, threads)
    stream.start()
    time.sleep(5)
    leader = datatier.kafka_controller_leader(api, NS)
    killed = time.time()
    client.CoreV1Api(api).delete_namespaced_pod(leader, NS, grace_period_seconds=0)
    window = killed + 2
    deadline = time.monotonic() + 180
    seen: float | None = None
    while seen is None and time.monotonic() < deadline:
        time.sleep(0.5)
        ids = [oid for start, _, oid in stream.results if oid and killed <= start < window]
        if time.time() > window and ids and all_notified(cluster, ids):
            seen = time.time()
    stream.stop()
    if seen is None:
        raise SystemExit("the events of orders placed after the broker's deletion did not arrive")
    return seen - killed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cluster", default="chaoskit")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    cluster = access(Settings.from_env(), args.cluster)
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    url = endpoints(cluster, ECOMMERCE_HA).ingress
    nodes = [n for n in cluster.port_nodes() if not n.endswith("external-load-balancer")]
    wait("the data tier to be ready", lambda: data_tier_ready(api))
    idle = usage(nodes)
    stream = Stream(url, args.threads)
    stream.start()
    time.sleep(5)
    loaded = usage(nodes)
    stream.stop()
    rate = sum(1 for s, _, oid in stream.results if oid and s >= stream.results[0][0] + 5) / 10

    writer: list[float] = []
    broker: list[float] = []
    for _ in range(args.trials):
        wait("the data tier to be ready", lambda: data_tier_ready(api))
        writer.append(writer_failover(api, url, args.threads))
        wait("the data tier to be ready", lambda: data_tier_ready(api))
        broker.append(broker_failover(api, cluster, url, args.threads))

    def figures(values: list[float]) -> str:
        listed = ", ".join(f"{v:.1f}" for v in values)
        return f"median {statistics.median(values):.1f} s (trials: {listed})"

    mem_total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        f"## Data tier ({time.strftime('%Y-%m-%d')}, {platform.node()}: {os.cpu_count()} "
        f"cores, {mem_total:.0f} GiB, cluster {args.cluster}, {len(nodes)} nodes)",
        "",
        f"Produced by `python benchmarks/data_tier_bench.py --cluster {args.cluster} "
        f"--trials {args.trials} --threads {args.threads}`, topology ecommerce-ha, "
        f"{args.threads} threads placing orders back to back (~{rate:.0f} orders/s).",
        "",
        f"- Galera writer deleted (no grace) → first acknowledged checkout placed after it: "
        f"{figures(writer)}",
        f"- Kafka controller leader's broker deleted (no grace) → every order acknowledged in "
        f"the 2 s after it notified (its event went through Kafka): {figures(broker)}",
    ]
    for workload in ("mysql", "kafka"):
        ci, mi = idle.get(workload, (0.0, 0.0))
        cl, ml = loaded.get(workload, (0.0, 0.0))
        lines.append(
            f"- {workload} (3 pods): idle {ci:.2f} cores, {mi:.0f} MiB; "
            f"under the order stream {cl:.2f} cores, {ml:.0f} MiB"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
