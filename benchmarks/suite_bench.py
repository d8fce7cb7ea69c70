"""Measures the suite figures of BENCHMARKS.md: the wall time of a whole suite run (cluster
creation, deploy, every trial, the report), split into its phases, and the time the report
takes to render from a run directory.

    python benchmarks/suite_bench.py [--suite experiments/suites/flash-sale.yaml]
        [--cluster bench-suite] [--reuse] [--renders 3] [--keep]

Without --reuse the suite runs with --fresh-cluster on its own cluster (`bench-suite`, the
images already built), which is deleted at the end unless --keep. With --reuse it runs on
the named cluster as it is. Prints a Markdown section; the run directory stays in
reports/bench-<time>/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def chaoskit(*args: str, check: bool = True) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    # stdout is kept for the figures; progress (stderr) shows as it happens
    proc = subprocess.run(
        [sys.executable, "-m", "chaoskit", *args],
        check=False,
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
    )
    if check and proc.returncode not in (0, 1):
        sys.exit(f"chaoskit {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    return time.monotonic() - started, proc


def phases(run_dir: Path) -> dict[str, float]:
    """Seconds spent in trials, per experiment, from the trials' own records."""
    out: dict[str, float] = {}
    for path in sorted(run_dir.glob("trials/*/*/trial.json")):
        trial = json.loads(path.read_text())
        seconds = float(trial["ended_at"]) - float(trial["started_at"])
        out[trial["experiment"]] = out.get(trial["experiment"], 0.0) + seconds
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="experiments/suites/flash-sale.yaml")
    parser.add_argument("--cluster", default="bench-suite")
    parser.add_argument("--reuse", action="store_true", help="run on the cluster as it is")
    parser.add_argument("--renders", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the cluster afterwards")
    args = parser.parse_args()

    run_dir = REPO / "reports" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    mode = "--reuse-cluster" if args.reuse else "--fresh-cluster"
    load_before = os.getloadavg()[0]
    try:
        wall, proc = chaoskit(
            "suite", "run", args.suite, mode, "--cluster", args.cluster, "--out", str(run_dir)
        )
    finally:
        if not args.reuse and not args.keep:
            chaoskit("cluster", "down", "--name", args.cluster, check=False)
    load_after = os.getloadavg()[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    trial_phases = phases(run_dir)
    in_trials = sum(trial_phases.values())
    suite_span = float(run["ended_at"]) - float(run["started_at"])
    renders = []
    for _ in range(args.renders):
        seconds, _proc = chaoskit("report", str(run_dir))
        renders.append(seconds)

    print(
        f"## Suite ({time.strftime('%Y-%m-%d')}, {platform.node() or 'vm'}: "
        f"{os.cpu_count()} cores, {platform.system()} {platform.release()})\n"
    )
    print(
        f"Produced by `python benchmarks/suite_bench.py --suite {args.suite}"
        f"{' --reuse' if args.reuse else ''}`; load average {load_before:.1f} before, "
        f"{load_after:.1f} after.\n"
    )
    print(
        f"- suite wall time ({mode}): **{wall / 60:.1f} min** "
        f"(exit {proc.returncode}, verdict {summary.get('verdict')}, "
        f"score {summary.get('score', {}).get('value')})"
    )
    print(
        f"- of which cluster + images + deploy: {(wall - suite_span) / 60:.1f} min; "
        f"trials: {in_trials / 60:.1f} min; report and the rest: "
        f"{(suite_span - in_trials) / 60:.1f} min"
    )
    print(
        f"- `chaoskit report DIR` (re-render, whole CLI process): median "
        f"{statistics.median(renders):.1f} s (runs: {', '.join(f'{r:.1f}' for r in renders)})\n"
    )
    print("| experiment | seconds in its trials |")
    print("|---|---|")
    for name, seconds in trial_phases.items():
        print(f"| {name} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
