"""Replicas piled onto one node by an earlier fault are spread again before a suite's next
trial (chaoskit.topology.spread), on the real cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chaoskit.topology import spread
from tests.e2e.harness import Cluster
from tests.e2e.workloads import ready_pods, wait_for, web_deployment

LABELS = {"app": "piled"}
SELECTOR = "app=piled"


def _cordon(cluster: Cluster, nodes: list[str], cordoned: bool) -> None:
    for node in nodes:
        cluster.core.patch_node(node, {"spec": {"unschedulable": cordoned}})


@pytest.fixture
def workers(cluster: Cluster) -> Iterator[tuple[str, list[str]]]:
    """(one worker, the others); the others are uncordoned again whatever the test did."""
    schedulable = sorted(spread.schedulable_nodes(cluster.api))
    if len(schedulable) < 2:
        pytest.skip("needs two schedulable workers (kind-config.yaml)")
    keep, *others = schedulable
    try:
        yield keep, others
    finally:
        _cordon(cluster, others, False)


def test_replicas_piled_onto_one_node_are_spread_again(
    cluster: Cluster, namespace: str, probe_loaded: None, workers: tuple[str, list[str]]
) -> None:
    keep, others = workers
    _cordon(cluster, others, True)  # as if they had been lost while the pods were placed
    cluster.apps.create_namespaced_deployment(namespace, web_deployment("piled", 2, LABELS))
    wait_for("2 Ready pods", lambda: len(ready_pods(cluster.core, namespace, SELECTOR)) == 2, 120)
    assert {p.spec.node_name for p in ready_pods(cluster.core, namespace, SELECTOR)} == {keep}
    assert spread.piled_up(cluster.api, namespace) == []  # nowhere else to go yet

    _cordon(cluster, others, False)  # back, and Kubernetes moves nothing by itself
    # (the node controller lifts the cordon's taint a moment later)
    (pile,) = wait_for("the pile seen", lambda: spread.piled_up(cluster.api, namespace), 30)
    assert (pile.name, pile.node, len(pile.pods)) == ("piled", keep, 2)

    assert [p.name for p in spread.respread(cluster.api, namespace)] == ["piled"]

    pods = ready_pods(cluster.core, namespace, SELECTOR)
    assert len(pods) == 2 and len({p.spec.node_name for p in pods}) == 2
    assert pile.pods[0] in {p.metadata.name for p in pods}  # the older pod stayed
    assert spread.piled_up(cluster.api, namespace) == []
