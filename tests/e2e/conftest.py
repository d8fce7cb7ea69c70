"""The e2e session: one real kind cluster (kind-config.yaml), made with chaoskit's CLI.

The cluster is created once per session through ``chaoskit cluster up`` exactly as a user
runs it, and deleted at the end (``CHAOSKIT_E2E_KEEP=1`` keeps it for a rerun, and an
existing cluster of that name is then reused: one that is not Ready, say in another run's
fault, is waited for up to 5 min before it is remade). Each test works in its own namespace
and leaves the cluster as it found it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from chaoskit.cluster.access import access
from chaoskit.settings import Settings
from chaoskit.topology.catalog import ECOMMERCE
from chaoskit.topology.deploy import endpoints
from tests.e2e.harness import CLUSTER_NAME, Cluster, Shop, chaoskit, delete_namespace
from tests.e2e.workloads import load_probe_image


def _status() -> dict[str, object]:
    proc = chaoskit("cluster", "status", "--name", CLUSTER_NAME, "--json", timeout=120)
    result: dict[str, object] = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return result


KEPT_CLUSTER_WAIT_S = 300.0


def _wait_ready(timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    status = _status()
    while not status.get("ready") and time.monotonic() < deadline:
        time.sleep(5)
        status = _status()
    return status


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    keep = os.environ.get("CHAOSKIT_E2E_KEEP") == "1"
    status = _status() if keep else {}
    if status.get("exists") and not status.get("ready"):
        # A kept cluster that exists but is not Ready may be in the middle of someone's
        # fault (a worker stopped by another run on it): wait for it before remaking it.
        status = _wait_ready(KEPT_CLUSTER_WAIT_S)
    if not status.get("ready"):
        chaoskit("cluster", "down", "--name", CLUSTER_NAME, timeout=300)
        up = chaoskit(
            "cluster", "up", "--name", CLUSTER_NAME, "--config", "kind-config.yaml", timeout=5400
        )
        assert up.returncode == 0, f"chaoskit cluster up failed:\n{up.stdout}\n{up.stderr}"
        status = _status()
    kubeconfig = Path(str(status["kubeconfig"]))
    api = config.new_client_from_config(config_file=str(kubeconfig))
    # The node agent stays installed for the session, as `chaoskit agent install` leaves it
    # (a run that finds it installed leaves it; test_agent.py covers a run that installs it).
    agent = chaoskit("agent", "install", "--cluster", CLUSTER_NAME, timeout=900)
    assert agent.returncode == 0, f"chaoskit agent install failed:\n{agent.stdout}\n{agent.stderr}"
    yield Cluster(CLUSTER_NAME, kubeconfig, api)
    if not keep:
        down = chaoskit("cluster", "down", "--name", CLUSTER_NAME, timeout=300)
        assert down.returncode == 0, down.stderr


SETTLE_TIMEOUT_S = 240.0


@pytest.fixture(scope="module", autouse=True)
def leaves_cluster_settled(cluster: Cluster) -> Iterator[None]:
    """After each module every node and kube-system pod is Ready again (as it was found).

    A fault the module undid may still be settling (a static pod coming back, a kubelet
    re-registering); the next module must not start on a cluster that is not Ready, so
    this waits for it, and fails the module that left it broken if it never settles.
    """
    yield
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    status = _status()
    while not status.get("ready"):
        if time.monotonic() > deadline:
            pytest.fail(
                f"cluster {CLUSTER_NAME} not Ready {SETTLE_TIMEOUT_S:.0f} s after the module: "
                + json.dumps(_not_ready(status))
            )
        time.sleep(2)
        status = _status()


def _not_ready(status: dict[str, object]) -> list[object]:
    nodes = status.get("nodes") or []
    pods = status.get("system_pods") or []
    assert isinstance(nodes, list) and isinstance(pods, list)
    return [item for item in nodes + pods if isinstance(item, dict) and not item.get("ready")]


@pytest.fixture(scope="session")
def probe_loaded(cluster: Cluster) -> None:
    """The probe server image (tests/e2e/workloads.py) is on every node."""
    load_probe_image(cluster.name)


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace of the test's own, labelled, deleted (and waited for) on teardown."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"chaoskit/e2e": "1"}))
    )
    yield name
    if not delete_namespace(cluster.core, name, timeout=180):
        pytest.fail(f"namespace {name} was not deleted within 180 s")


@pytest.fixture(scope="session")
def shop(cluster: Cluster) -> Shop:
    """The e-commerce topology, deployed once per session with ``chaoskit deploy``."""
    proc = chaoskit("deploy", "--name", cluster.name, timeout=3600)
    assert proc.returncode == 0, f"chaoskit deploy failed:\n{proc.stdout}\n{proc.stderr}"
    settings = Settings.from_env()
    cluster_access = access(settings, cluster.name)
    urls = endpoints(cluster_access, ECOMMERCE)
    return Shop(access=cluster_access, ingress=urls.ingress, prometheus=urls.prometheus)
