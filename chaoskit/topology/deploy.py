"""Deploying a topology onto a chaoskit cluster and proving it serves.

``deploy`` builds (or finds cached) the topology's images, loads them into the cluster's
nodes, applies its kustomize folder, waits until every Deployment and StatefulSet has all
replicas Ready, then places one order from the host through the ingress and waits until it
is in MySQL and its notification (which went through Kafka) is recorded. ``check`` does only
the last two.
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

from chaoskit.cluster.access import ClusterAccess
from chaoskit.cluster.config import PUBLISHES_PORTS_LABEL
from chaoskit.cluster.health import api_client
from chaoskit.errors import OperationFailed
from chaoskit.images.docker import image_key
from chaoskit.images.factory import build_topology_images, kind_binary
from chaoskit.proc import run_logged
from chaoskit.progress import Progress
from chaoskit.settings import Settings
from chaoskit.topology.catalog import Topology
from chaoskit.topology.client import place_order
from chaoskit.topology.shopdb import query

logger = logging.getLogger(__name__)


class DeployFailed(OperationFailed):
    """A topology did not become ready or does not serve."""


@dataclass(frozen=True)
class Endpoints:
    ingress: str
    prometheus: str


@dataclass(frozen=True)
class DeployResult:
    endpoints: Endpoints
    order_id: str
    seconds: float


def endpoints(access: ClusterAccess, topo: Topology) -> Endpoints:
    return Endpoints(
        ingress=f"http://127.0.0.1:{access.host_port(topo.ingress_node_port)}",
        prometheus=f"http://127.0.0.1:{access.host_port(topo.prometheus_node_port)}",
    )


def deploy(
    settings: Settings,
    access: ClusterAccess,
    topo: Topology,
    *,
    progress: Progress,
    timeout: float = 600,
) -> DeployResult:
    started = time.monotonic()
    log = settings.log_dir / "deploy" / f"{access.name}-{topo.name}.log"
    images = pinned_images(build_topology_images(settings, progress, topo.images), log)
    nodes = image_nodes(api_client(access.kubeconfig), every=topo.on_control_planes)
    with progress.task(
        f"loading {len(images)} images into cluster {access.name!r} ({', '.join(nodes)})"
    ):
        run_logged(
            [
                kind_binary(settings),
                "load",
                "docker-image",
                *images.values(),
                "--name",
                access.name,
                "--nodes",
                ",".join(nodes),
            ],
            log=log,
            what="kind load docker-image",
            error=DeployFailed,
            timeout=1200,
        )
    overlay = write_overlay(settings, access, topo, images)
    replace_other_topology(access, topo, progress=progress, timeout=timeout)
    with progress.task(f"applying {topo.manifests_dir.name} manifests"):
        run_logged(
            access.kubectl_cmd("apply", "--server-side", "--force-conflicts", "-k", str(overlay)),
            log=log,
            what="kubectl apply",
            error=DeployFailed,
            timeout=300,
        )
        run_logged(
            access.kubectl_cmd(
                "label", "namespace", topo.namespace, f"{TOPOLOGY_LABEL}={topo.name}", "--overwrite"
            ),
            log=log,
            what="kubectl label namespace",
            error=DeployFailed,
            timeout=60,
        )
    result = check(access, topo, progress=progress, timeout=timeout)
    return DeployResult(result.endpoints, result.order_id, time.monotonic() - started)


TOPOLOGY_LABEL = "chaoskit.io/topology"
# Taints a node carries while it is down: it still runs the topology once it is back.
PASSING_TAINTS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})


def image_nodes(api: client.ApiClient, *, every: bool = False) -> list[str]:
    """The nodes that can run the topology's Pods (``every``: all of them): each node
    without a NoSchedule or NoExecute taint, and the node that publishes the host's ports
    (the ingress and Prometheus tolerate its control-plane taint). Loading the images only
    there saves two of five loads on a 3 + 2 cluster."""
    names = []
    for node in client.CoreV1Api(api).list_node(_request_timeout=30).items:
        labels = node.metadata.labels or {}
        blocking = [
            t
            for t in node.spec.taints or []
            if t.effect in ("NoSchedule", "NoExecute") and t.key not in PASSING_TAINTS
        ]
        if every or not blocking or labels.get(PUBLISHES_PORTS_LABEL) == "true":
            names.append(node.metadata.name)
    if not names:
        raise DeployFailed("no node of the cluster can run the topology (every node is tainted)")
    return sorted(names)


"""Set on a topology's namespace: which topology was deployed there."""


