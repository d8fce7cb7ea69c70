"""kubelet faults: the node's agent dies while its container (and its pods) live on.

``kubelet-stop`` SIGKILLs kubelet and stops its systemd unit: a merely signalled kubelet
is restarted by systemd within a second, so the unit has to be stopped for the Node to go
NotReady (after the node-monitor grace period). Rollback starts the unit.
``kubelet-kill`` only SIGKILLs it: a crash that systemd repairs.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from chaoskit.faults.base import (
    Fault,
    FaultEnv,
    Hold,
    NodeChoice,
    Params,
    Recorder,
    Victim,
    choose_nodes,
)
from chaoskit.faults.errors import FaultFailed
from chaoskit.faults.registry import register
from chaoskit.faults.undo import systemctl_start


@dataclass(frozen=True, kw_only=True)
class UnitParams(NodeChoice):
    pass


@dataclass(frozen=True, kw_only=True)
class UnitHoldParams(NodeChoice, Hold):
    pass


RESTART_TIMEOUT = 30.0


class UnitFault(Fault[UnitParams]):
    """A systemd unit of the node: SIGKILL its process, and for a hold stop the unit."""

    params_type: ClassVar[type[Params]] = UnitParams
    default_max_victims = 1
    unit = ""

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        return choose_nodes(env, self.params, rng, max_victims=self.max_victims(), what=self.name)

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        details: dict[str, Any] = {"victim": victim.label, "unit": self.unit, "held": self.holds}
        if self.holds:
            record(systemctl_start(victim.node, self.unit))
        before = main_pid(env, victim.node, self.unit)
        # The main process only: `systemctl kill` signals the whole cgroup by default, and
        # containerd's cgroup holds every container's shim (killing them is another fault).
        env.nodes.systemctl(victim.node, "kill", "--kill-whom=main", "--signal=SIGKILL", self.unit)
        if self.holds:
            env.nodes.systemctl(victim.node, "stop", self.unit)
            return details
        # Killed only: confirm systemd has started a new process.
        started = time.monotonic()
        while main_pid(env, victim.node, self.unit) in (0, before):
            if time.monotonic() - started > RESTART_TIMEOUT:
                raise FaultFailed(f"systemd did not restart {self.unit} on {victim.node}")
            time.sleep(0.2)
        details["restarted_after_s"] = round(time.monotonic() - started, 2)
        return details


def main_pid(env: FaultEnv, node: str, unit: str) -> int:
    proc = env.nodes.exec(
        node,
        ["systemctl", "show", "--property=MainPID", "--value", unit],
        what=f"reading {unit}'s pid on {node}",
    )
    text = proc.stdout.strip()
    return int(text) if text.isdigit() else 0


@register
class KubeletStop(UnitFault):
    name = "kubelet-stop"
    action = "stop_kubelet"
    summary = "SIGKILL kubelet and stop its unit: the Node goes NotReady; started on rollback"
    unit = "kubelet"
    holds = True
    params_type = UnitHoldParams


@register
class KubeletKill(UnitFault):
    name = "kubelet-kill"
    action = "kill_kubelet"
    summary = "SIGKILL kubelet; systemd restarts it"
    unit = "kubelet"
