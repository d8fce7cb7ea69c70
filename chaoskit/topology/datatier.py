"""The replicated data tier of the ``ecommerce-ha`` topology, as faults and tests see it.

Which Galera member takes writes (the pod its writer elector labelled), which Kafka node
leads the controller quorum (asked of the quorum itself), and a label on that Kafka pod so
that a fault can pick it, or the node under it, with a plain label selector.
"""

from __future__ import annotations

import re
from typing import Any

from kubernetes import client
from kubernetes.stream import stream

from chaoskit.errors import OperationFailed

GALERA_SELECTOR = "app.kubernetes.io/name=mysql"
GALERA_ROLE_LABEL = "chaoskit.io/galera-role"
GALERA_WRITER_SELECTOR = f"{GALERA_SELECTOR},{GALERA_ROLE_LABEL}=writer"
KAFKA_SELECTOR = "app.kubernetes.io/name=kafka"
KAFKA_ROLE_LABEL = "chaoskit.io/kafka-role"
KAFKA_LEADER_ROLE = "controller-leader"
KAFKA_LEADER_SELECTOR = f"{KAFKA_SELECTOR},{KAFKA_ROLE_LABEL}={KAFKA_LEADER_ROLE}"


class DataTierError(OperationFailed):
    """The data tier does not look as a fault or a check needs it to."""


def _running(api: client.ApiClient, namespace: str, selector: str) -> list[Any]:
    pods = client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=selector, _request_timeout=30
    )
    return sorted(
        (
            p
            for p in pods.items
            if p.metadata.deletion_timestamp is None and p.status.phase == "Running"
        ),
        key=lambda p: p.metadata.name,
    )


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def galera_writer(api: client.ApiClient, namespace: str) -> Any | None:
    """The Galera member labelled writer (the lowest name if, for a moment, two are)."""
    writers = _running(api, namespace, GALERA_WRITER_SELECTOR)
    return writers[0] if writers else None


def exec_output(
    api: client.ApiClient, namespace: str, pod: str, container: str, argv: list[str]
) -> str:
    """What ``argv`` prints inside a container (stdout and stderr together)."""
    output: str = stream(
        client.CoreV1Api(api).connect_get_namespaced_pod_exec,
        pod,
        namespace,
        container=container,
        command=argv,
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _request_timeout=90,
    )
    return output


LEADER_LINE = re.compile(r"^LeaderId:\s*(-?\d+)\s*$", re.MULTILINE)


def parse_leader_id(status: str) -> int | None:
    """LeaderId from ``kafka-metadata-quorum describe --status`` (None: no leader)."""
    match = LEADER_LINE.search(status)
    if match is None:
        return None
    leader = int(match.group(1))
    return leader if leader >= 0 else None


def kafka_controller_leader(api: client.ApiClient, namespace: str) -> str:
    """The pod of the active KRaft controller (node ids are the pods' ordinals)."""
    pods = [p for p in _running(api, namespace, KAFKA_SELECTOR) if _ready(p)]
    if not pods:
        raise DataTierError(f"no Ready Kafka pod ({KAFKA_SELECTOR}) in namespace {namespace!r}")
    status = exec_output(
        api,
        namespace,
        pods[0].metadata.name,
        "kafka",
        [
            "kafka-metadata-quorum",
            "--bootstrap-controller",
            "localhost:9093",
            "describe",
            "--status",
        ],
    )
    leader = parse_leader_id(status)
    if leader is None:
        last = status.strip().splitlines()[-1:] or ["no output"]
        raise DataTierError(f"the Kafka controller quorum names no leader: {last[0]}")
    statefulset = pods[0].metadata.name.rpartition("-")[0]
    return f"{statefulset}-{leader}"


def label_kafka_controller_leader(api: client.ApiClient, namespace: str) -> str:
    """Labels the controller leader's pod ``chaoskit.io/kafka-role=controller-leader`` (and
    no other); returns its name."""
    leader = kafka_controller_leader(api, namespace)
    core = client.CoreV1Api(api)
    for pod in _running(api, namespace, KAFKA_SELECTOR):
        name = pod.metadata.name
        has = (pod.metadata.labels or {}).get(KAFKA_ROLE_LABEL) == KAFKA_LEADER_ROLE
        if (name == leader) != has:
            value = KAFKA_LEADER_ROLE if name == leader else None
            core.patch_namespaced_pod(
                name, namespace, {"metadata": {"labels": {KAFKA_ROLE_LABEL: value}}}
            )
    return leader
