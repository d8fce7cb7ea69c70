"""etcd member faults on a stacked-etcd cluster (one member per control plane).

``etcd-kill`` SIGKILLs the etcd process of N members (kubelet restarts them);
``etcd-stop`` holds N members down by moving their static pod manifests away until
rollback. Losing a majority loses quorum: every API read and write fails until members
return, so it has to be asked for with ``allow_quorum_loss: true``. ``target`` picks the
leader or followers (asked of etcd itself) or any member.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from chaoskit.faults.base import FaultEnv, Hold, Recorder, Victim, help_
from chaoskit.faults.components import (
    ComponentFault,
    ControlPlaneChoice,
    control_planes,
    kill_and_confirm,
)
from chaoskit.faults.errors import FaultFailed, InvalidParam
from chaoskit.faults.nodes import NodeContainer
from chaoskit.faults.registry import register

ELECTION_TIMEOUT = 30.0


def leader(env: FaultEnv, members: list[NodeContainer]) -> str:
    """The node name of the current etcd leader, asked of each member's agent (etcd's own
    ``etcd_server_is_leader`` metric on the node)."""
    errors = []
    for member in members:
        try:
            info = env.agents().once(member.name, "etcd-status", {})
        except FaultFailed as e:
            errors.append(str(e))
            continue
        if info.get("is_leader") == "1":
            return member.name
    reason = "; ".join(errors[:2]) or "every member answered that it does not lead"
    raise FaultFailed(f"no etcd member named its leader: {reason}")


@dataclass(frozen=True, kw_only=True)
class EtcdParams(ControlPlaneChoice):
    target: Literal["any", "leader", "followers"] = field(
        default="any", metadata=help_("which members: any, the leader, or followers only")
    )
    allow_quorum_loss: bool = field(
        default=False,
        metadata=help_("allow hitting a majority of members (every API call fails meanwhile)"),
    )


@dataclass(frozen=True, kw_only=True)
class EtcdHoldParams(EtcdParams, Hold):
    pass


class _EtcdFault(ComponentFault):
    params_type = EtcdParams
    container = "etcd"

    def candidates(self, env: FaultEnv) -> list[NodeContainer]:
        members = control_planes(env, self.params.nodes)
        if self.params.target == "any":
            return members
        current = leader(env, members)
        if self.params.target == "leader":
            return [m for m in members if m.name == current]
        return [m for m in members if m.name != current]

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        victims = super().select(env, rng)
        total = len(control_planes(env, ()))
        majority = total // 2 + 1
        if total - len(victims) < majority and not self.params.allow_quorum_loss:
            raise InvalidParam(
                "allow_quorum_loss",
                f"{self.name} on {len(victims)} of {total} etcd members loses quorum "
                f"(a majority is {majority}): set allow_quorum_loss: true to do it on purpose",
            )
        return [
            Victim(
                kind="etcd-member",
                name=f"etcd-{v.node}",
                node=v.node,
                namespace=v.namespace,
                container="etcd",
            )
            for v in victims
        ]


@register
class EtcdKill(_EtcdFault):
    name = "etcd-kill"
    action = "kill_etcd_members"
    summary = "SIGKILL N etcd members (kubelet restarts them); N >= majority loses quorum"

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        members = control_planes(env, ())
        survivors = [m for m in members if m.name != victim.node]
        try:
            before = leader(env, members)
        except FaultFailed:
            before = None

        def election() -> dict[str, Any]:
            # Who leads after the kill, and how soon the survivors agree on it.
            started = time.monotonic()
            while survivors and time.monotonic() - started < ELECTION_TIMEOUT:
                try:
                    after = leader(env, survivors)
                except FaultFailed:
                    time.sleep(0.2)
                    continue
                env.mark("etcd-leader", after, {"before": before})
                return {
                    "leader_before": before,
                    "leader_after": after,
                    "leader_known_after_s": round(time.monotonic() - started, 2),
                }
            return {"leader_before": before, "leader_after": None}

        return {
            "victim": victim.label,
            **kill_and_confirm(env, victim.node, "etcd", meanwhile=election),
        }


@register
class EtcdStop(_EtcdFault):
    name = "etcd-stop"
    action = "stop_etcd_members"
    summary = "hold N etcd members down (manifests moved away) until rollback"
    holds = True
    params_type = EtcdHoldParams