def deployed_topology(access: ClusterAccess, namespace: str) -> str | None:
    """The topology deployed in ``namespace`` (None: no such namespace). A namespace
    without the label predates it and holds the default topology."""
    core = client.CoreV1Api(api_client(access.kubeconfig))
    try:
        found = core.read_namespace(namespace)
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise DeployFailed(f"reading namespace {namespace!r}: {e.reason}") from e
    if found.metadata.deletion_timestamp is not None:
        return None
    return str((found.metadata.labels or {}).get(TOPOLOGY_LABEL, "ecommerce"))


def replace_other_topology(
    access: ClusterAccess, topo: Topology, *, progress: Progress, timeout: float
) -> None:
    """Deletes the namespace if another topology lives there (waits until it is gone).

    Topologies that share a namespace cannot be applied over one another: a StatefulSet's
    pod management policy is immutable, and a static Kafka or Galera quorum cannot grow in
    place. A namespace without the label predates it and holds the default topology.
    """
    core = client.CoreV1Api(api_client(access.kubeconfig))
    try:
        namespace = core.read_namespace(topo.namespace)
    except client.ApiException as e:
        if e.status == 404:
            return
        raise DeployFailed(f"reading namespace {topo.namespace!r}: {e.reason}") from e
    current = (namespace.metadata.labels or {}).get(TOPOLOGY_LABEL, "ecommerce")
    if current == topo.name:
        return
    with progress.task(f"deleting topology {current!r} from namespace {topo.namespace!r}"):
        if namespace.metadata.deletion_timestamp is None:
            core.delete_namespace(topo.namespace)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                core.read_namespace(topo.namespace)
            except client.ApiException as e:
                if e.status == 404:
                    return
                raise DeployFailed(f"reading namespace {topo.namespace!r}: {e.reason}") from e
            time.sleep(2)
        raise DeployFailed(
            f"namespace {topo.namespace!r} (topology {current!r}) was not deleted "
            f"within {timeout:.0f} s"
        )


def pinned_images(images: list[str], log: Path) -> dict[str, str]:
    """Each image also tagged with its build key, so that a rebuilt image rolls out.

    The manifests name ``chaoskit/shop:1``; an image rebuilt under that same name would be
    loaded into the nodes but never reach running pods. A tag with the build key changes
    exactly when the image does.
    """
    pinned = {}
    for image in images:
        key = image_key(image)
        if key is None:
            raise DeployFailed(f"image {image} is not built")
        name, _, tag = image.rpartition(":")
        target = f"{name}:{tag}-{key[:12]}"
        run_logged(["docker", "tag", image, target], log=log, what="docker tag", error=DeployFailed)
        pinned[image] = target
    return pinned


def write_overlay(
    settings: Settings, access: ClusterAccess, topo: Topology, images: dict[str, str]
) -> Path:
    """A kustomization over the topology's own that swaps in the pinned image tags."""
    overlay = settings.cache_dir / "clusters" / access.name / "deploy" / topo.name
    overlay.mkdir(parents=True, exist_ok=True)
    document = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(topo.manifests_dir, overlay)],
        "images": [
            {"name": original.rpartition(":")[0], "newTag": pinned.rpartition(":")[2]}
            for original, pinned in images.items()
        ],
    }
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return overlay


def check(
    access: ClusterAccess, topo: Topology, *, progress: Progress, timeout: float = 600
) -> DeployResult:
    """Waits for every rollout, then proves an order flows end to end."""
    started = time.monotonic()
    api = api_client(access.kubeconfig)
    deployed = deployed_topology(access, topo.namespace)
    if deployed is None:
        raise DeployFailed(f"namespace {topo.namespace!r} does not exist: nothing is deployed")
    if deployed != topo.name:
        raise DeployFailed(
            f"namespace {topo.namespace!r} runs topology {deployed!r}, not {topo.name!r}"
        )
    with progress.task(f"waiting for every workload in namespace {topo.namespace!r} to be Ready"):
        wait_rollouts(api, topo.namespace, timeout)
    urls = endpoints(access, topo)

    def left(most: float) -> float:
        # Every step within ``timeout`` (a suite's deadline is shorter than the steps').
        return max(1.0, min(most, timeout - (time.monotonic() - started)))

    with progress.task(f"placing an order through {urls.ingress}"):
        order_id = first_order(urls.ingress, timeout=left(180))
    with progress.task("waiting for the order and its notification in MySQL"):
        wait_order_recorded(access, topo, order_id, timeout=left(120))
    return DeployResult(urls, order_id, time.monotonic() - started)


