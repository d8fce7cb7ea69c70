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


# ---------------------------------------------------------------------------- kubelet-stop


def _unit_stop(host: Host, params: Mapping[str, str]) -> Info:
    unit = params.get("unit", "kubelet")
    host.require_unit(unit)
    # SIGKILL the main process first (a crash, not a graceful stop), then stop the unit so
    # that systemd does not restart it. Only the main process: the unit's cgroup may hold
    # other processes (containerd's holds every container's shim).
    host.run("systemctl", "kill", "--kill-whom=main", "--signal=SIGKILL", unit, check=False)
    host.run("systemctl", "stop", unit)
    return {"unit": unit}


def _unit_start(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
    host.run("systemctl", "start", info.get("unit") or params.get("unit", "kubelet"))


register(
    NodeFault(
        "kubelet-stop",
        _unit_stop,
        _unit_start,
        backstop=lambda info: ["systemctl", "start", info.get("unit", "kubelet")],
    )
)


# ---------------------------------------------------------------------------- static pod hold


def _manifest_name(params: Mapping[str, str]) -> str:
    component = param(params, "component")
    if "/" in component or component.startswith("."):
        raise FaultRefused(f"component {component!r} is not a manifest name")
    return f"{component}.yaml"


def _hold(host: Host, params: Mapping[str, str]) -> Info:
    """Moves a static pod's manifest out of kubelet's folder: kubelet stops the pod."""
    name = _manifest_name(params)
    source, target = host.manifests / name, host.held / name
    if not source.is_file():
        if target.is_file():
            return {"manifest": name}  # held already (an agent restart re-applies)
        raise FaultRefused(f"node {host.node} has no static pod manifest {source.name}")
    host.held.mkdir(exist_ok=True)
    source.replace(target)
    return {"manifest": name}


def _release(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
    name = info.get("manifest") or _manifest_name(params)
    held = host.held / name
    if held.is_file():
        held.replace(host.manifests / name)


register(NodeFault("static-pod-hold", _hold, _release))


# ---------------------------------------------------------------------------- process kill


def _kill(host: Host, params: Mapping[str, str]) -> Info:
    """Signals every process with the given command name (or one pid) on the node."""
    sig = signal.Signals[f"SIG{params.get('signal', 'KILL').upper().removeprefix('SIG')}"]
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


def _nothing(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
    return None


register(NodeFault("process-kill", _kill, _nothing, one_shot=True))


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
