"""Measures the load generator for BENCHMARKS.md: the request rate one Locust process sustains
against the shop's gateway on this machine and the CPU Locust itself uses at that rate, then
the same with a master and 2 workers, and (with --cluster) with a master here and 2 workers
as pods inside the cluster.

    python benchmarks/load_bench.py --host http://127.0.0.1:PORT [--users 32] [--duration 40]
    python benchmarks/load_bench.py --cluster NAME    # the ingress of a deployed topology

Each run is chaoskit's ``steady`` profile with no think time (users send requests as fast as
the shop answers), bounded in time. Rates and CPU are taken over the middle of the run (after
the users are spawned, before they stop). Locust's CPU is read from /proc for its processes
(worker pods' processes are this kernel's too: found by the master's port on their command
line); the machine's from /proc/stat. Prints a Markdown section (also written to --out).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chaoskit.cluster.access import access  # noqa: E402
from chaoskit.load.pods import IN_CLUSTER_SHOP  # noqa: E402
from chaoskit.load.profiles import find_profile  # noqa: E402
from chaoskit.load.runner import LoadRun, LoadSpec  # noqa: E402
from chaoskit.load.timeseries import AGGREGATED  # noqa: E402
from chaoskit.settings import Settings  # noqa: E402
from chaoskit.topology.catalog import ECOMMERCE  # noqa: E402
from chaoskit.topology.deploy import endpoints  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def worker_pod_pids(master_pid: int) -> dict[str, int]:
    """Host pids of the Locust workers (in pods) connected to the master's port."""
    argv = Path(f"/proc/{master_pid}/cmdline").read_bytes().split(b"\0")
    port = argv[argv.index(b"--master-bind-port") + 1]
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        connected = b"--master-port" in args and args[args.index(b"--master-port") + 1] == port
        if b"--worker" in args and connected:
            found[f"pod worker {len(found) + 1}"] = int(proc.name)
    return found


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


@dataclass
class Measured:
    label: str
    users: int
    rps: float
    failures_per_s: float
    p50: float
    p95: float
    p99: float
    locust_cores: dict[str, float]
    machine_busy: float
    load_average: float
    """The machine's 1-minute load average when the run started (others share it)."""

    @property
    def locust_total(self) -> float:
        return sum(self.locust_cores.values())

    @property
    def requests_per_cpu_second(self) -> float:
        return self.rps / self.locust_total if self.locust_total else float("nan")


def measure(
    host: str,
    *,
    users: int,
    workers: int,
    duration: int,
    warmup: int,
    window: int,
    pods_in: str | None = None,
) -> Measured:
    out = Path(tempfile.mkdtemp(prefix="load-bench-"))
    spec = LoadSpec(
        profile=find_profile("steady", REPO / "loadprofiles"),
        host=IN_CLUSTER_SHOP if pods_in else host,
        duration=duration,
        out_dir=out,
        users=users,
        spawn_rate=max(1.0, users / 2),
        workers=workers,
        worker_mode="pods" if pods_in else "local",
        cluster=pods_in,
        think_time=0,
    )
    load_average = os.getloadavg()[0]
    run = LoadRun(spec).start()
    samples: dict[str, tuple[float, float]] = {}

    def sample() -> None:
        time.sleep(warmup)
        pids = run.pids
        if pods_in:
            pids |= worker_pod_pids(pids["master"])
        before = {role: process_cpu_seconds(pid) for role, pid in pids.items()}
        machine_before = machine_busy_seconds()
        t0 = time.time()
        time.sleep(window)
        after = {role: process_cpu_seconds(pid) for role, pid in pids.items()}
        machine_after = machine_busy_seconds()
        elapsed = time.time() - t0
        for role in pids:
            samples[role] = (after[role] - before[role], elapsed)
        busy = machine_after[0] - machine_before[0]
        total = machine_after[1] - machine_before[1]
        samples["_machine"] = (busy / total * (os.cpu_count() or 1), 1.0)
        samples["_window"] = (t0, t0 + elapsed)

    sampler = threading.Thread(target=sample)
    sampler.start()
    result = run.wait()
    sampler.join()
    start, end = samples.pop("_window")
    machine = samples.pop("_machine")[0]
    series = result.timeseries[AGGREGATED]
    inside = series[(series.index >= int(start) + 1) & (series.index < int(end))]
    rates = inside["rps"]
    label = "1 process" if not workers else f"master + {workers} workers"
    if pods_in:
        label = f"master + {workers} worker pods"
    return Measured(
        label=label,
        users=users,
        rps=float(rates.mean()),
        failures_per_s=float(inside["failures_per_s"].mean()),
        p50=float(inside["p50_ms"].median()),
        p95=float(inside["p95_ms"].median()),
        p99=float(inside["p99_ms"].median()),
        locust_cores={role: cpu / elapsed for role, (cpu, elapsed) in samples.items()},
        machine_busy=machine,
        load_average=load_average,
    )


