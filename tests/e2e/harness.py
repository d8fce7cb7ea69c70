"""What e2e tests share: the CLI as a user runs it, and the cluster under test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from chaoskit.cluster.access import ClusterAccess
from chaoskit.faults.runner import FaultSession, fault_env
from chaoskit.faults.state import StateFile
from chaoskit.faults.target import resolve_target
from chaoskit.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CLUSTER_NAME = os.environ.get("CHAOSKIT_E2E_CLUSTER", "chaoskit-e2e")
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def delete_namespace(core: client.CoreV1Api, name: str, timeout: float = 180) -> bool:
    """Deletes a namespace (one already gone is fine); whether it was gone within
    ``timeout`` seconds."""
    try:
        core.delete_namespace(name)
    except client.ApiException as e:
        if e.status != 404:
            raise
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespace(name)
        except client.ApiException as e:
            if e.status == 404:
                return True
            raise
        time.sleep(1)
    return False


def chaoskit(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """Runs the real CLI in the repo; its stderr goes to the test log."""
    proc = subprocess.run(
        [sys.executable, "-m", "chaoskit", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    sys.stderr.write(proc.stderr)
    return proc


@dataclass(frozen=True)
class Cluster:
    name: str
    kubeconfig: Path
    api: client.ApiClient

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @staticmethod
    def node_container(node: str) -> str:
        """kind names each node's container after the node."""
        return node

    def _nodes(self, control_plane: bool) -> list[str]:
        return sorted(
            n.metadata.name
            for n in self.core.list_node().items
            if (CONTROL_PLANE_LABEL in (n.metadata.labels or {})) == control_plane
        )

    def workers(self) -> list[str]:
        return self._nodes(control_plane=False)

    def control_planes(self) -> list[str]:
        return self._nodes(control_plane=True)


@dataclass(frozen=True)
class Shop:
    """The deployed e-commerce topology, as the host reaches it."""

    access: ClusterAccess
    ingress: str
    prometheus: str
    namespace: str = "shop"


def pending_changes(cluster: Cluster) -> list[str]:
    """What chaoskit changed on the cluster and has not undone yet (its state file)."""
    state = StateFile.of(Settings.from_env(), cluster.name)
    return [c.undo.description for c in state.pending()]


@contextmanager
def fault_session(cluster: Cluster, namespace: str) -> Iterator[FaultSession]:
    """Faults injected in-process (as ``chaoskit run`` does), on ``namespace``; nothing
    left pending at the end."""
    settings = Settings.from_env()
    target = resolve_target(settings, cluster=cluster.name, namespaces=(namespace,))
    env = fault_env(settings, target, run_id=f"e2e-net-{uuid.uuid4().hex[:8]}")
    faults = FaultSession(env, seed="15", what="e2e network faults")
    try:
        yield faults
    finally:
        faults.close()
    assert pending_changes(cluster) == []
