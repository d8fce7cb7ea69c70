"""kube-proxy fault: its process dies on chosen nodes; kubelet restarts the container.

Service rules already in the node's nftables stay; what breaks is keeping them current
while it is down (new endpoints are not routed to from that node).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from chaoskit.faults.base import Fault, FaultEnv, NodeChoice, Recorder, Victim, choose_nodes
from chaoskit.faults.components import SYSTEM_NAMESPACE, kill_and_confirm
from chaoskit.faults.errors import FaultFailed
from chaoskit.faults.observe import pod_on_node
from chaoskit.faults.registry import register


@dataclass(frozen=True, kw_only=True)
class KubeProxyParams(NodeChoice):
    pass


@register
class KubeProxyKill(Fault[KubeProxyParams]):
    name = "kube-proxy-kill"
    action = "kill_kube_proxy"
    summary = "SIGKILL kube-proxy on chosen nodes; kubelet restarts it"
    params_type = KubeProxyParams

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        nodes = choose_nodes(env, self.params, rng, max_victims=self.max_victims(), what=self.name)
        victims = []
        for node in nodes:
            pod = pod_on_node(env.core(), SYSTEM_NAMESPACE, node.node, "kube-proxy")
            if pod is None:
                raise FaultFailed(f"kube-proxy-kill: no kube-proxy pod on {node.node}")
            victims.append(
                Victim(
                    kind="component",
                    name=pod.metadata.name,
                    node=node.node,
                    namespace=SYSTEM_NAMESPACE,
                    uid=pod.metadata.uid,
                    container="kube-proxy",
                )
            )
        return victims

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        return {"victim": victim.label, **kill_and_confirm(env, victim.node, "kube-proxy")}
