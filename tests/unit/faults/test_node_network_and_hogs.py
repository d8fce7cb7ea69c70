"""The node network faults' and the pod hogs' parameters and peers, without a cluster."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from chaoskit.faults.errors import FaultFailed, InvalidParam
from chaoskit.faults.network import (
    NodeLossParams,
    NodePartitionParams,
    endpoint_host,
    node_peer_ips,
)
from chaoskit.faults.resources import (
    CpuHogParams,
    DiskFill,
    DiskFillParams,
    MemoryHogParams,
    storage_limit_mb,
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


def test_hog_amounts_are_checked_before_anything_runs() -> None:
    with pytest.raises(InvalidParam, match="workers"):
        CpuHogParams(namespace="shop", selector="app=x", workers=0).check()
    with pytest.raises(InvalidParam, match="megabytes"):
        MemoryHogParams(namespace="shop", selector="app=x", megabytes=10**6).check()
    MemoryHogParams(namespace="shop", selector="app=x", megabytes=64).check()


def pod_with_limits(*limits: str | None) -> Any:
    containers = [
        SimpleNamespace(
            name=f"c{i}",
            resources=SimpleNamespace(limits={"ephemeral-storage": limit} if limit else {}),
        )
        for i, limit in enumerate(limits)
    ]
    return SimpleNamespace(
        metadata=SimpleNamespace(name="p", namespace="ns"),
        spec=SimpleNamespace(containers=containers),
    )


def test_a_disk_fill_is_sized_from_the_pods_own_limit() -> None:
    assert storage_limit_mb(pod_with_limits("64Mi", "1Gi")) == 64 + 1024
    assert storage_limit_mb(pod_with_limits("64Mi", None)) is None
    fill = DiskFill(DiskFillParams(namespace="ns", selector="app=x"))
    assert fill.megabytes(pod_with_limits("64Mi")) == 64 + 16
    with pytest.raises(FaultFailed, match="has no ephemeral-storage limit"):
        fill.megabytes(pod_with_limits(None))
    over = DiskFill(DiskFillParams(namespace="ns", selector="app=x", megabytes=200))
    with pytest.raises(InvalidParam, match="more than twice the pod's limit"):
        over.megabytes(pod_with_limits("64Mi"))
    with pytest.raises(InvalidParam, match="must be absolute"):
        DiskFillParams(namespace="ns", selector="app=x", path="tmp").check()
