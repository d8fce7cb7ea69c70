"""Test workloads built from chaoskit's probe image (a tiny HTTP server and client)."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from kubernetes import client
from kubernetes.stream import stream

from chaoskit.images.factory import PROBE_IMAGE, kind_binary
from chaoskit.settings import Settings


def load_probe_image(cluster_name: str) -> None:
    subprocess.run(
        [
            str(kind_binary(Settings.from_env())),
            "load",
            "docker-image",
            PROBE_IMAGE,
            "--name",
            cluster_name,
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )


def probe_server(name: str) -> client.V1Container:
    """The probe image serving HTTP on 8080, Ready once /healthz answers (polled each second)."""
    return client.V1Container(
        name=name,
        image=PROBE_IMAGE,
        image_pull_policy="Never",
        args=["serve"],
        ports=[client.V1ContainerPort(container_port=8080)],
        readiness_probe=client.V1Probe(
            http_get=client.V1HTTPGetAction(path="/healthz", port=8080), period_seconds=1
        ),
    )


def web_deployment(name: str, replicas: int, labels: dict[str, str]) -> client.V1Deployment:
    """probe servers, spread over the workers, quick to notice a lost node."""
    container = probe_server("web")
    spread = client.V1TopologySpreadConstraint(
        max_skew=1,
        topology_key="kubernetes.io/hostname",
        when_unsatisfiable="DoNotSchedule",
        label_selector=client.V1LabelSelector(match_labels=labels),
        # Tainted control-plane nodes are no place for these pods: not a domain to balance.
        node_taints_policy="Honor",
    )
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[container],
                    topology_spread_constraints=[spread],
                    termination_grace_period_seconds=2,
                ),
            ),
        ),
    )


def probe_statefulset(name: str, labels: dict[str, str]) -> client.V1StatefulSet:
    """One probe server with a stable name (``NAME-0``): a StatefulSet's at-most-one pod."""
    container = probe_server("db")
    return client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1StatefulSetSpec(
            replicas=1,
            service_name=name,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=2),
            ),
        ),
    )


def service(name: str, labels: dict[str, str]) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(
            selector=labels,
            ports=[client.V1ServicePort(port=80, target_port=8080)],
        ),
    )


def client_pod(name: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "probe-client"}),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="client",
                    image=PROBE_IMAGE,
                    image_pull_policy="Never",
                    args=["serve"],
                )
            ],
            termination_grace_period_seconds=1,
            # On a control plane: tests stop workers, and the client must outlive that.
            node_selector={"node-role.kubernetes.io/control-plane": ""},
            tolerations=[
                client.V1Toleration(
                    key="node-role.kubernetes.io/control-plane",
                    operator="Exists",
                    effect="NoSchedule",
                )
            ],
        ),
    )


def wait_for(what: str, check: Any, timeout: float, poll: float = 0.5) -> Any:
    """Polls ``check`` until it returns something truthy; fails with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def ready_pods(core: client.CoreV1Api, namespace: str, selector: str) -> list[Any]:
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return [
        p
        for p in pods
        if p.metadata.deletion_timestamp is None
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    ]


def exec_in(
    core: client.CoreV1Api, namespace: str, pod: str, command: list[str], *, check: bool = True
) -> str:
    """Runs ``command`` in ``pod``; returns stdout, raises with stderr on failure if ``check``."""
    resp = stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        command=command,
        stderr=True,
        stdout=True,
        stdin=False,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=120)
    out = resp.read_stdout() if resp.peek_stdout() else ""
    err = resp.read_stderr() if resp.peek_stderr() else ""
    code = resp.returncode
    resp.close()
    if check and code != 0:
        raise AssertionError(f"{command} exited {code}: {err}")
    return str(out)
