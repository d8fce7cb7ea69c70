"""Respreading leaves Deployments alone that are placed on purpose."""

from __future__ import annotations

from kubernetes import client

from chaoskit.topology.spread import _pinned


def deployment(spec: client.V1PodSpec) -> client.V1Deployment:
    return client.V1Deployment(
        spec=client.V1DeploymentSpec(
            selector=client.V1LabelSelector(match_labels={"app": "x"}),
            template=client.V1PodTemplateSpec(spec=spec),
        )
    )


def test_required_node_affinity_or_a_node_selector_pins_a_deployment() -> None:
    term = client.V1NodeSelectorTerm(
        match_expressions=[
            client.V1NodeSelectorRequirement(
                key="chaoskit.io/publishes-ports", operator="In", values=["true"]
            )
        ]
    )
    required = client.V1Affinity(
        node_affinity=client.V1NodeAffinity(
            required_during_scheduling_ignored_during_execution=client.V1NodeSelector(
                node_selector_terms=[term]
            )
        )
    )
    preferred = client.V1Affinity(node_affinity=client.V1NodeAffinity())
    assert _pinned(deployment(client.V1PodSpec(containers=[], affinity=required)))
    assert _pinned(deployment(client.V1PodSpec(containers=[], node_selector={"a": "b"})))
    assert not _pinned(deployment(client.V1PodSpec(containers=[], affinity=preferred)))
    assert not _pinned(deployment(client.V1PodSpec(containers=[])))
