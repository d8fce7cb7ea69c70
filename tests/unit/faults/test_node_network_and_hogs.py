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
    NodeCpuHogParams,
    NodeMemory,
    NodeMemoryParams,
    NodeMemoryPressure,
    node_memory,
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


def test_a_node_cpu_hog_has_one_to_sixteen_workers() -> None:
    NodeCpuHogParams(workers=16).check()
    with pytest.raises(InvalidParam, match="workers: must be 1 to 16, not 0"):
        NodeCpuHogParams(workers=0).check()


def test_node_memory_pressure_amounts_are_checked() -> None:
    NodeMemoryParams().check()
    with pytest.raises(InvalidParam, match="reclaim_mb: must be 1 to"):
        NodeMemoryParams(reclaim_mb=0).check()
    with pytest.raises(InvalidParam, match="headroom_mb: must be 0 to"):
        NodeMemoryParams(headroom_mb=-1).check()


def test_the_threshold_leaves_the_pods_their_requests_and_the_hog_makes_the_rest() -> None:
    # Requests above use: allocatable = requests + headroom; the hog fills it and more.
    memory = NodeMemory(capacity_mb=24000, working_set_mb=800, requests_mb=1500)
    threshold, hog = memory.pressure(reclaim_mb=256, headroom_mb=64)
    assert 24000 - threshold == 1500 + 64
    assert 800 + hog == (24000 - threshold) + 256
    # Use above requests: the room is the use.
    threshold, hog = NodeMemory(24000, 2000, 1500).pressure(256, 64)
    assert (24000 - threshold, hog) == (2064, 64 + 256)


def pod(phase: str, *requests: str) -> Any:
    containers = [
        SimpleNamespace(resources=SimpleNamespace(requests={"memory": r} if r else None))
        for r in requests
    ]
    return SimpleNamespace(
        status=SimpleNamespace(phase=phase), spec=SimpleNamespace(containers=containers)
    )


class _Node:
    def __init__(self, body: bytes, pods: list[Any]) -> None:
        self.body, self.pods = body, pods
        self.hold: dict[str, Any] = {}

    def core(self) -> Any:
        def proxy(node: str, path: str, **kw: Any) -> Any:
            assert (node, path) == ("w1", "stats/summary") and kw["_preload_content"] is False
            return SimpleNamespace(data=self.body)

        def pods(**kw: Any) -> Any:
            assert kw["field_selector"] == "spec.nodeName=w1"
            return SimpleNamespace(items=self.pods)

        return SimpleNamespace(
            connect_get_node_proxy_with_path=proxy, list_pod_for_all_namespaces=pods
        )

    def agents(self) -> Any:
        def hold(node: str, fault: str, params: dict[str, str], **kw: Any) -> dict[str, str]:
            self.hold = {"node": node, "fault": fault, **params}
            return {"order": "o1"}

        return SimpleNamespace(hold=hold)


SUMMARY = b'{"node": {"memory": {"availableBytes": 24326963200, "workingSetBytes": 838860800}}}'


def test_node_memory_pressure_reads_the_kubelets_figures_and_the_pods_requests() -> None:
    pods = [pod("Running", "512Mi", ""), pod("Pending", "1Gi"), pod("Failed", "8Gi")]
    env: Any = _Node(SUMMARY, pods)
    assert node_memory(env, "w1") == NodeMemory(24000, 800, 1536)
    fault = NodeMemoryPressure(NodeMemoryParams(reclaim_mb=256, headroom_mb=64))
    victim: Any = SimpleNamespace(node="w1", label="node w1")
    details = fault.inject(env, victim, record=None)  # type: ignore[arg-type]
    assert env.hold == {"node": "w1", "fault": "node-memory-pressure",
                        "megabytes": str(1536 + 64 - 800 + 256),
                        "threshold_mb": str(24000 - 1536 - 64),
                        "evictions": "1"}  # fmt: skip
    assert details["requests_mb"] == 1536
    with pytest.raises(FaultFailed, match="reports no available memory"):
        node_memory(_Node(b'{"node": {}}', []), "w1")  # type: ignore[arg-type]
    small: Any = _Node(b'{"node": {"memory": {"availableBytes": 1, "workingSetBytes": 1}}}', [])
    with pytest.raises(FaultFailed, match="would be under 128 MiB"):
        fault.inject(small, victim, record=None)  # type: ignore[arg-type]
