"""Node faults: stop, kill, pause or restart a kind node's container.

These are "power" faults: they act through this machine's Docker on a kind node container,
so they run only on chaoskit's own kind clusters and are refused on any other target
(:meth:`~chaoskit.faults.base.Fault.check_target`).

A stopped, killed or paused node stays down until rolled back (``docker start`` /
``docker unpause``), after its ``duration`` or at the end of the run. A restart comes back
by itself; its undo only makes sure the node runs again if the harness dies midway.
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
from chaoskit.faults.observe import wait_node_pods_restarted
from chaoskit.faults.registry import register
from chaoskit.faults.undo import docker_start, docker_unpause


@dataclass(frozen=True, kw_only=True)
class NodeParams(NodeChoice):
    pass


@dataclass(frozen=True, kw_only=True)
class NodeHoldParams(NodeChoice, Hold):
    pass


class _NodeFault(Fault[NodeParams]):
    params_type: ClassVar[type[Params]] = NodeHoldParams
    default_max_victims = 1
    holds = True
    docker_verb: ClassVar[str]
    docker_args: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Only a kind node's container can be powered off from here; a real machine cannot.
        cls.kind_only = f"is a power fault (docker {cls.docker_verb} of a kind node container)"

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        return choose_nodes(
            env, self.params, rng, max_victims=self.max_victims(), what=f"{self.name}"
        )

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        undo = docker_unpause if self.docker_verb == "pause" else docker_start
        record(undo(victim.node))
        started = time.time()
        env.nodes.docker(self.docker_verb, victim.node, *self.docker_args)
        details: dict[str, Any] = {"victim": victim.label, "docker": self.docker_verb}
        if not self.holds:
            # A reboot is over when kubelet has started every pod of the node again; until
            # then the API still shows them as they were before it.
            seen = wait_node_pods_restarted(env.core(), victim.node, started)
            if seen is None:
                raise FaultFailed(f"{victim.label}: its pods did not restart after the reboot")
            details["pods_restarted_after_s"] = seen
        return details


@register
class NodeStop(_NodeFault):
    name = "node-stop"
    action = "stop_nodes"
    summary = "docker stop a node container (clean shutdown); docker start on rollback"
    docker_verb = "stop"


@register
class NodeKill(_NodeFault):
    name = "node-kill"
    action = "kill_nodes"
    summary = "docker kill a node container (power cut); docker start on rollback"
    docker_verb = "kill"


@register
class NodePause(_NodeFault):
    name = "node-pause"
    action = "pause_nodes"
    summary = "docker pause a node container (frozen, silent); docker unpause on rollback"
    docker_verb = "pause"


@register
class NodeRestart(_NodeFault):
    name = "node-restart"
    action = "restart_nodes"
    summary = "docker restart a node container (reboot); comes back by itself"
    docker_verb = "restart"
    holds = False
    params_type = NodeParams
