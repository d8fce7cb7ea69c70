"""Measures the CLI startup figures of BENCHMARKS.md: the median wall time, as a whole
process, of the commands that must stay fast because they touch no cluster.

    python benchmarks/cli_startup_bench.py [--runs 15] [--repo PATH] [--out FILE]

Each round runs ``chaoskit validate experiments/pod-kill.yaml``, ``chaoskit faults list``
and ``chaoskit --help`` once each, in turn (so that load from other work on the machine
falls on all three alike), with the interpreter of this process and the package found in
``--repo`` (default: this checkout; give a ``git worktree`` of an older commit to compare).
Prints a Markdown table: median, min and max wall seconds and the median CPU seconds (user
+ system of the child) of each command.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {
    "validate experiments/pod-kill.yaml": ["validate", "experiments/pod-kill.yaml"],
    "faults list": ["faults", "list"],
    "--help": ["--help"],
}


def _run_once(repo: Path, args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``chaoskit ARGS`` process."""
    env = {**os.environ, "PYTHONPATH": str(repo)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from chaoskit.cli import main; main()", *args],
        cwd=repo,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=120,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(repo: Path, runs: int) -> dict[str, tuple[list[float], list[float]]]:
    results: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in COMMANDS}
    for args in COMMANDS.values():
        _run_once(repo, args)  # warm the file cache and byte-compile once
    for _ in range(runs):
        for name, args in COMMANDS.items():
            wall, cpu = _run_once(repo, args)
            results[name][0].append(wall)
            results[name][1].append(cpu)
    return results


def table(results: dict[str, tuple[list[float], list[float]]]) -> str:
    lines = [
        "| command | median wall (s) | min-max (s) | median CPU (s) |",
        "|---|---|---|---|",
    ]
    for name, (walls, cpus) in results.items():
        lines.append(
            f"| `chaoskit {name}` | {statistics.median(walls):.2f} | "
            f"{min(walls):.2f}-{max(walls):.2f} | {statistics.median(cpus):.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--out", type=Path, default=None)
    options = parser.parse_args()
    load = os.getloadavg()[0]
    text = (
        f"{table(measure(options.repo.resolve(), options.runs))}\n\n"
        f"{options.runs} runs each, load average {load:.1f} at the start.\n"
    )
    print(text)
    if options.out is not None:
        options.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