def ingress_of(cluster: str) -> str:
    return endpoints(access(Settings.from_env(), cluster), ECOMMERCE).ingress


def main() -> None:
    parser = argparse.ArgumentParser()
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--host", help="base URL of the shop")
    target.add_argument("--cluster", help="a cluster with the ecommerce topology deployed")
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--duration", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=12, help="seconds before measuring")
    parser.add_argument("--window", type=int, default=20, help="seconds measured")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--no-pods", action="store_true", help="with --cluster: skip the worker pods"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "last-load-run.md")
    args = parser.parse_args()
    if args.warmup + args.window > args.duration - 3:
        parser.error("--warmup + --window must end at least 3 s before --duration")
    host = args.host or ingress_of(args.cluster)

    results: list[Measured] = []
    setups: list[tuple[int, str | None]] = [(0, None), (2, None)]
    if args.cluster and not args.no_pods:
        setups.append((2, args.cluster))
    for round_ in range(args.rounds):
        # Alternate the order so that no setup always runs on a warmer shop.
        for workers, pods_in in setups if round_ % 2 == 0 else setups[::-1]:
            measured = measure(
                host,
                users=args.users,
                workers=workers,
                duration=args.duration,
                warmup=args.warmup,
                window=args.window,
                pods_in=pods_in,
            )
            print(
                f"{measured.label}: {measured.rps:.0f} req/s, Locust "
                f"{measured.locust_total:.2f} cores {measured.locust_cores}, machine "
                f"{measured.machine_busy:.2f} cores busy",
                file=sys.stderr,
            )
            results.append(measured)

    cores = os.cpu_count() or 1
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        f"## Load generator ({time.strftime('%Y-%m-%d')}, {platform.node()}: {cores} cores, "
        f"{memory:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Locust {metadata.version('locust')})",
        "",
        f"Produced by `python benchmarks/load_bench.py` against the shop's gateway through the "
        f"ingress (kind's port mapping on 127.0.0.1): profile `steady`, {args.users} users, no "
        f"think time, FastHttpUser; rates and CPU over {args.window} s after {args.warmup} s of "
        "warm-up. The shop runs on the same cores as Locust. Worker pods send to the ingress's "
        f"Service inside the cluster ({IN_CLUSTER_SHOP}), not through the port mapping.",
        "",
        "| Locust | req/s | failures/s | p50 / p95 / p99 ms | Locust CPU (cores) "
        "| req per Locust CPU-second | machine CPU busy (cores) | load average |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in results:
        roles = ", ".join(f"{role} {c:.2f}" for role, c in m.locust_cores.items())
        lines.append(
            f"| {m.label} | {m.rps:.0f} | {m.failures_per_s:.1f} | "
            f"{m.p50:.0f} / {m.p95:.0f} / {m.p99:.0f} | {m.locust_total:.2f} ({roles}) | "
            f"{m.requests_per_cpu_second:.0f} | {m.machine_busy:.2f} of {cores} | "
            f"{m.load_average:.1f} |"
        )
    single = [m for m in results if m.label == "1 process"]
    if single:
        per_cpu = statistics.median(m.requests_per_cpu_second for m in single)
        busiest = max(m.locust_total for m in single)
        machine = max(m.machine_busy for m in single)
        verdict = (
            "the shop, not the load generator, set the rate"
            if busiest < 0.8
            else "Locust was close to a full core and may have limited the rate itself"
        )
        lines += [
            "",
            f"One Locust process used at most {busiest:.2f} of a core at that rate, with the "
            f"machine {machine:.2f} of {cores} cores busy: {verdict}. "
            f"At {per_cpu:.0f} requests per Locust CPU-second, one process would "
            f"reach a full core at about {per_cpu:.0f} req/s (a linear extrapolation, not a "
            "measurement).",
        ]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
