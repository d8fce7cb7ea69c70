"""Waiting until a fault's effect shows in the API, so that nothing is judged too early.

A killed process is dead at once, but the API learns it only when kubelet reports it
(about a second later); a restarted node looks healthy until its kubelet is back. A fault
confirms its effect here (polling the API briefly, a few reads a second, within a
deadline) before it counts as effective. These waits confirm the fault, they measure
nothing: the timeline's watch events do that.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from urllib3.exceptions import HTTPError

if TYPE_CHECKING:
    from kubernetes import client

logger = logging.getLogger(__name__)

POLL = 0.25
CONFIRM_TIMEOUT = 60.0


def _poll(check: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until ``check`` held, or None at the deadline (API errors count as not yet)."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - heavy: only when acting

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return round(time.monotonic() - started, 2)
        except (ApiException, HTTPError, OSError) as e:
            logger.debug("waiting for a fault's effect: %s", e)
        time.sleep(POLL)
    return None


def restart_count(pod: Any, container: str) -> int:
    for status in pod.status.container_statuses or []:
        if status.name == container:
            return int(status.restart_count or 0)
    return 0


def pod_on_node(core: client.CoreV1Api, namespace: str, node: str, container: str) -> Any | None:
    """The pod on ``node`` in ``namespace`` that has a container named ``container``."""
    pods = core.list_namespaced_pod(
        namespace, field_selector=f"spec.nodeName={node}", _request_timeout=10
    ).items
    for pod in pods:
        if any(c.name == container for c in pod.spec.containers):
            return pod
    return None


def wait_restart_seen(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    container: str,
    before: int,
    *,
    timeout: float = CONFIRM_TIMEOUT,
) -> float | None:
    """Seconds until the API shows ``container`` of pod ``name`` restarted (or gone)."""

    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - heavy: only when acting

    def restarted() -> bool:
        try:
            pod = core.read_namespaced_pod(name, namespace, _request_timeout=5)
        except ApiException as e:
            if e.status == 404:
                return True
            raise
        return restart_count(pod, container) > before

    return _poll(restarted, timeout)


def wait_node_pods_restarted(
    core: client.CoreV1Api, node: str, since: float, *, timeout: float = 120.0
) -> float | None:
    """Seconds until every pod on ``node`` reports containers started after ``since``."""

    def all_restarted() -> bool:
        pods = core.list_pod_for_all_namespaces(
            field_selector=f"spec.nodeName={node}", _request_timeout=10
        ).items
        for pod in pods:
            if pod.metadata.deletion_timestamp is not None or pod.status.phase in (
                "Succeeded",
                "Failed",
            ):
                continue
            for status in pod.status.container_statuses or []:
                running = status.state.running if status.state else None
                started: datetime | None = running.started_at if running else None
                if started is None or started.timestamp() < since - 1:
                    return False
        return True

    return _poll(all_restarted, timeout)
