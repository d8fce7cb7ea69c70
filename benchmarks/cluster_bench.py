"""Measures the cluster figures of BENCHMARKS.md: warm `images build`, `cluster up` against a
raw `kind create cluster` on the same node image (side by side, alternating, in one run),
and the CPU and memory of the idle cluster.

    python benchmarks/cluster_bench.py [--rounds 2] [--configs a.yaml,b.yaml] [--cold]

Prints a Markdown section to paste into BENCHMARKS.md (and writes it to --out). The cold
image build is timed with --cold, which builds into an empty cache directory (about 30 min).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chaoskit.cluster.config import load_config  # noqa: E402
from chaoskit.images import catalog  # noqa: E402
from chaoskit.images.factory import NODE_IMAGE, build_env, kind_binary  # noqa: E402
from chaoskit.settings import Settings  # noqa: E402


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def chaoskit(*args: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-m", "chaoskit", *args]


def raw_kind_up(kind: Path, config: Path, name: str) -> float:
    """What a user of plain kind runs: create, then wait for every node and system pod."""
    rendered = Path(tempfile.mkdtemp()) / "kind.yaml"
    doc = load_config(config)
    document = dict(doc.document)
    document.pop("name", None)
    rendered.write_text(json.dumps(document))
    kubeconfig = rendered.parent / "kubeconfig"
    started = time.monotonic()
    subprocess.run(
        [
            str(kind),
            "create",
            "cluster",
            "--name",
            name,
            "--config",
            str(rendered),
            "--image",
            NODE_IMAGE,
            "--kubeconfig",
            str(kubeconfig),
            "--wait",
            "10m",
        ],
        check=True,
        capture_output=True,
    )
    kubectl = [
        str(catalog.KUBERNETES.out_dir(build_env(Settings.from_env())) / "kubectl"),
        "--kubeconfig",
        str(kubeconfig),
    ]
    subprocess.run(
        [*kubectl, "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=10m"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *kubectl,
            "wait",
            "--for=condition=Ready",
            "pods",
            "--all",
            "-n",
            "kube-system",
            "--timeout=10m",
        ],
        check=True,
        capture_output=True,
    )
    elapsed = time.monotonic() - started
    subprocess.run(
        [str(kind), "delete", "cluster", "--name", name, "--kubeconfig", str(kubeconfig)],
        check=True,
        capture_output=True,
    )
    return elapsed


def idle_usage(name: str, settle: float = 60) -> tuple[float, float]:
    """CPU (cores) and memory (MiB) of a cluster's node containers after it settles."""
    time.sleep(settle)
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{json .}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    cpu = mem = 0.0
    for line in out.splitlines():
        row = json.loads(line)
        if not row["Name"].startswith(name + "-"):
            continue
        cpu += float(row["CPUPerc"].rstrip("%")) / 100
        used = row["MemUsage"].split("/")[0].strip()
        value, unit = float(used[:-3]), used[-3:]
        mem += value * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]
    return cpu, mem


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--configs", default="kind-config.yaml,kind-config.quick.yaml")
    parser.add_argument("--cold", action="store_true", help="also time a cold image build")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "last-cluster-run.md")
    args = parser.parse_args()

    lines = [
        f"## Cluster ({time.strftime('%Y-%m-%d')}, {platform.node()}: {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"{platform.system()} {platform.release()})",
        "",
        "Produced by `python benchmarks/cluster_bench.py`.",
        "",
    ]
    if args.cold:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "CHAOSKIT_CACHE_DIR": cache}
            cold = timed(chaoskit("images", "build", "--source", "local"), env=env)
        lines.append(f"- cold `chaoskit images build` (empty cache): {cold / 60:.1f} min")
    warm = [timed(chaoskit("images", "build")) for _ in range(3)]
    lines.append(
        f"- warm `chaoskit images build`: median {statistics.median(warm):.1f} s "
        f"(runs: {', '.join(f'{w:.1f}' for w in warm)}; target ≤ 10 s)"
    )
    lines += [
        "",
        "| config | chaoskit cluster up (s) | raw kind create + wait (s) | ratio |",
        "|---|---|---|---|",
    ]
    kind = kind_binary(Settings.from_env())
    usage: dict[str, tuple[float, float]] = {}
    for config in args.configs.split(","):
        ours, raw = [], []
        for round_ in range(args.rounds):
            # Alternate the order so that neither side always runs on a warmer machine.
            order = ("chaoskit", "kind") if round_ % 2 == 0 else ("kind", "chaoskit")
            for who in order:
                name = f"bench-{who}"
                if who == "kind":
                    raw.append(raw_kind_up(kind, REPO / config, name))
                    continue
                ours.append(timed(chaoskit("cluster", "up", "--name", name, "--config", config)))
                if round_ == 0:
                    usage[config] = idle_usage(name)
                timed(chaoskit("cluster", "down", "--name", name))
        o, r = statistics.median(ours), statistics.median(raw)
        lines.append(
            f"| {config} | {o:.0f} ({', '.join(f'{x:.0f}' for x in ours)}) | "
            f"{r:.0f} ({', '.join(f'{x:.0f}' for x in raw)}) | {o / r:.2f} |"
        )
    lines += ["", "| config | idle CPU (cores) | idle memory (MiB) |", "|---|---|---|"]
    for config, (cpu, mem) in usage.items():
        lines.append(f"| {config} | {cpu:.2f} | {mem:.0f} |")
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
