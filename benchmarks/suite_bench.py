"""Measures the suite figures of BENCHMARKS.md: the wall time of a whole suite run (cluster
creation, deploy, every trial, the report), split into its phases, and the time the report
takes to render from a run directory.

    python benchmarks/suite_bench.py [--suite experiments/suites/flash-sale.yaml]
        [--cluster bench-suite] [--reuse] [--renders 3] [--keep]
    python benchmarks/suite_bench.py --from-run reports/bench-<time>   # figures of a past run

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


def phases(run_dir: Path) -> dict[str, dict[str, float | str | None]]:
    """Per experiment, from the trials' own records: seconds spent in its trials, the fault
    to recovered time (median over trials), requests and failed requests, the status."""
    out: dict[str, dict[str, float | str | None]] = {}
    recoveries: dict[str, list[float]] = {}
    for path in sorted(run_dir.glob("trials/*/*/trial.json")):
        trial = json.loads(path.read_text())
        name = trial["experiment"]
        row = out.setdefault(name, {"seconds": 0.0, "requests": 0.0, "failures": 0.0})
        row["seconds"] = (
            float(row["seconds"] or 0) + float(trial["ended_at"]) - float(trial["started_at"])
        )
        load = trial.get("load") or {}
        row["requests"] = float(row["requests"] or 0) + float(load.get("requests") or 0)
        row["failures"] = float(row["failures"] or 0) + float(load.get("failures") or 0)
        row["status"] = trial["status"] if row.get("status") in (None, "passed") else row["status"]
        if trial["fault"].get("recovery_s") is not None:
            recoveries.setdefault(name, []).append(float(trial["fault"]["recovery_s"]))
    for name, row in out.items():
        values = recoveries.get(name)
        row["recovery_s"] = statistics.median(values) if values else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="experiments/suites/flash-sale.yaml")
    parser.add_argument("--cluster", default="bench-suite")
    parser.add_argument("--reuse", action="store_true", help="run on the cluster as it is")
    parser.add_argument("--renders", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the cluster afterwards")
    parser.add_argument("--from-run", type=Path, help="print the figures of a past bench run")
    args = parser.parse_args()
    if args.from_run is not None:
        print_figures(args.from_run, args.renders)
        return

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
    bench = {
        "wall_s": wall,
        "mode": mode,
        "exit": proc.returncode,
        "suite": args.suite,
        "reuse": args.reuse,
        "load_before": load_before,
        "load_after": load_after,
    }
    (run_dir / "bench.json").write_text(json.dumps(bench))
    print_figures(run_dir, args.renders)


def print_figures(run_dir: Path, render_count: int) -> None:
    """The Markdown section, from a run directory this script left (with its bench.json)."""
    bench = json.loads((run_dir / "bench.json").read_text())
    wall = float(bench["wall_s"])
    summary = json.loads((run_dir / "summary.json").read_text())
    run = json.loads((run_dir / "run.json").read_text())
    trial_phases = phases(run_dir)
    in_trials = sum(float(p["seconds"] or 0) for p in trial_phases.values())
    suite_span = float(run["ended_at"]) - float(run["started_at"])
    renders = [chaoskit("report", str(run_dir))[0] for _ in range(render_count)]
    print(
        f"## Suite ({time.strftime('%Y-%m-%d')}, {platform.node() or 'vm'}: "
        f"{os.cpu_count()} cores, {platform.system()} {platform.release()})\n"
    )
    print(
        f"Produced by `python benchmarks/suite_bench.py --suite {bench['suite']}"
        f"{' --reuse' if bench['reuse'] else ''}`; load average {bench['load_before']:.1f} "
        f"before, {bench['load_after']:.1f} after.\n"
    )
    print(
        f"- suite wall time ({bench['mode']}): **{wall / 60:.1f} min** "
        f"(exit {bench['exit']}, verdict {summary.get('verdict')}, "
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
    print("| experiment | status | fault → recovered (s) | requests | failed | s in trials |")
    print("|---|---|---|---|---|---|")
    for name, row in trial_phases.items():
        recovery = row["recovery_s"]
        shown = f"{float(recovery):.1f}" if recovery is not None else "-"
        print(
            f"| {name} | {row.get('status')} | {shown} | {float(row['requests'] or 0):.0f} "
            f"| {float(row['failures'] or 0):.0f} | {float(row['seconds'] or 0):.0f} |"
        )


if __name__ == "__main__":
    main()
