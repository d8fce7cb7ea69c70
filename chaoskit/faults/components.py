"""What faults on kube-system components share: kill a component's container process on
chosen nodes (kubelet restarts it), or hold a static pod down by moving its manifest out
of kubelet's folder (deleting a static pod's mirror pod does nothing) until rollback.
Both are orders to the node's agent (:mod:`chaoskit.faults.agentnodes`).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from urllib3.exceptions import HTTPError

from chaoskit.faults.base import Blast, Fault, FaultEnv, Recorder, Victim, choose, help_
from chaoskit.faults.errors import InvalidParam
from chaoskit.faults.nodes import NodeContainer
from chaoskit.faults.observe import pod_on_node, restart_count, wait_restart_seen

logger = logging.getLogger(__name__)

SYSTEM_NAMESPACE = "kube-system"


@dataclass(frozen=True, kw_only=True)
class ControlPlaneChoice(Blast):
    nodes: tuple[str, ...] = field(
        default=(), metadata=help_("control-plane nodes to choose from (default: all)")
    )


def control_planes(env: FaultEnv, names: tuple[str, ...]) -> list[NodeContainer]:
    """Running control-plane nodes, or the named ones (which must be control planes)."""
    planes = {c.name: c for c in env.inventory() if c.role == "control-plane"}
    for name in names:
        if name not in planes:
            valid = ", ".join(sorted(planes)) or "none"
            raise InvalidParam("nodes", f"{name!r} is not a control-plane node (nodes: {valid})")
    chosen = [planes[n] for n in names] if names else list(planes.values())
    return [c for c in chosen if c.state == "running"]


def kill_container(
    env: FaultEnv, node: str, namespace: str, container: str, *, pod: str = "", signal: str = "KILL"
) -> list[dict[str, Any]]:
    """Signals the main process of the matching running containers on ``node`` through
    its agent; returns [{id, pid}] of what it signalled."""
    params = {"namespace": namespace, "container": container, "signal": signal}
    if pod:
        params["pod"] = pod
    info = env.agents().once(node, "container-kill", params)
    killed = []
    for item in info.get("killed", "").split():
        cid, _, pid = item.partition(":")
        killed.append({"id": cid, "pid": int(pid) if pid.isdigit() else None})
    return killed


def spare_port_node(
    candidates: list[NodeContainer], count: int | None, percent: float | None
) -> list[NodeContainer]:
    """``candidates`` without the node that publishes the host's ports when the others
    are enough for the victims wanted. A control plane whose etcd member or API server is
    held down loses its own kubelet too (kubeadm points a control plane's kubelet at its
    local API server): the Node goes NotReady and the ingress on it leaves its Service."""
    others = [c for c in candidates if not c.publishes_ports]
    if percent is not None:
        wanted = max(1, math.ceil(len(candidates) * percent / 100))
    else:
        wanted = count if count is not None else 1
    return others if len(others) >= wanted else candidates


def kill_and_confirm(
    env: FaultEnv,
    node: str,
    container: str,
    *,
    meanwhile: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """SIGKILLs a kube-system container's process on ``node``; waits until the API shows
    the restart (unless the API is what the kill took away). ``meanwhile`` runs right
    after the kill (what it returns joins the details)."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - heavy: only when acting

    core = env.core()
    try:
        pod = pod_on_node(core, SYSTEM_NAMESPACE, node, container)
    except (ApiException, HTTPError, OSError) as e:
        logger.warning("cannot read %s's pod on %s before the kill: %s", container, node, e)
        pod = None
    result: dict[str, Any] = {"killed": kill_container(env, node, SYSTEM_NAMESPACE, container)}
    if meanwhile is not None:
        result.update(meanwhile())
    if pod is not None:
        before = restart_count(pod, container)
        seen = wait_restart_seen(core, SYSTEM_NAMESPACE, pod.metadata.name, container, before)
        if seen is None:
            logger.warning("the API did not show %s on %s restarting", container, node)
        result.update({"pod": pod.metadata.name, "restart_seen_after_s": seen})
    return result


class ComponentFault(Fault[Any]):
    """Kill or hold down one kube-system component on a choice of control-plane nodes."""

    container: ClassVar[str] = ""
    """The component's container name (its static pod manifest is ``<name>.yaml``)."""

    def component(self) -> str:
        return self.container

    def candidates(self, env: FaultEnv) -> list[NodeContainer]:
        return control_planes(env, self.params.nodes)

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        component = self.component()
        candidates = self.candidates(env)
        if self.holds and not self.params.nodes:
            candidates = spare_port_node(candidates, self.params.count, self.params.percent)
        chosen: list[NodeContainer] = choose(
            candidates,
            key=lambda c: c.name,
            rng=rng,
            count=self.params.count,
            percent=self.params.percent,
            max_victims=self.max_victims(),
            what=f"{self.name} {component}",
        )
        return [
            Victim(
                kind="component",
                name=f"{component}-{c.name}",
                node=c.name,
                namespace=SYSTEM_NAMESPACE,
                container=component,
            )
            for c in chosen
        ]

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        component = victim.container
        if not self.holds:
            return {"victim": victim.label, **kill_and_confirm(env, victim.node, component)}
        # The agent moves the manifest out of kubelet's folder, waits until kubelet has
        # stopped the container, and puts it back at the release or the expiry.
        info = env.agents().hold(
            victim.node,
            "static-pod-hold",
            {"component": component},
            record=record,
            description=f"put static pod manifest {component}.yaml back on {victim.node}",
            duration=getattr(self.params, "duration", None),
        )
        stopped = info.get("stopped_after_s")
        return {
            "victim": victim.label,
            "held": info.get("manifest", f"{component}.yaml"),
            "stopped_after_s": float(stopped) if stopped else None,
            # False when the API stopped answering as the hold took effect (the last etcd
            # member of a quorum): the agent holds it, but could not say so then.
            "confirmed": info.get("confirmed") != "false",
        }
