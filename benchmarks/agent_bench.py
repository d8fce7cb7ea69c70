"""Measures the node agent's figures of BENCHMARKS.md on a running chaoskit cluster.

    python benchmarks/agent_bench.py [--cluster chaoskit-e2e] [--rounds 5]

- install: ``chaoskit agent remove`` then ``chaoskit agent install`` (image built and
  cached already), ``--rounds`` times: median wall seconds of each;
- idle cost per node: CPU (cores) and memory (working set) of every agent container over
  30 s with no order, from the node's ``crictl stats`` (kind nodes: read through docker);
- order to effect: an order stopping kubelet on a worker, from the API create call until
  ``systemctl is-active kubelet`` on the node says it is not (polled every 0.1 s), and
  from the release until kubelet runs again; ``--rounds`` times;
- dead-man undo: a harness process holds kubelet stopped on a worker and kube-scheduler
  down on a control plane through ``NodeAgents`` (as a run does), and is killed with
  SIGKILL; seconds from the kill until the agent has restored both (kubelet active, the
  manifest back). ``--rounds`` times; the expiry is the default 30 s, so the figure is
  bounded by 30 s after the last renewal (renewals are every 10 s).

Prints a Markdown table (median, min, max per figure).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chaoskit.agent.client import Orders  # noqa: E402
from chaoskit.cluster.access import access  # noqa: E402
from chaoskit.cluster.health import api_client  # noqa: E402
from chaoskit.settings import Settings  # noqa: E402


def chaoskit(*args: str) -> float:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "chaoskit", *args], cwd=REPO, check=True, capture_output=True
    )
    return time.monotonic() - started


def node_sh(node: str, script: str) -> str:
    return subprocess.run(
        ["docker", "exec", node, "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    ).stdout.strip()


def kubelet_active(node: str) -> bool:
    return node_sh(node, "systemctl is-active kubelet") == "active"


def wait(what: str, check: object, timeout: float, poll: float = 0.1) -> float:
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(poll)
    return time.monotonic() - started


def nodes(cluster: str) -> tuple[list[str], list[str]]:
    out = subprocess.run(
        ["docker", "ps", "--filter", f"label=io.x-k8s.kind.cluster={cluster}",
         "--format", '{{.Names}} {{.Label "io.x-k8s.kind.role"}}'],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")  # fmt: skip
    pairs = [line.split() for line in out if line.strip()]
    workers = sorted(n for n, r in pairs if r == "worker")
    planes = sorted(n for n, r in pairs if r == "control-plane")
    return workers, planes


def idle(cluster: str) -> list[tuple[str, float, float]]:
    """(node, cores, MiB) of each node's agent container over 30 s."""

    def sample(node: str) -> tuple[float, float]:
        raw = node_sh(
            node,
            "crictl stats -o json --label io.kubernetes.container.name=agent "
            "--label io.kubernetes.pod.namespace=chaoskit-system",
        )
        stats = json.loads(raw)["stats"][0]
        cpu = int(stats["cpu"]["usageCoreNanoSeconds"]["value"]) / 1e9
        mem = int(stats["memory"]["workingSetBytes"]["value"]) / 2**20
        return cpu, mem

    workers, planes = nodes(cluster)
    first = {n: (time.monotonic(), sample(n)) for n in workers + planes}
    time.sleep(30)
    result = []
    for node, (t0, (cpu0, _)) in first.items():
        cpu1, mem = sample(node)
        result.append((node, (cpu1 - cpu0) / (time.monotonic() - t0), mem))
    return result


def order_to_effect(orders: Orders, worker: str) -> tuple[float, float]:
    created = time.monotonic()
    name = orders.create(worker, "unit-stop", {"unit": "kubelet"}, ttl=60)
    wait("kubelet stopped", lambda: not kubelet_active(worker), 30)
    effect = time.monotonic() - created
    released = time.monotonic()
    orders.release(name)
    wait("kubelet back", lambda: kubelet_active(worker), 30)
    back = time.monotonic() - released
    orders.wait_phase(name, ("Undone",), timeout=30)
    orders.delete(name)
    return effect, back


HOLDER = textwrap.dedent(
    """
    import sys, time
    from chaoskit.faults.target import resolve_target
    from chaoskit.faults.agentnodes import NodeAgents
    from chaoskit.settings import Settings
    settings = Settings.from_env()
    target = resolve_target(settings, cluster=sys.argv[1])
    agents = NodeAgents(target, target.api, settings, run_id="bench")
    agents.hold(sys.argv[2], "unit-stop", {"unit": "kubelet"}, record=lambda u: None,
                description="bench")
    agents.hold(sys.argv[3], "static-pod-hold", {"component": "kube-scheduler"},
                record=lambda u: None, description="bench")
    print("held", flush=True)
    time.sleep(3600)
    """
)


def dead_man(cluster: str, worker: str, plane: str, orders: Orders) -> float:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, cluster, worker, plane],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    if holder.stdout.readline().strip() != "held":
        raise SystemExit("the holder did not hold")
    time.sleep(12)  # past at least one renewal
    os.kill(holder.pid, signal.SIGKILL)
    killed = time.monotonic()
    holder.wait()

    def restored() -> bool:
        manifests = node_sh(plane, "ls /etc/kubernetes/manifests")
        return kubelet_active(worker) and "kube-scheduler.yaml" in manifests

    wait("both restored", restored, 90, poll=0.2)
    took = time.monotonic() - killed
    for order in orders.list():
        if order.run == "bench":
            orders.delete(order.name)
    return took


def row(name: str, values: list[float], unit: str) -> str:
    med = statistics.median(values)
    return f"| {name} | {med:.2f} {unit} | {min(values):.2f} | {max(values):.2f} | {len(values)} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cluster", default="chaoskit-e2e")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = Settings.from_env()
    api = api_client(access(settings, args.cluster).kubeconfig)
    orders = Orders(api)
    workers, planes = nodes(args.cluster)
    rows = []
    removes, installs = [], []
    chaoskit("agent", "install", "--cluster", args.cluster)
    for _ in range(args.rounds):
        removes.append(chaoskit("agent", "remove", "--cluster", args.cluster))
        installs.append(chaoskit("agent", "install", "--cluster", args.cluster))
    rows.append(row("`chaoskit agent install` (image cached)", installs, "s"))
    rows.append(row("`chaoskit agent remove` (no order)", removes, "s"))
    for node, cores, mib in idle(args.cluster):
        rows.append(f"| idle agent on {node}: CPU / memory | {cores * 100:.2f} % of a core "
                    f"/ {mib:.1f} MiB | | | 30 s |")  # fmt: skip
    effects, backs = [], []
    for _ in range(args.rounds):
        effect, back = order_to_effect(orders, workers[-1])
        effects.append(effect)
        backs.append(back)
        wait("kubelet settled", lambda: kubelet_active(workers[-1]), 60)
        time.sleep(5)
    rows.append(row("order created → kubelet stopped on the node", effects, "s"))
    rows.append(row("order released → kubelet running again", backs, "s"))
    deads = []
    for _ in range(args.rounds):
        deads.append(dead_man(args.cluster, workers[-1], planes[0], orders))
        time.sleep(20)  # the node Ready again before the next round
    rows.append(row("dead-man: harness SIGKILLed → kubelet and scheduler restored", deads, "s"))
    print("| figure | median | min | max | n |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
