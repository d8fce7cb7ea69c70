"""Installing, checking and removing the agent on a cluster chaoskit made.

``install`` builds (or finds cached) the agent's image, loads it into the nodes with
``kind load``, applies the CRD, RBAC and DaemonSet, and waits until an agent pod is Ready
on every node; if one is not, it fails naming the node and the pod's reason. ``remove``
first releases every order still applied and waits for the agents to undo them, then
deletes everything and waits until it is gone.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaoskit.agent import manifests
from chaoskit.agent.client import Orders
from chaoskit.agent.nodeagent.orders import GROUP, NAMESPACE, PLURAL, TERMINAL
from chaoskit.cluster.access import ClusterAccess, kubectl_path
from chaoskit.cluster.kubeclient import new_client
from chaoskit.errors import OperationFailed
from chaoskit.images.docker import image_key
from chaoskit.images.factory import build_agent_image, kind_binary
from chaoskit.proc import run_logged
from chaoskit.progress import LogProgress, Progress
from chaoskit.settings import Settings

logger = logging.getLogger(__name__)

READY_TIMEOUT = 120.0
RELEASE_TIMEOUT = 60.0


class AgentFailed(OperationFailed):
    """The agent could not be installed, is not Ready somewhere, or could not be removed."""


@dataclass(frozen=True)
class NodeAgent:
    node: str
    pod: str
    ready: bool
    reason: str


@dataclass(frozen=True)
class InstallResult:
    image: str
    nodes: list[NodeAgent]
    seconds: float


def _log(settings: Settings, access: ClusterAccess) -> Path:
    return settings.log_dir / "agent" / f"{access.name}.log"


IMAGE_ENV = "CHAOSKIT_AGENT_IMAGE"
"""An agent image the cluster's nodes pull themselves (a cluster that is not a kind
cluster on this machine, where ``kind load`` cannot deliver the locally built one)."""


def install(
    settings: Settings, access: ClusterAccess, *, progress: Progress, timeout: float = READY_TIMEOUT
) -> InstallResult:
    """Builds (or finds cached) the image, delivers it to the nodes, applies, waits."""
    started = time.monotonic()
    log = _log(settings, access)
    pulled = os.environ.get(IMAGE_ENV, "").strip()
    if pulled:
        image, pull_policy = pulled, "IfNotPresent"
    elif access.port_nodes():
        image, pull_policy = _load_built(settings, access, progress, log), "Never"
    else:
        raise AgentFailed(
            f"cluster {access.name!r} is not a kind cluster on this machine, so the agent's "
            f"image cannot be loaded into it: push chaoskit/agent to a registry its nodes "
            f"pull from and set {IMAGE_ENV} to that image"
        )
    rendered = settings.cache_dir / "agent" / f"{access.name}.yaml"
    rendered.parent.mkdir(parents=True, exist_ok=True)
    objects = manifests.all_objects(image, pull_policy=pull_policy)
    rendered.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    with progress.task("applying the agent's CRD, RBAC and DaemonSet"):
        run_logged(
            access.kubectl_cmd("apply", "--server-side", "--force-conflicts", "-f", str(rendered)),
            log=log,
            what="kubectl apply",
            error=AgentFailed,
            timeout=120,
        )
    with progress.task("waiting for an agent on every node"):
        api = new_client(access.kubeconfig, context=access.context or None)
        nodes = wait_ready(api, image, timeout)
    return InstallResult(image=image, nodes=nodes, seconds=time.monotonic() - started)


def _load_built(settings: Settings, access: ClusterAccess, progress: Progress, log: Path) -> str:
    built = build_agent_image(settings, progress)
    key = image_key(built)
    if key is None:
        raise AgentFailed(f"image {built} is not built")
    # A tag per build: a rebuilt agent under the same name would never reach running pods.
    image = f"{built}-{key[:12]}"
    run_logged(["docker", "tag", built, image], log=log, what="docker tag", error=AgentFailed)
    with progress.task(f"loading {image} into cluster {access.name!r}"):
        run_logged(
            [kind_binary(settings), "load", "docker-image", image, "--name", access.name],
            log=log,
            what="kind load docker-image",
            error=AgentFailed,
            timeout=600,
        )
    return image


def _access(settings: Settings, name: str, kubeconfig: Path, context: str) -> ClusterAccess:
    return ClusterAccess(
        name=name, kubeconfig=kubeconfig, kubectl=kubectl_path(settings), context=context
    )


def install_on(
    settings: Settings, *, name: str, kubeconfig: Path, context: str, api: client.ApiClient
) -> InstallResult:
    """``install`` for a run that needs the agent (progress goes to the log only)."""
    del api  # install makes its own client of the same kubeconfig and context
    return install(settings, _access(settings, name, kubeconfig, context), progress=LogProgress())


def remove_from(
    settings: Settings, *, name: str, kubeconfig: Path, context: str, api: client.ApiClient
) -> bool:
    """``remove`` at the end of a run that installed the agent."""
    del api
    return remove(settings, _access(settings, name, kubeconfig, context), progress=LogProgress())


def node_agents(api: client.ApiClient, image: str | None = None) -> list[NodeAgent]:
    """Per node: its agent pod, whether it is Ready, and why not."""
    core = client.CoreV1Api(api)
    nodes = sorted(n.metadata.name for n in core.list_node(_request_timeout=10).items)
    selector = ",".join(f"{k}={v}" for k, v in manifests.APP_LABEL.items())
    try:
        pods = core.list_namespaced_pod(
            NAMESPACE, label_selector=selector, _request_timeout=10
        ).items
    except ApiException as e:
        if e.status != 404:
            raise
        pods = []
    by_node: dict[str, Any] = {}
    for pod in pods:
        if pod.metadata.deletion_timestamp is not None:
            continue
        if image is not None and pod.spec.containers[0].image != image:
            continue  # an old pod of a rolling update
        by_node[pod.spec.node_name or ""] = pod
    result = []
    for node in nodes:
        pod = by_node.get(node)
        if pod is None:
            result.append(NodeAgent(node, "", False, "no agent pod on this node"))
            continue
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        result.append(NodeAgent(node, pod.metadata.name, ready, "" if ready else why_not(pod)))
    return result


def why_not(pod: Any) -> str:
    """The most telling reason an agent pod gives for not being Ready."""
    for status in pod.status.container_statuses or []:
        last = status.last_state.terminated if status.last_state else None
        waiting = status.state.waiting if status.state else None
        if last is not None and last.message:
            why = f"{waiting.reason}: " if waiting is not None else ""
            return f"{why}exited {last.exit_code}: {last.message.strip()}"
        if waiting is not None and waiting.reason:
            return f"{waiting.reason} {waiting.message or ''}".strip()
    for cond in pod.status.conditions or []:
        if cond.status != "True" and cond.message:
            return f"{cond.type}: {cond.message}"
    return f"pod is {pod.status.phase}"


def wait_ready(api: client.ApiClient, image: str, timeout: float) -> list[NodeAgent]:
    deadline = time.monotonic() + timeout
    agents: list[NodeAgent] = []
    while time.monotonic() < deadline:
        agents = node_agents(api, image)
        if agents and all(a.ready for a in agents):
            return agents
        time.sleep(1)
    bad = [a for a in agents if not a.ready]
    if not bad:
        raise AgentFailed(f"the cluster listed no nodes within {timeout:.0f} s")
    first = bad[0]
    pod = f" (pod {first.pod})" if first.pod else ""
    others = f"; and {len(bad) - 1} more node(s)" if len(bad) > 1 else ""
    raise AgentFailed(
        f"the agent is not Ready on node {first.node}{pod} after {timeout:.0f} s: "
        f"{first.reason}{others}"
    )


def installed(api: client.ApiClient) -> bool:
    ext = client.ApiextensionsV1Api(api)
    try:
        ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}", _request_timeout=10)
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


def release_all(api: client.ApiClient, timeout: float = RELEASE_TIMEOUT) -> int:
    """Ends every order still in force and waits until the agents undid them."""
    orders = Orders(api)
    live = [o for o in orders.list() if not o.terminal]
    released = len(live)
    for order in live:
        orders.release(order.name)
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        time.sleep(1)
        live = [o for o in orders.list() if o.phase not in TERMINAL]
    if live:
        names = ", ".join(f"{o.name} on {o.node} ({o.phase})" for o in live)
        raise AgentFailed(
            f"{len(live)} order(s) not undone within {timeout:.0f} s: {names}; "
            "the agent stays installed so that it can still undo them"
        )
    return released


def remove(
    settings: Settings, access: ClusterAccess, *, progress: Progress, timeout: float = 120
) -> bool:
    """Deletes the agent (False: it was not installed). Orders are undone first."""
    api = new_client(access.kubeconfig, context=access.context or None)
    if not installed(api):
        return False
    with progress.task("releasing the agent's orders"):
        release_all(api)
    log = _log(settings, access)
    with progress.task("deleting the agent"):
        for what in (
            ("namespace", NAMESPACE),
            ("clusterrolebinding", manifests.CLUSTER_ROLE),
            ("clusterrole", manifests.CLUSTER_ROLE),
            ("customresourcedefinition", f"{PLURAL}.{GROUP}"),
        ):
            run_logged(
                access.kubectl_cmd(
                    "delete", *what, "--ignore-not-found", "--wait", f"--timeout={timeout:.0f}s"
                ),
                log=log,
                what=f"kubectl delete {what[0]}",
                error=AgentFailed,
                timeout=timeout + 30,
            )
    return True
