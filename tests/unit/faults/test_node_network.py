"""The node network faults' parameters and peers, without a cluster."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from chaoskit.faults.errors import InvalidParam
from chaoskit.faults.network import (
    NodeLossParams,
    NodePartitionParams,
    endpoint_host,
    node_peer_ips,
)

CP = "node-role.kubernetes.io/control-plane"


def node(name: str, ip: str, *, control_plane: bool = False) -> Any:
    return SimpleNamespace(
        metadata=SimpleNamespace(name=name, labels={CP: ""} if control_plane else {}),
        status=SimpleNamespace(addresses=[SimpleNamespace(type="InternalIP", address=ip)]),
    )


NODES = [
    node("cp1", "172.18.0.5", control_plane=True),
    node("cp2", "172.18.0.3", control_plane=True),
    node("cp3", "172.18.0.7", control_plane=True),
    node("w1", "172.18.0.6"),
    node("w2", "172.18.0.4"),
]


def test_peers_by_role_are_the_other_nodes_of_that_role() -> None:
    params = NodePartitionParams(peer_role="control-plane")
    assert node_peer_ips(NODES, params, victim="cp1") == ["172.18.0.3", "172.18.0.7"]
    params = NodePartitionParams(peer_role="any", peer_nodes=("w2",))
    assert "172.18.0.6" not in node_peer_ips(NODES, params, victim="w1")
    params = NodePartitionParams(peer_nodes=("w2",))
    assert node_peer_ips(NODES, params, victim="w1") == ["172.18.0.4"]


def test_an_unknown_peer_node_is_named() -> None:
    with pytest.raises(InvalidParam, match="no node named 'w9'"):
        node_peer_ips(NODES, NodePartitionParams(peer_nodes=("w9",)), victim="w1")


def test_a_partition_needs_peers_and_a_loss_a_share() -> None:
    with pytest.raises(InvalidParam, match="a partition needs peers"):
        NodePartitionParams().check()
    with pytest.raises(InvalidParam, match="loopback is never cut"):
        NodePartitionParams(peer_cidrs=("127.0.0.1",)).check()
    with pytest.raises(InvalidParam, match="at most 100"):
        NodeLossParams(loss=120).check()
    NodeLossParams(loss=30).check()  # peers are optional for a loss


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("controlPlaneEndpoint: kind-external-load-balancer:6443\n", "kind-external-load-balancer"),
        ("apiServer: {}\ncontrolPlaneEndpoint: 10.0.0.10:6443\n", "10.0.0.10"),
        ('controlPlaneEndpoint: "lb.example:443"\n', "lb.example"),
        ("controlPlaneEndpoint: lb\n", "lb"),
        ("clusterName: kind\n", ""),
    ],
)
def test_the_control_plane_endpoint_host_is_read_from_kubeadms_configuration(
    text: str, host: str
) -> None:
    assert endpoint_host(text) == host
