"""What a cluster looks like from its API: nodes, their readiness, kube-system pods."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from urllib3.exceptions import HTTPError

from chaoskit.errors import ClusterFailed

if TYPE_CHECKING:
    from kubernetes import client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeState:
    name: str
    role: str
    ready: bool
    kubelet_version: str
    internal_ip: str


@dataclass(frozen=True)
class PodState:
    namespace: str
    name: str
    node: str
    phase: str
    ready: bool


@dataclass(frozen=True)
class ClusterHealth:
    nodes: tuple[NodeState, ...]
    system_pods: tuple[PodState, ...]

    @property
    def ready(self) -> bool:
        return (
            bool(self.nodes)
            and all(n.ready for n in self.nodes)
            and bool(self.system_pods)
            and all(p.ready or p.phase == "Succeeded" for p in self.system_pods)
        )

    def not_ready(self) -> list[str]:
        """Names of what is not Ready yet, for progress and error messages."""
        names = [f"node/{n.name}" for n in self.nodes if not n.ready]
        names += [
            f"pod/{p.name}" for p in self.system_pods if not p.ready and p.phase != "Succeeded"
        ]
        return names

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [asdict(n) for n in self.nodes],
            "system_pods": [asdict(p) for p in self.system_pods],
            "ready": self.ready,
        }


def api_client(kubeconfig: Path) -> client.ApiClient:
    """A client of ``kubeconfig``'s current context; every request has a timeout."""
    from chaoskit.cluster.kubeclient import new_client  # noqa: PLC0415 - heavy: only when the API is used

    return new_client(kubeconfig)


def _condition(conditions: list[Any] | None, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in conditions or [])


def read_health(api: client.ApiClient) -> ClusterHealth:
    from kubernetes import client  # noqa: PLC0415 - heavy: only when the API is used

    core = client.CoreV1Api(api)
    nodes = []
    for node in core.list_node(_request_timeout=10).items:
        labels = node.metadata.labels or {}
        role = "control-plane" if "node-role.kubernetes.io/control-plane" in labels else "worker"
        addresses = node.status.addresses or []
        ip = next((a.address for a in addresses if a.type == "InternalIP"), "")
        nodes.append(
            NodeState(
                name=node.metadata.name,
                role=role,
                ready=_condition(node.status.conditions, "Ready"),
                kubelet_version=node.status.node_info.kubelet_version,
                internal_ip=ip,
            )
        )
    pods = [
        PodState(
            namespace=pod.metadata.namespace,
            name=pod.metadata.name,
            node=pod.spec.node_name or "",
            phase=pod.status.phase or "Unknown",
            ready=_condition(pod.status.conditions, "Ready"),
        )
        for pod in core.list_namespaced_pod("kube-system", _request_timeout=10).items
    ]
    return ClusterHealth(
        nodes=tuple(sorted(nodes, key=lambda n: n.name)),
        system_pods=tuple(sorted(pods, key=lambda p: p.name)),
    )


def wait_ready(
    api: client.ApiClient, *, expected_nodes: int, timeout: float, poll: float = 1.0
) -> ClusterHealth:
    """Waits until every expected node and every kube-system pod is Ready."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - heavy: only when the API is used

    deadline = time.monotonic() + timeout
    last: ClusterHealth | None = None
    last_error = ""
    while time.monotonic() < deadline:
        try:
            last = read_health(api)
        except (ApiException, HTTPError, OSError) as e:
            last_error = str(e).splitlines()[0] if str(e) else type(e).__name__
            logger.debug("API not answering yet: %s", last_error)
        else:
            if len(last.nodes) >= expected_nodes and last.ready:
                return last
            logger.debug("waiting for %s", ", ".join(last.not_ready()) or "nodes to register")
        time.sleep(poll)
    if last is None:
        raise ClusterFailed(f"the API server did not answer within {timeout:.0f} s: {last_error}")
    missing = last.not_ready() or [f"{expected_nodes - len(last.nodes)} node(s) to register"]
    raise ClusterFailed(f"not Ready after {timeout:.0f} s: {', '.join(missing[:8])}")
