"""kubelet faults: the node's kubelet dies while the node (and its pods) live on.

``kubelet-stop`` SIGKILLs kubelet and stops its systemd unit: a merely signalled kubelet
is restarted by systemd within a second, so the unit has to be stopped for the Node to go
NotReady (after the node-monitor grace period). Rollback starts the unit.
``kubelet-kill`` only SIGKILLs it: a crash that systemd repairs. Both are orders to
chaoskit's node agent (:mod:`chaoskit.faults.agentnodes`).
"""

from __future__ import annotations

import random
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
from chaoskit.faults.registry import register


@dataclass(frozen=True, kw_only=True)
class UnitParams(NodeChoice):
    pass


@dataclass(frozen=True, kw_only=True)
class UnitHoldParams(NodeChoice, Hold):
    pass


class UnitFault(Fault[UnitParams]):
    """A systemd unit of the node: SIGKILL its process, and for a hold stop the unit."""

    params_type: ClassVar[type[Params]] = UnitParams
    default_max_victims = 1
    unit = ""

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        return choose_nodes(env, self.params, rng, max_victims=self.max_victims(), what=self.name)

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        details: dict[str, Any] = {"victim": victim.label, "unit": self.unit, "held": self.holds}
        params = {"unit": self.unit}
        if self.holds:
            # The agent SIGKILLs the main process, stops the unit, and starts it again at
            # the release, or at the expiry should this process die.
            info = env.agents().hold(
                victim.node,
                "unit-stop",
                params,
                record=record,
                description=f"systemctl start {self.unit} on {victim.node}",
                duration=getattr(self.params, "duration", None),
            )
            details["agent"] = info
            return details
        # Killed only: the agent confirms systemd started a new process.
        info = env.agents().once(victim.node, "unit-kill", params)
        details["restarted_after_s"] = float(info.get("restarted_after_s", "nan"))
        details["pid_before"], details["pid_after"] = info.get("pid_before"), info.get("pid_after")
        return details


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