def _workloads(api: client.ApiClient, namespace: str) -> list[tuple[str, Any]]:
    apps = client.AppsV1Api(api)
    found: list[tuple[str, Any]] = [
        ("deployment", d) for d in apps.list_namespaced_deployment(namespace).items
    ]
    found += [("statefulset", s) for s in apps.list_namespaced_stateful_set(namespace).items]
    return found


def workload_ready(kind: str, obj: Any) -> bool:
    """A Deployment, StatefulSet or DaemonSet (``kind`` in any case) whose current
    generation is Ready in full."""
    status = obj.status
    if (status.observed_generation or 0) < (obj.metadata.generation or 0):
        return False
    kind = kind.lower()
    if kind == "daemonset":
        want = status.desired_number_scheduled or 0
        return (status.number_ready or 0) >= want and (status.updated_number_scheduled or 0) >= want
    want = obj.spec.replicas if obj.spec.replicas is not None else 1
    updated = status.updated_replicas if kind == "deployment" else status.current_replicas
    return (status.ready_replicas or 0) >= want and (updated or 0) >= want


def wait_rollouts(api: client.ApiClient, namespace: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending: list[tuple[str, Any]] = []
    while time.monotonic() < deadline:
        workloads = _workloads(api, namespace)
        pending = [(k, o) for k, o in workloads if not workload_ready(k, o)]
        if workloads and not pending:
            return
        time.sleep(2)
    if not pending:
        raise DeployFailed(f"namespace {namespace!r} has no workloads after {timeout:.0f} s")
    kind, obj = pending[0]
    reason = why_not_ready(api, namespace, obj)
    others = f" (and {len(pending) - 1} more)" if len(pending) > 1 else ""
    raise DeployFailed(
        f"{kind}/{obj.metadata.name} not Ready after {timeout:.0f} s: {reason}{others}"
    )


def label_selector(workload: Any) -> str:
    """A Deployment's or StatefulSet's matchLabels as a label selector string."""
    labels = workload.spec.selector.match_labels or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def why_not_ready(api: client.ApiClient, namespace: str, obj: Any) -> str:
    """The most telling reason one of the workload's pods gives."""
    core = client.CoreV1Api(api)
    selector = label_selector(obj)
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        if ready:
            continue
        name = pod.metadata.name
        for cond in pod.status.conditions or []:
            if cond.type == "PodScheduled" and cond.status != "True":
                return f"pod {name} unschedulable: {cond.message}"
        for status in pod.status.container_statuses or []:
            waiting = status.state.waiting
            if waiting is not None and waiting.reason not in (None, "ContainerCreating"):
                detail = f"{waiting.reason} {waiting.message or ''}".strip()
                return f"pod {name} container {status.name}: {detail}"
        # The first container that is not ready says why (a pod may have several).
        unready = [s.name for s in pod.status.container_statuses or [] if not s.ready]
        container = unready[0] if unready else None
        try:
            last = core.read_namespaced_pod_log(
                name, namespace, container=container, tail_lines=1
            ).strip()
        except client.ApiException:
            last = ""
        where = f"pod {name}" + (f" container {container}" if container else "")
        return f"{where} is {pod.status.phase}" + (f"; last log line: {last}" if last else "")
    return "replicas not Ready"


def first_order(base_url: str, *, timeout: float) -> str:
    """Places one flash-sale order through the ingress, retrying until it is acknowledged."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        ack, failure = place_order(base_url, attempts=1, timeout=10)
        if ack is not None:
            return ack.order_id
        last = failure or ""
        time.sleep(2)
    raise DeployFailed(
        f"no order was acknowledged through {base_url} within {timeout:.0f} s: {last}"
    )


def wait_order_recorded(
    access: ClusterAccess, topo: Topology, order_id: str, *, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    safe = order_id.replace("'", "")
    sql = (
        f"SELECT (SELECT COUNT(*) FROM orders WHERE id='{safe}'), "  # noqa: S608 - quoted id
        f"(SELECT COUNT(*) FROM notifications WHERE order_id='{safe}')"
    )
    counts = ["0", "0"]
    while time.monotonic() < deadline:
        rows = query(access, topo.namespace, sql)
        counts = rows[0] if rows else ["0", "0"]
        if counts == ["1", "1"]:
            return
        time.sleep(1)
    raise DeployFailed(
        f"order {order_id}: {counts[0]} row(s) in orders, {counts[1]} notification(s) "
        f"after {timeout:.0f} s (want 1 and 1)"
    )
