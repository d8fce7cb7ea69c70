"""Measures the network, partition and resource fault figures of BENCHMARKS.md.

    python benchmarks/network_bench.py --cluster NAME [--repeats 3] [--trials 3]
        [--suite experiments/suites/partitions.yaml --suite experiments/suites/network.yaml]
        [--skip-suites] [--skip-timings]

On a running cluster with the e-commerce topology deployed (``chaoskit deploy``):

1. time to partition and time to heal: each fault injected in-process (as ``chaoskit run``
   does) and rolled back at once, ``--repeats`` times: from the call to the agent's report
   that the rules are in place, and from the release to its report that they are gone;
2. each suite run with ``--trials`` trials per experiment under flash-sale load: recovery
   (median, min, max), error rate and p99 during the fault window, lost orders, per
   experiment.

Prints a Markdown section; the suite run directories stay in reports/bench-net-<time>/.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chaoskit.faults.runner import FaultSession, fault_env  # noqa: E402
from chaoskit.faults.target import resolve_target  # noqa: E402
from chaoskit.settings import Settings  # noqa: E402

SHOP = "shop"
FAULTS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "network-partition (order pod from payment)",
        "network-partition",
        {"namespace": SHOP, "selector": "app.kubernetes.io/name=order",
         "peer_selector": "app.kubernetes.io/name=payment"},
    ),
    (
        "network-loss 30 % (order pod)",
        "network-loss",
        {"namespace": SHOP, "selector": "app.kubernetes.io/name=order", "loss": 30},
    ),
    (
        "node-partition (a worker from the control plane)",
        "node-partition",
        {"role": "worker", "peer_role": "control-plane", "peer_api_server": True},
    ),
    (
        "node-partition (the etcd leader from its followers)",
        "node-partition",
        {"etcd_leader": True, "peer_role": "control-plane", "peer_api_server": True},
    ),
    (
        "cpu-hog (gateway pod, 2 workers)",
        "cpu-hog",
        {"namespace": SHOP, "selector": "app.kubernetes.io/name=gateway", "workers": 2},
    ),
]  # fmt: skip


def session(cluster: str) -> FaultSession:
    settings = Settings.from_env()
    target = resolve_target(settings, cluster=cluster, namespaces=(SHOP,))
    env = fault_env(settings, target, run_id=f"bench-net-{uuid.uuid4().hex[:8]}")
    return FaultSession(env, seed="bench", what="network bench")


def timings(cluster: str, repeats: int) -> list[str]:
    rows = ["| fault | to partition s, median (min to max) | to heal s, median (min to max) |",
            "| --- | ---: | ---: |"]  # fmt: skip
    faults = session(cluster)
    try:
        for label, name, params in FAULTS:
            applied, healed = [], []
            for _ in range(repeats):
                started = time.monotonic()
                injected = faults.inject(name, params)
                middle = time.monotonic()
                faults.rollback(injected)
                applied.append(middle - started)
                healed.append(time.monotonic() - middle)
                time.sleep(5)  # a heartbeat or two of the kubelet between repeats
            rows.append(f"| {label} | {spread(applied)} | {spread(healed)} |")
            print(rows[-1], file=sys.stderr)
    finally:
        faults.close()
    return rows


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f} to {max(values):.2f})"


def with_trials(suite: Path, trials: int, into: Path) -> Path:
    """A copy of ``suite`` with ``trials`` trials and absolute paths, in ``into``."""
    doc = yaml.safe_load(suite.read_text())
    doc["trials"] = trials
    doc["cluster"]["config"] = str((suite.parent / doc["cluster"]["config"]).resolve())
    for experiment in doc["experiments"]:
        experiment["file"] = str((suite.parent / experiment["file"]).resolve())
    copy = into / suite.name
    copy.write_text(yaml.safe_dump(doc, sort_keys=False))
    return copy


def suite_rows(cluster: str, suite: Path, trials: int, out: Path) -> list[str]:
    copy = with_trials(suite, trials, out)
    run_dir = out / suite.stem
    subprocess.run(
        [sys.executable, "-m", "chaoskit", "suite", "run", str(copy), "--cluster", cluster,
         "--out", str(run_dir)],
        cwd=REPO, check=False,
    )  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = []
    for item in summary["experiments"]:
        stats = item.get("aggregate") or {}
        rows.append(
            f"| {suite.stem} | {item['name']} | {item['trials_passed']}/{item['trials_total']} | "
            f"{figure(stats, 'recovery_s')} | {figure(stats, 'error_rate_pct')} | "
            f"{figure(stats, 'p99_ms')} | {api_outage(stats)} |"
        )
    rows.append(f"| {suite.stem} | (all) lost or duplicated orders: "
                f"{summary['totals'].get('lost_orders', '?')} | | | | | |")  # fmt: skip
    return rows


def api_outage(stats: dict[str, Any]) -> str:
    return figure(stats.get("components") or {}, "api_outage")


def figure(item: dict[str, Any], key: str) -> str:
    stats = item.get(key) or {}
    if not stats or stats.get("median") is None:
        return "-"
    return f"{stats['median']:.4g} ({stats['min']:.4g} to {stats['max']:.4g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--suite", action="append", type=Path, default=[])
    parser.add_argument("--skip-suites", action="store_true")
    parser.add_argument("--skip-timings", action="store_true")
    args = parser.parse_args()
    suites = args.suite or [
        REPO / "experiments/suites/partitions.yaml",
        REPO / "experiments/suites/network.yaml",
    ]
    out = REPO / "reports" / f"bench-net-{time.strftime('%Y%m%dT%H%M%S')}"
    out.mkdir(parents=True)
    lines = [
        f"## Network, partition and resource faults ({time.strftime('%Y-%m-%d')}, "
        f"{platform.node()}, cluster {args.cluster})",
    ]
    if not args.skip_timings:
        lines += [
            "",
            f"Time to partition / heal, {args.repeats} repeats each (inject, then roll back "
            "at once):",
            "",
            *timings(args.cluster, args.repeats),
        ]
    if not args.skip_suites:
        lines += [
            "",
            f"Under flash-sale load, {args.trials} trials per experiment:",
            "",
            "| suite | experiment | passed | recovery s | error rate % | p99 ms | API outage s |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for suite in suites:
            lines += suite_rows(args.cluster, suite.resolve(), args.trials, out)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
