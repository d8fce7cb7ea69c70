"""Measures the faults figures of BENCHMARKS.md: how late chaoskit's watch timeline records a
pod Ready, the fault-to-recovered time of every experiment file, and the CPU the harness
itself uses while an experiment runs.

    python benchmarks/faults_bench.py [--config kind-config.quick.yaml] [--rounds 2]
                                      [--only pod-kill,container-kill]

Creates its own cluster (``ck-bench``) and deletes it at the end, also on failure or Ctrl-C.
The cluster is the given kind config with the kube-apiserver's audit log switched on for
writes of ``pods/status``: the audit event's ``stageTimestamp`` (microseconds, the API
server's clock, which is the host's: kind nodes are containers) of the status write that
set Ready=True is the reference a pod's Ready transition is measured against; the pod's own
``lastTransitionTime`` has one-second resolution and cannot show a 200 ms latency.

Each experiment runs as a user runs it, ``chaoskit run FILE --output ...``, against 3
probe servers behind a Service in namespace ``bench``. From its result: the fault-to-
recovered time (``recovered_after_s``), the Ready events of the timeline (each matched to
its audit event), and the harness's CPU: user + system time of the ``chaoskit run`` process
and the children it waited for (``os.wait4``), over its wall time. Experiments that need
more than the cluster has (3 etcd members, a worker) are skipped and listed. Prints a
Markdown section (also written to --out).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml
from kubernetes import client, config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chaoskit.cluster.access import access  # noqa: E402
from chaoskit.cluster.config import load_config  # noqa: E402
from chaoskit.settings import Settings  # noqa: E402
from tests.e2e.workloads import (  # noqa: E402
    load_probe_image,
    ready_pods,
    service,
    wait_for,
    web_deployment,
)

NAME = "ck-bench"
NAMESPACE = "bench"
LABELS = {"app": "web"}
SELECTOR = "app=web"
REPLICAS = 3
NEEDS_THREE_MEMBERS = {"etcd-kill-leader", "etcd-quorum-loss"}
NEEDS_A_WORKER = {
    "node-stop",
    "node-kill",
    "node-pause",
    "node-restart",
    "kubelet-stop",
    "containerd-kill",
    "kube-proxy-kill",
}
POLICY_DIR = "/etc/kubernetes/audit-policy"
LOG_DIR = "/var/log/kubernetes/audit"
AUDIT_LOG = f"{LOG_DIR}/audit.log"
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    # One event per request, when its response is complete.
    "omitStages": ["RequestReceived", "ResponseStarted"],
    "rules": [
        {
            "level": "Request",
            "verbs": ["patch", "update"],
            "resources": [{"group": "", "resources": ["pods/status"]}],
        },
        {"level": "None"},
    ],
}
MATCH_WINDOW = 5.0
"""Seconds between a harness Ready event and the nearest audited Ready write beyond which
they are not the same transition (a pod's transitions are seconds apart)."""


def audited_config(source: Path, workdir: Path) -> Path:
    """``source`` with the API server's audit log on for pods/status, checked by chaoskit."""
    doc = copy.deepcopy(load_config(source).document)
    doc.pop("name", None)
    policy = workdir / "audit-policy.yaml"
    policy.write_text(yaml.safe_dump(AUDIT_POLICY, sort_keys=False))
    args = {
        "audit-policy-file": f"{POLICY_DIR}/policy.yaml",
        "audit-log-path": AUDIT_LOG,
        "audit-log-maxsize": "0",
    }
    volumes = [
        {
            "name": "audit-policy",
            "hostPath": POLICY_DIR,
            "mountPath": POLICY_DIR,
            "readOnly": True,
            "pathType": "DirectoryOrCreate",
        },
        {
            "name": "audit-log",
            "hostPath": LOG_DIR,
            "mountPath": LOG_DIR,
            "readOnly": False,
            "pathType": "DirectoryOrCreate",
        },
    ]
    patches = list(doc.get("kubeadmConfigPatches") or [])
    for index, patch in enumerate(patches):
        parsed = yaml.safe_load(patch)
        if isinstance(parsed, dict) and parsed.get("kind") == "ClusterConfiguration":
            api_server = parsed.setdefault("apiServer", {})
            api_server.setdefault("extraArgs", {}).update(args)
            api_server.setdefault("extraVolumes", []).extend(volumes)
            patches[index] = yaml.safe_dump(parsed, sort_keys=False)
            break
    else:
        patches.append(
            yaml.safe_dump(
                {
                    "kind": "ClusterConfiguration",
                    "apiServer": {"extraArgs": args, "extraVolumes": volumes},
                }
            )
        )
    doc["kubeadmConfigPatches"] = patches
    for node in doc["nodes"]:
        if node.get("role", "control-plane") == "control-plane":
            node.setdefault("extraMounts", []).append(
                {
                    "hostPath": str(policy),
                    "containerPath": f"{POLICY_DIR}/policy.yaml",
                    "readOnly": True,
                }
            )
    rendered = workdir / "kind-config.audit.yaml"
    rendered.write_text(yaml.safe_dump(doc, sort_keys=False))
    load_config(rendered)  # passes chaoskit's own check, as `cluster up` will
    return rendered


def cli(*args: str, timeout: float = 1800) -> None:
    subprocess.run([sys.executable, "-m", "chaoskit", *args], cwd=REPO, check=True, timeout=timeout)


def deploy_workload(api: client.ApiClient) -> None:
    """3 probe servers behind a Service, and a ConfigMap, in NAMESPACE; waits until Ready."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
    apps.create_namespaced_deployment(NAMESPACE, web_deployment("web", REPLICAS, LABELS))
    core.create_namespaced_service(NAMESPACE, service("web", LABELS))
    core.create_namespaced_config_map(
        NAMESPACE,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"a": "1"}),
    )
    workload_ready(core)


def workload_ready(core: client.CoreV1Api) -> None:
    wait_for(
        f"{REPLICAS} Ready web pods",
        lambda: len(ready_pods(core, NAMESPACE, SELECTOR)) == REPLICAS,
        300,
        poll=1,
    )


@dataclass
class ReadyEvent:
    pod: str
    at: float
    """time.time() at which the harness's watch received it."""
    server_time: str
    """The pod's own lastTransitionTime (one-second resolution)."""
    origin: str


@dataclass
class Run:
    experiment: str
    seed: int
    exit_code: int
    wall_s: float
    cpu_s: float
    load_average: float
    recovered_s: float | None
    after_rollback_s: float | None = None
    """The same, counted from the fault's rollback (faults held for a while)."""
    ready: list[ReadyEvent] = field(default_factory=list)
    in_run_cores: float | None = None
    """The harness process alone (its threads, not the commands it ran), from the moment
    chaoskit's run context started (imports done, watches starting) to its exit."""

    @property
    def cores(self) -> float:
        return self.cpu_s / self.wall_s


TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class CpuSampler:
    """Samples a process's CPU time every ``interval`` seconds until it exits."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.samples: list[tuple[float, float]] = []
        self._pid = pid
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.samples.append((time.time(), process_cpu_seconds(self._pid)))
            except (OSError, IndexError, ValueError):
                return
            self._stopped.wait(self._interval)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join()

    def cores_since(self, since: float) -> float | None:
        """Average cores from ``since`` (time.time()) to the last sample of the live process."""
        alive = self.samples[:1]
        for sample in self.samples[1:]:
            if sample[1] < alive[-1][1]:
                break  # an exited process reads as less: its last samples are not its own
            alive.append(sample)
        before = [s for s in alive if s[0] <= since]
        if not before or alive[-1][0] - before[-1][0] < 1:
            return None
        (t0, cpu0), (t1, cpu1) = before[-1], alive[-1]
        return (cpu1 - cpu0) / (t1 - t0)


def run_args(experiment: Path, seed: int, output: Path) -> list[str]:
    """The command line of pending_faults.py's e2e runs: our namespace, our selector."""
    configuration = yaml.safe_load(experiment.read_text()).get("configuration", {})
    args = ["run", str(experiment), "--cluster", NAME, "--namespace", NAMESPACE]
    args += ["--seed", str(seed), "--output", str(output)]
    if "namespace" in configuration:
        args += ["--var", f"namespace={NAMESPACE}"]
    if "selector" in configuration:
        args += ["--var", f"selector={SELECTOR}"]
    return args


def run_experiment(experiment: Path, seed: int, workdir: Path) -> Run:
    output = workdir / f"{experiment.stem}-{seed}.json"
    log_path = workdir / f"{experiment.stem}-{seed}.log"
    load_average = os.getloadavg()[0]
    with log_path.open("w") as log:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "chaoskit", *run_args(experiment, seed, output)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        with CpuSampler(proc.pid) as sampler:
            try:
                # The sampler reads /proc/PID until wait4 reaps the process.
                _, status, usage = os.wait4(proc.pid, 0)
            except BaseException:
                # Stopped ourselves: let the run roll its fault back (it does on SIGTERM).
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=900)
                raise
            wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    run = Run(
        experiment=experiment.stem,
        seed=seed,
        exit_code=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        load_average=load_average,
        recovered_s=None,
    )
    if not output.is_file():
        return run
    result = json.loads(output.read_text()).get("chaoskit") or {}
    recovered = [r for r in result.get("recovery", []) if r.get("recovered_after_s") is not None]
    if recovered:
        # From the first fault to the desired state back.
        run.recovered_s = float(recovered[0]["recovered_after_s"])
        back = recovered[0].get("recovered_after_rollback_s")
        run.after_rollback_s = float(back) if back is not None else None
    if result.get("started_at"):
        run.in_run_cores = sampler.cores_since(float(result["started_at"]))
    prefix = f"pod/{NAMESPACE}/"
    for event in result.get("timeline", []):
        if event["kind"] == "pod-ready" and event["subject"].startswith(prefix):
            run.ready.append(
                ReadyEvent(
                    pod=event["subject"].removeprefix(prefix),
                    at=float(event["at"]),
                    server_time=str(event["detail"].get("server_time") or ""),
                    origin=event["origin"],
                )
            )
    return run


