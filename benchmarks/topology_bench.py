"""Measures the topology figures of BENCHMARKS.md: time from an empty cluster to a ready
topology (`chaoskit deploy` on a fresh cluster, images already built), the idle CPU and
memory of the topology's pods, and the request rate the gateway sustains with its latency.

    python benchmarks/topology_bench.py [--config kind-config.yaml] [--seconds 30] [--threads 16]

Creates and deletes its own cluster (`bench-topology`). Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chaoskit.cluster.access import access  # noqa: E402
from chaoskit.settings import Settings  # noqa: E402
from chaoskit.topology.catalog import ECOMMERCE  # noqa: E402
from chaoskit.topology.deploy import endpoints  # noqa: E402

NAME = "bench-topology"


def cli(*args: str) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "chaoskit", *args], cwd=REPO, check=True)
    return time.monotonic() - started


def pod_usage(nodes: list[str], namespace: str) -> tuple[float, float]:
    """CPU (cores, averaged over 10 s) and memory (MiB) of the namespace's containers."""

    def sample() -> dict[str, tuple[int, int]]:
        usage: dict[str, tuple[int, int]] = {}
        for node in nodes:
            out = subprocess.run(
                ["docker", "exec", node, "crictl", "stats", "-o", "json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            for stat in json.loads(out).get("stats", []):
                labels = stat["attributes"]["labels"]
                if labels.get("io.kubernetes.pod.namespace") != namespace:
                    continue
                cpu = int(stat["cpu"]["usageCoreNanoSeconds"]["value"])
                mem = int(stat["memory"]["workingSetBytes"]["value"])
                usage[f"{node}/{stat['attributes']['id']}"] = (cpu, mem)
        return usage

    first = sample()
    time.sleep(10)
    second = sample()
    cpu = sum(second[k][0] - first[k][0] for k in second if k in first) / 10e9
    mem = sum(v[1] for v in second.values()) / 2**20
    return cpu, mem


def gateway_load(url: str, seconds: float, threads: int) -> tuple[float, float, float, int]:
    """GET /products from ``threads`` threads: (RPS, p50 ms, p99 ms, errors)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                with urllib.request.urlopen(f"{url}/products", timeout=5) as r:  # noqa: S310
                    r.read()
                ok = True
            except OSError:
                ok = False
            elapsed = time.monotonic() - started
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    latencies.sort()
    p = lambda q: latencies[int(q * (len(latencies) - 1))] * 1000  # noqa: E731
    return len(latencies) / seconds, p(0.5), p(0.99), errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="kind-config.yaml")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()

    cli("images", "build")
    subprocess.run(
        [sys.executable, "-m", "chaoskit", "cluster", "down", "--name", NAME], cwd=REPO, check=False
    )
    up = cli("cluster", "up", "--name", NAME, "--config", args.config)
    try:
        deploy = cli("deploy", "--name", NAME)
        cluster = access(Settings.from_env(), NAME)
        urls = endpoints(cluster, ECOMMERCE)
        time.sleep(30)  # let the topology settle before measuring it idle
        nodes = [n for n in cluster.port_nodes() if not n.endswith("external-load-balancer")]
        cpu, mem = pod_usage(nodes, ECOMMERCE.namespace)
        rps, p50, p99, errors = gateway_load(urls.ingress, args.seconds, args.threads)
    finally:
        cli("cluster", "down", "--name", NAME)
    mem_total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(
        f"## Topology ({time.strftime('%Y-%m-%d')}, {platform.node()}: {os.cpu_count()} cores, "
        f"{mem_total:.0f} GiB)\n\n"
        f"Produced by `python benchmarks/topology_bench.py --config {args.config}`.\n\n"
        f"- `chaoskit cluster up` ({args.config}): {up:.0f} s\n"
        f"- empty cluster to ready topology (`chaoskit deploy`, images built): {deploy:.0f} s "
        f"(target ≤ 300 s)\n"
        f"- topology idle: {cpu:.2f} cores, {mem:.0f} MiB working set (all pods in `shop`)\n"
        f"- gateway, GET /products through the ingress from {args.threads} client threads on "
        f"the same machine for {args.seconds:.0f} s: {rps:.0f} req/s, p50 {p50:.0f} ms, "
        f"p99 {p99:.0f} ms, {errors} errors"
    )


if __name__ == "__main__":
    main()
