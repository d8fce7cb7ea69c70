"""Replicas that an earlier fault piled onto one node, spread again between trials.

Kubernetes never moves a running pod. After a lost node comes back, the replicas that
were rescheduled away from it stay where they are, so the next node fault can take every
replica of a service at once and measure a total outage that the previous trial set up,
not the one under test. Between trials a suite does what a descheduler would: for each
Deployment whose ready replicas all run on one node while another schedulable node
exists, it deletes half of them; the scheduler's spread constraints place the
replacements on the emptier node. StatefulSets are left alone (their volumes are pinned),
and so are Deployments placed on purpose (node selector or required node affinity).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from chaoskit.topology.deploy import label_selector, wait_rollouts

logger = logging.getLogger(__name__)

_BLOCKING_TAINTS = ("NoSchedule", "NoExecute")


@dataclass(frozen=True)
class PiledUp:
    """A Deployment whose ready replicas all run on ``node``."""

    name: str
    node: str
    pods: tuple[str, ...]
    """Names of its ready pods, oldest first."""


def schedulable_nodes(api: client.ApiClient) -> set[str]:
    """Ready nodes that accept ordinary pods (no NoSchedule/NoExecute taint, not cordoned)."""
    result = set()
    for node in client.CoreV1Api(api).list_node(_request_timeout=30).items:
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        tainted = any(t.effect in _BLOCKING_TAINTS for t in node.spec.taints or [])
        if ready and not tainted and not node.spec.unschedulable:
            result.add(node.metadata.name)
    return result


def _ready_pods(core: client.CoreV1Api, namespace: str, selector: str) -> list[Any]:
    pods = core.list_namespaced_pod(namespace, label_selector=selector, _request_timeout=30)
    ready = [
        p
        for p in pods.items
        if p.metadata.deletion_timestamp is None
        and p.spec.node_name
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]
    return sorted(ready, key=lambda p: p.metadata.creation_timestamp)


def _pinned(deployment: Any) -> bool:
    """Placed on purpose (a node selector or a required node affinity, such as the
    ingress on the port-publishing node): its pods are where they must be."""
    spec = deployment.spec.template.spec
    affinity = spec.affinity.node_affinity if spec.affinity else None
    required = affinity.required_during_scheduling_ignored_during_execution if affinity else None
    return bool(spec.node_selector or required)


def piled_up(api: client.ApiClient, namespace: str) -> list[PiledUp]:
    """Deployments of two or more replicas all on one node, while there are others."""
    nodes = schedulable_nodes(api)
    if len(nodes) < 2:
        return []
    core = client.CoreV1Api(api)
    result = []
    for deployment in client.AppsV1Api(api).list_namespaced_deployment(namespace).items:
        selector = label_selector(deployment)
        if (deployment.spec.replicas or 0) < 2 or not selector or _pinned(deployment):
            continue
        pods = _ready_pods(core, namespace, selector)
        on = {p.spec.node_name for p in pods}
        if len(pods) >= 2 and len(on) == 1 and on <= nodes:
            (node,) = on
            result.append(
                PiledUp(deployment.metadata.name, node, tuple(p.metadata.name for p in pods))
            )
    return result


def respread(api: client.ApiClient, namespace: str, *, timeout: float = 180) -> list[PiledUp]:
    """Spreads the Deployments of ``namespace`` that are piled onto one node; returns them.

    Deletes the newer half of each one's pods (they went there last), then waits until
    every workload of the namespace is Ready again."""
    piles = piled_up(api, namespace)
    if not piles:
        return []
    core = client.CoreV1Api(api)
    deleted: dict[str, set[str]] = {}
    for pile in piles:
        for name in pile.pods[len(pile.pods) - len(pile.pods) // 2 :]:
            logger.info("respreading %s: deleting pod %s on %s", pile.name, name, pile.node)
            try:
                core.delete_namespaced_pod(name, namespace, _request_timeout=30)
            except client.ApiException as e:
                if e.status != 404:
                    raise
            deleted.setdefault(pile.name, set()).add(name)
    deadline = time.monotonic() + timeout
    apps = client.AppsV1Api(api)
    waiting = list(piles)
    while waiting and time.monotonic() < deadline:
        time.sleep(1)
        left = []
        for pile in waiting:
            deployment = apps.read_namespaced_deployment(pile.name, namespace)
            ready = [
                p
                for p in _ready_pods(core, namespace, label_selector(deployment))
                if p.metadata.name not in deleted[pile.name]
            ]
            if len(ready) < (deployment.spec.replicas or 0):
                left.append(pile)
        waiting = left
    wait_rollouts(api, namespace, max(deadline - time.monotonic(), 10))
    still = {p.name for p in piled_up(api, namespace)}
    if still:
        logger.warning("still on one node after respreading: %s", ", ".join(sorted(still)))
    return piles
