"""What the agent does to its node, and each fault as one pair of functions.

The agent's pod shares the node's PID namespace (hostPID): PID 1 is the node's init.
systemd units are driven by running the node's own ``systemctl`` inside PID 1's mount
namespace (``nsenter``); static pod manifests are moved within the node's
``/etc/kubernetes``, mounted into the pod; processes are signalled by pid.

A fault is ``apply(host, params) -> undo info`` and ``undo(host, params, info)``, both
idempotent (an agent that restarts applies again what it had applied). Adding a fault is
one more pair registered in FAULTS.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

NSENTER = ("nsenter", "--target", "1", "--mount", "--uts", "--ipc", "--net", "--pid", "--")
COMMAND_TIMEOUT = 60.0


class FaultRefused(Exception):
    """The node cannot do this fault (no such unit, no such manifest): one line."""


class HostFailed(Exception):
    """A command on the node failed."""


@dataclass(frozen=True)
class Host:
    node: str
    kubernetes_dir: Path
    """The node's /etc/kubernetes as mounted into the pod."""
    proc_dir: Path = Path("/proc")

    @property
    def manifests(self) -> Path:
        return self.kubernetes_dir / "manifests"

    @property
    def held(self) -> Path:
        # The same place chaoskit's docker-exec faults use, so `recover` finds either.
        return self.kubernetes_dir / "chaoskit-held"

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command in the node's namespaces (its own binaries, its own systemd)."""
        proc = subprocess.run(
            [*NSENTER, *argv], capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
        logger.debug("%s -> %d %s", " ".join(argv), proc.returncode, proc.stderr.strip())
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            reason = detail[-1] if detail else f"exit {proc.returncode}"
            raise HostFailed(f"{' '.join(argv)} on {self.node}: {reason}")
        return proc

    def require_unit(self, unit: str) -> None:
        state = self.run("systemctl", "show", "--property=LoadState", "--value", unit, check=False)
        if state.stdout.strip() != "loaded":
            raise FaultRefused(f"node {self.node} has no systemd unit named {unit}")

    def pids_named(self, name: str) -> list[int]:
        """Pids whose command name (/proc/PID/comm) is ``name``."""
        found = []
        for entry in self.proc_dir.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue  # gone meanwhile
            if comm == name:
                found.append(int(entry.name))
        return sorted(found)


Info = dict[str, str]
ApplyFn = Callable[[Host, Mapping[str, str]], Info]
UndoFn = Callable[[Host, Mapping[str, str], Mapping[str, str]], None]


@dataclass(frozen=True)
class NodeFault:
    name: str
    apply: ApplyFn
    undo: UndoFn
    one_shot: bool = False
    """Nothing to undo (a kill): the order is done once applied."""
    backstop: Callable[[Mapping[str, str]], list[str]] | None = None
    """The node command that undoes it, armed as a systemd timer on the node at the
    expiry: for faults that stop kubelet, during which nothing restarts a dead agent."""


FAULTS: dict[str, NodeFault] = {}


def register(fault: NodeFault) -> NodeFault:
    FAULTS[fault.name] = fault
    return fault


def param(params: Mapping[str, str], key: str) -> str:
    value = params.get(key, "").strip()
    if not value:
        raise FaultRefused(f"parameter {key!r} is required")
    return value


# ---------------------------------------------------------------------------- systemd units

UNITS = ("kubelet", "containerd")
"""The units orders may stop or kill: nothing else of the node's is chaoskit's to touch."""
RESTART_TIMEOUT = 30.0
"""Seconds systemd gets to restart a killed unit."""


def _unit(host: Host, params: Mapping[str, str]) -> str:
    unit = params.get("unit", "kubelet")
    if unit not in UNITS:
        raise FaultRefused(f"unit {unit!r} is not one chaoskit acts on ({', '.join(UNITS)})")
    host.require_unit(unit)
    return unit


def main_pid(host: Host, unit: str) -> int:
    text = host.run("systemctl", "show", "--property=MainPID", "--value", unit).stdout.strip()
    return int(text) if text.isdigit() else 0


def _kill_main(host: Host, unit: str) -> None:
    # The main process only: the unit's cgroup may hold other processes (containerd's
    # holds every container's shim; killing those is another fault).
    host.run("systemctl", "kill", "--kill-whom=main", "--signal=SIGKILL", unit, check=False)


def _unit_stop(host: Host, params: Mapping[str, str]) -> Info:
    unit = _unit(host, params)
    # SIGKILL first (a crash, not a graceful stop), then stop the unit so that systemd
    # does not restart it.
    _kill_main(host, unit)
    host.run("systemctl", "stop", unit)
    return {"unit": unit}


def _unit_start(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
    host.run("systemctl", "start", info.get("unit") or params.get("unit", "kubelet"))


register(
    NodeFault(
        "unit-stop",
        _unit_stop,
        _unit_start,
        backstop=lambda info: ["systemctl", "start", info.get("unit", "kubelet")],
    )
)


def _unit_kill(host: Host, params: Mapping[str, str]) -> Info:
    """SIGKILLs the unit's main process and waits until systemd has started a new one."""
    unit = _unit(host, params)
    before = main_pid(host, unit)
    _kill_main(host, unit)
    started = time.monotonic()
    after = main_pid(host, unit)
    while after in (0, before):
        if time.monotonic() - started > RESTART_TIMEOUT:
            raise HostFailed(f"systemd did not restart {unit} on {host.node}")
        time.sleep(0.1)
        after = main_pid(host, unit)
    return {
        "unit": unit,
        "pid_before": str(before),
        "pid_after": str(after),
        "restarted_after_s": f"{time.monotonic() - started:.2f}",
    }


register(NodeFault("unit-kill", _unit_kill, lambda host, params, info: None, one_shot=True))


# ---------------------------------------------------------------------------- containers

SIGNALS = ("KILL", "TERM", "INT", "HUP", "QUIT", "STOP", "CONT", "USR1", "USR2")


def _signal(params: Mapping[str, str]) -> signal.Signals:
    name = params.get("signal", "KILL").upper().removeprefix("SIG")
    if name not in SIGNALS:
        raise FaultRefused(f"signal {name!r} is not one of {', '.join(SIGNALS)}")
    return signal.Signals[f"SIG{name}"]


def running_containers(
    host: Host, namespace: str, container: str, pod: str = ""
) -> list[tuple[str, int]]:
    """(id, host pid) of the node's running containers that match, asked of its crictl."""
    if host.run("sh", "-c", "command -v crictl", check=False).returncode != 0:
        raise FaultRefused(f"node {host.node} has no crictl (needed to find containers)")
    labels = [
        f"--label=io.kubernetes.pod.namespace={namespace}",
        f"--label=io.kubernetes.container.name={container}",
    ]
    if pod:
        labels.append(f"--label=io.kubernetes.pod.name={pod}")
    ids = host.run("crictl", "ps", "-q", "--state", "running", *labels).stdout.split()
    found = []
    for cid in ids:
        pid = host.run(
            "crictl",
            "inspect",
            "-o",
            "go-template",
            "--template",
            "{{.info.pid}}",
            cid,
            check=False,
        ).stdout.strip()
        if pid.isdigit():
            found.append((cid, int(pid)))
    return found


def _container_kill(host: Host, params: Mapping[str, str]) -> Info:
    """Signals the main process of every running container that matches."""
    sig = _signal(params)
    namespace, container = param(params, "namespace"), param(params, "container")
    pod = params.get("pod", "")
    found = running_containers(host, namespace, container, pod)
    if not found:
        where = f"{namespace}/{pod}" if pod else namespace
        raise FaultRefused(f"node {host.node} runs no container {container} in {where}")
    for _, pid in found:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue
    return {"killed": " ".join(f"{cid}:{pid}" for cid, pid in found), "signal": sig.name}


register(
    NodeFault("container-kill", _container_kill, lambda host, params, info: None, one_shot=True)
)


# ---------------------------------------------------------------------------- static pod hold

STOP_TIMEOUT = 90.0
"""Seconds kubelet gets to stop a static pod whose manifest was moved away."""
SYSTEM_NAMESPACE = "kube-system"


def _manifest_name(params: Mapping[str, str]) -> str:
    component = param(params, "component")
    if "/" in component or component.startswith("."):
        raise FaultRefused(f"component {component!r} is not a manifest name")
    return f"{component}.yaml"


def _hold(host: Host, params: Mapping[str, str]) -> Info:
    """Moves a static pod's manifest out of kubelet's folder and waits until kubelet has
    stopped its container (``wait: "false"`` does not wait)."""
    name = _manifest_name(params)
    source, target = host.manifests / name, host.held / name
    if not source.is_file():
        if target.is_file():
            return {"manifest": name}  # held already (an agent restart re-applies)
        raise FaultRefused(f"node {host.node} has no static pod manifest {source.name}")
    host.held.mkdir(exist_ok=True)
    source.replace(target)
    info = {"manifest": name}
    if params.get("wait", "true") == "true":
        component = param(params, "component")
        started = time.monotonic()
        while running_containers(host, SYSTEM_NAMESPACE, component):
            if time.monotonic() - started > STOP_TIMEOUT:
                raise HostFailed(
                    f"{component} on {host.node} still runs {STOP_TIMEOUT:.0f} s after its hold"
                )
            time.sleep(0.25)
        info["stopped_after_s"] = f"{time.monotonic() - started:.2f}"
    return info


def _release(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
    name = info.get("manifest") or _manifest_name(params)
    held = host.held / name
    if held.is_file():
        held.replace(host.manifests / name)


register(NodeFault("static-pod-hold", _hold, _release))


# ---------------------------------------------------------------------------- process kill


def _kill(host: Host, params: Mapping[str, str]) -> Info:
    """Signals every process with the given command name (or one pid) on the node."""
    sig = _signal(params)
    if params.get("pid"):
        pids = [int(param(params, "pid"))]
    else:
        pids = host.pids_named(param(params, "process"))
        if not pids:
            raise FaultRefused(f"node {host.node} runs no process named {params['process']}")
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue
    return {"pids": " ".join(map(str, pids)), "signal": sig.name}


register(NodeFault("process-kill", _kill, lambda host, params, info: None, one_shot=True))


# ---------------------------------------------------------------------------- etcd status

ETCD_METRICS = "http://127.0.0.1:2381/metrics"
"""kubeadm's default --listen-metrics-urls for a stacked etcd member."""
_READ_METRICS = (
    "import sys, urllib.request\n"
    "print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())"
)


def _etcd_status(host: Host, params: Mapping[str, str]) -> Info:
    """Whether this node's etcd member leads, from its metrics in the node's network
    namespace (a query: it changes nothing)."""
    url = params.get("metrics_url", ETCD_METRICS)
    if not url.startswith("http://127.0.0.1:"):
        raise FaultRefused(f"metrics_url {url!r} must be http://127.0.0.1:PORT/...")
    proc = subprocess.run(
        ["nsenter", "--target", "1", "--net", "--", sys.executable, "-c", _READ_METRICS, url],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()
        raise HostFailed(f"etcd metrics on {host.node}: {detail[-1] if detail else 'no answer'}")
    info = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key in ("etcd_server_is_leader", "etcd_server_has_leader"):
            info[key.removeprefix("etcd_server_")] = value.strip().split(".")[0]
    if "is_leader" not in info:
        raise HostFailed(f"etcd metrics on {host.node} carry no etcd_server_is_leader")
    return info


register(NodeFault("etcd-status", _etcd_status, lambda host, params, info: None, one_shot=True))


# ---------------------------------------------------------------------------- backstop

BACKSTOP_GRACE = 5.0
"""Seconds after the expiry at which the node's own timer undoes, should the agent not."""


def arm_backstop(host: Host, unit: str, command: list[str], seconds: float) -> None:
    """A transient systemd timer on the node that runs ``command`` in ``seconds``."""
    host.run(
        "systemd-run",
        f"--unit={unit}",
        f"--on-active={max(1, int(seconds + BACKSTOP_GRACE))}s",
        "--timer-property=AccuracySec=1s",
        *command,
    )


def disarm_backstop(host: Host, unit: str) -> None:
    host.run("systemctl", "stop", f"{unit}.timer", check=False)