def _timestamp(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


@dataclass(frozen=True)
class ReadyWrite:
    """A status write, in the audit log, that turned a pod's Ready condition to True."""

    received: float
    """requestReceivedTimestamp: the kubelet's request reached the API server."""
    completed: float
    """stageTimestamp of ResponseComplete: stored in etcd and answered."""


def audited_ready_transitions(control_planes: list[str]) -> dict[str, list[ReadyWrite]]:
    """Pod name -> the audited status writes that turned its Ready to True, in order."""
    writes: dict[str, list[tuple[ReadyWrite, bool]]] = defaultdict(list)
    for node in control_planes:
        text = subprocess.run(
            ["docker", "exec", node, "cat", AUDIT_LOG],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        for line in text.splitlines():
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            if (
                event.get("stage") != "ResponseComplete"
                or ref.get("namespace") != NAMESPACE
                or ref.get("subresource") != "status"
                or int((event.get("responseStatus") or {}).get("code") or 0) >= 300
            ):
                continue
            status = (event.get("requestObject") or {}).get("status") or {}
            for condition in status.get("conditions") or []:
                if condition.get("type") == "Ready":
                    write = ReadyWrite(
                        _timestamp(event["requestReceivedTimestamp"]),
                        _timestamp(event["stageTimestamp"]),
                    )
                    writes[ref["name"]].append((write, condition.get("status") == "True"))
    transitions: dict[str, list[ReadyWrite]] = {}
    for pod, seen in writes.items():
        # A kubelet patch names the Ready condition only when it changes; a full update
        # (the node controller's) names it always: keep only the writes that change it.
        was_ready = False
        transitions[pod] = []
        for write, ready in sorted(seen, key=lambda item: item[0].completed):
            if ready and not was_ready:
                transitions[pod].append(write)
            was_ready = ready
    return transitions


@dataclass
class Latencies:
    """Milliseconds from a reference to the harness's pod-ready, per matched watch event."""

    completed: list[float] = field(default_factory=list)
    """From the status write's ResponseComplete (the reference)."""
    received: list[float] = field(default_factory=list)
    """From the moment the API server received that write (includes storing it)."""
    coarse: list[float] = field(default_factory=list)
    """From the pod's own lastTransitionTime (whole seconds, set by the kubelet)."""
    unmatched: int = 0


def detection_latencies(
    events: list[ReadyEvent], transitions: dict[str, list[ReadyWrite]]
) -> Latencies:
    """Pairs each harness Ready event with the nearest audited Ready write of its pod."""
    result = Latencies()
    for event in events:
        candidates = transitions.get(event.pod, [])
        nearest = min(candidates, key=lambda w: abs(event.at - w.completed), default=None)
        if nearest is None or abs(event.at - nearest.completed) > MATCH_WINDOW:
            result.unmatched += 1
            continue
        result.completed.append((event.at - nearest.completed) * 1000)
        result.received.append((event.at - nearest.received) * 1000)
        if event.server_time:
            result.coarse.append((event.at - _timestamp(event.server_time)) * 1000)
    return result


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def baseline_cpu() -> float:
    """CPU seconds of starting a harness process: importing what `chaoskit run` imports."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import chaoskit.cli, chaoskit.ctk.experiment, chaoskit.ctk.control, "
            "chaoskit.ctk.actions, chaoskit.ctk.probes",
        ],
        cwd=REPO,
    )
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime


def _median(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):.{digits}f}" if values else "-"


def _list(values: list[float], digits: int = 0) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def report(
    args: argparse.Namespace,
    runs: list[Run],
    *,
    skipped: dict[str, str],
    transitions: dict[str, list[ReadyWrite]],
    shape: tuple[int, int],
    loads: tuple[float, float],
    startup_cpu: float,
) -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    lines = [
        f"## Faults ({time.strftime('%Y-%m-%d')}, {platform.node()}: {os.cpu_count()} cores, "
        f"{mem:.0f} GiB, {platform.system()} {platform.release()})",
        "",
        f"Produced by `python benchmarks/faults_bench.py --config {args.config} --rounds "
        f"{args.rounds}` on its own cluster ({shape[0]} control plane(s) + {shape[1]} "
        f"worker(s), audit log on for pods/status), {REPLICAS} probe servers behind a Service "
        f"in namespace `{NAMESPACE}`; load average {loads[0]:.1f} at the start, "
        f"{loads[1]:.1f} at the end.",
        "",
    ]
    watch = [e for run in runs for e in run.ready if e.origin == "watch"]
    relisted = sum(1 for run in runs for e in run.ready if e.origin != "watch")
    found = detection_latencies(watch, transitions)
    if found.completed:
        median = statistics.median(found.completed)
        lines += [
            f"- detection latency (the timeline's pod-ready minus the audit stageTimestamp of "
            f"the status write that set Ready=True), {len(found.completed)} Ready transitions "
            f"of {len({e.pod for e in watch})} pods: median {median:.0f} ms, p90 "
            f"{percentile(found.completed, 0.9):.0f} ms, max {max(found.completed):.0f} ms, "
            f"min {min(found.completed):.0f} ms ({sum(v < 0 for v in found.completed)} "
            f"negative; target median ≤ 200 ms: {median / 200:.2f} of it)",
            f"- from the moment the API server received that write: median "
            f"{statistics.median(found.received):.0f} ms, p90 "
            f"{percentile(found.received, 0.9):.0f} ms, max {max(found.received):.0f} ms",
            f"- from the pods' own lastTransitionTime (whole seconds): median "
            f"{statistics.median(found.coarse):.0f} ms, max {max(found.coarse):.0f} ms",
            f"- left out: {relisted} Ready found by a relist after a watch gap (no watch "
            f"latency to measure), {found.unmatched} without an audited write within "
            f"{MATCH_WINDOW:.0f} s",
        ]
    else:
        lines.append("- detection latency: no Ready event was matched")
    lines += [
        f"- harness CPU: `chaoskit run` with the commands it ran (os.wait4), over its wall "
        f"time; starting a harness process (its imports alone) takes {startup_cpu:.1f} CPU-s "
        "of that. 'in run': the harness process alone, from its run context's start (imports "
        "done) to its exit, sampled from /proc",
        "",
        "| experiment | passed | fault → recovered (s), median (runs) | after rollback (s) | "
        "wall (s) | harness CPU (s) | harness (cores) | in run (cores) | Ready: detection "
        "median (ms) | load average |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_experiment: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_experiment[run.experiment].append(run)
    for experiment, group in by_experiment.items():
        passed = sum(1 for r in group if r.exit_code == 0)
        recovered = [r.recovered_s for r in group if r.recovered_s is not None]
        rec = f"{statistics.median(recovered):.1f} ({_list(recovered, 1)})" if recovered else "-"
        after = [r.after_rollback_s for r in group if r.after_rollback_s is not None]
        back = f"{statistics.median(after):.1f} ({_list(after, 1)})" if after else "-"
        own = detection_latencies(
            [e for r in group for e in r.ready if e.origin == "watch"], transitions
        ).completed
        detected = f"{statistics.median(own):.0f} (n={len(own)})" if own else "-"
        in_run = [r.in_run_cores for r in group if r.in_run_cores is not None]
        lines.append(
            f"| {experiment} | {passed}/{len(group)} | {rec} | {back} | "
            f"{statistics.median(r.wall_s for r in group):.0f} | "
            f"{statistics.median(r.cpu_s for r in group):.1f} | "
            f"{statistics.median(r.cores for r in group):.3f} | {_median(in_run, 3)} | "
            f"{detected} | "
            f"{statistics.median(r.load_average for r in group):.1f} |"
        )
    if runs:
        lines += [
            "",
            f"- all {len(runs)} runs: harness median {statistics.median(r.cores for r in runs):.3f}"
            f" cores (max {max(r.cores for r in runs):.3f}); in run median "
            f"{_median([r.in_run_cores for r in runs if r.in_run_cores is not None], 3)} cores",
        ]
    for experiment, why in skipped.items():
        lines.append(f"- skipped {experiment}: {why}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="kind-config.quick.yaml")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated experiment names")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "last-faults-run.md")
    args = parser.parse_args()

    settings = Settings.from_env()
    shape_of = load_config(REPO / args.config)
    shape = (shape_of.control_planes, shape_of.workers)
    experiments = sorted((REPO / "experiments").glob("*.yaml"))
    if args.only:
        wanted = set(args.only.split(","))
        experiments = [e for e in experiments if e.stem in wanted]
    skipped: dict[str, str] = {}
    chosen = []
    for experiment in experiments:
        if experiment.stem in NEEDS_THREE_MEMBERS and shape[0] < 3:
            skipped[experiment.stem] = "needs 3 etcd members (kind-config.yaml)"
        elif experiment.stem in NEEDS_A_WORKER and shape[1] < 1:
            skipped[experiment.stem] = "needs a worker node"
        else:
            chosen.append(experiment)

    workdir = Path(tempfile.mkdtemp(prefix="faults-bench-"))
    print(f"results and logs of each run: {workdir}", flush=True)
    kind_config = audited_config(REPO / args.config, workdir)
    start_load = os.getloadavg()[0]
    runs: list[Run] = []
    try:
        cli("cluster", "up", "--name", NAME, "--config", str(kind_config))
        kubeconfig = access(settings, NAME).kubeconfig
        api = config.new_client_from_config(config_file=str(kubeconfig))
        core = client.CoreV1Api(api)
        control_planes = sorted(
            n.metadata.name
            for n in core.list_node().items
            if "node-role.kubernetes.io/control-plane" in (n.metadata.labels or {})
        )
        load_probe_image(NAME)
        deploy_workload(api)
        startup_cpu = baseline_cpu()
        for round_ in range(args.rounds):
            for experiment in chosen:
                workload_ready(core)
                run = run_experiment(experiment, 7 + round_, workdir)
                runs.append(run)
                print(
                    f"{experiment.stem} (seed {run.seed}): exit {run.exit_code}, "
                    f"recovered {run.recovered_s} s, wall {run.wall_s:.0f} s, "
                    f"{run.cores:.3f} cores, {len(run.ready)} Ready events",
                    flush=True,
                )
                if run.exit_code != 0:
                    cli("recover", "--cluster", NAME, timeout=900)
        transitions = audited_ready_transitions(control_planes)
        text = report(
            args,
            runs,
            skipped=skipped,
            transitions=transitions,
            shape=shape,
            loads=(start_load, os.getloadavg()[0]),
            startup_cpu=startup_cpu,
        )
        args.out.write_text(text)
        print(text)
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            cli("recover", "--cluster", NAME, timeout=900)
        cli("cluster", "down", "--name", NAME, timeout=600)


if __name__ == "__main__":
    main()
