"""Which nodes get the topology's images: those that can run its Pods."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, ClassVar, cast

import pytest
from kubernetes import client

from chaoskit.topology import deploy

CONTROL_PLANE = SimpleNamespace(key="node-role.kubernetes.io/control-plane", effect="NoSchedule")
DOWN = SimpleNamespace(key="node.kubernetes.io/unreachable", effect="NoExecute")


def node(name: str, *taints: SimpleNamespace, publishes: bool = False) -> SimpleNamespace:
    labels = {"chaoskit.io/publishes-ports": "true"} if publishes else {}
    return SimpleNamespace(
        metadata=SimpleNamespace(name=name, labels=labels),
        spec=SimpleNamespace(taints=list(taints) or None),
    )


class FakeCore:
    nodes: ClassVar[list[SimpleNamespace]] = []

    def __init__(self, api: object) -> None:
        pass

    def list_node(self, **_: Any) -> SimpleNamespace:
        return SimpleNamespace(items=self.nodes)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> type[FakeCore]:
    FakeCore.nodes = [
        node("cp1", CONTROL_PLANE, publishes=True),
        node("cp2", CONTROL_PLANE),
        node("cp3", CONTROL_PLANE),
        node("w1"),
        node("w2", DOWN),  # a worker that is down now still runs the topology later
    ]
    monkeypatch.setattr(client, "CoreV1Api", FakeCore)
    return FakeCore


def test_only_nodes_that_can_run_the_topology_get_its_images(cluster: type[FakeCore]) -> None:
    api = cast(client.ApiClient, None)
    assert deploy.image_nodes(api) == ["cp1", "w1", "w2"]
    assert deploy.image_nodes(api, every=True) == ["cp1", "cp2", "cp3", "w1", "w2"]


def test_a_cluster_where_nothing_can_run_the_topology_is_an_error(
    cluster: type[FakeCore],
) -> None:
    cluster.nodes = [node("cp1", CONTROL_PLANE)]
    with pytest.raises(deploy.DeployFailed, match="every node is tainted"):
        deploy.image_nodes(cast(client.ApiClient, None))
