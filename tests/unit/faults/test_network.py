"""Network faults on pods: arguments checked before anything runs, victims and peers chosen
from what the API lists (fakes here), and the order each victim's node gets."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from chaoskit.faults import network as net
from chaoskit.faults import registry
from chaoskit.faults.base import FaultEnv, Victim
from chaoskit.faults.errors import FaultFailed, InvalidParam
from chaoskit.faults.runner import victim_rng
from tests.unit.test_cli import run_cli

REPO = Path(__file__).resolve().parents[3]
PODS = {"namespace": "shop", "selector": "app.kubernetes.io/name=order"}


def pod(
    name: str,
    ip: str = "10.244.1.5",
    *,
    node: str = "w1",
    host_network: bool = False,
    ips: tuple[str, ...] = (),
) -> Any:
    return SimpleNamespace(
        metadata=SimpleNamespace(
            name=name,
            namespace="shop",
            uid=f"uid-{name}",
            owner_references=[SimpleNamespace(uid="rs-1")],
            deletion_timestamp=None,
        ),
        spec=SimpleNamespace(node_name=node, host_network=host_network),
        status=SimpleNamespace(
            phase="Running", pod_ip=ip, pod_ips=[SimpleNamespace(ip=i) for i in ips]
        ),
    )


@pytest.mark.parametrize(
    ("fault", "arguments", "field", "reason"),
    [
        ("network-partition", {}, "peer_selector", "a partition needs peers"),
        ("network-partition", {"peer_cidrs": "10.0.0.0/33"}, "peer_cidrs[0]", "not an IP"),
        ("network-partition", {"peer_cidrs": "fd00::/64"}, "peer_cidrs[0]", "only IPv4"),
        ("network-partition", {"peer_selector": "app in ("}, "peer_selector", "missing ')'"),
        (
            "network-partition",
            {"peer_namespace": "kube-system", "peer_cidrs": "10.0.0.1"},
            "peer_namespace",
            "needs peer_selector",
        ),
        (
            "network-partition",
            {"peer_api_server": True, "direction": "sideways"},
            "direction",
            "must be one of both, ingress, egress",
        ),
        ("network-loss", {}, "loss", "is required"),
        ("network-loss", {"loss": 0}, "loss", "more than 0 and at most 100, not 0"),
        ("network-loss", {"loss": 130}, "loss", "more than 0 and at most 100, not 130"),
        ("network-loss", {"loss": 30, "count": 1, "percent": 50}, "percent", "not both"),
        ("network-bandwidth", {"rate": "fast"}, "rate", "'fast' is not a tc rate"),
        ("network-bandwidth", {"rate": "1mbit", "burst": "lots"}, "burst", "not a tc size"),
        ("network-delay", {"delay_ms": 0}, "delay_ms", "must be more than 0"),
        ("dns-outage", {"duration": -5}, "duration", "must be more than 0 seconds"),
    ],
)
def test_bad_arguments_name_the_field_and_the_reason(
    fault: str, arguments: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(InvalidParam) as caught:
        registry.build(fault, {**PODS, **arguments})
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_good_arguments_from_strings() -> None:
    fault = registry.build(
        "network-partition",
        {**PODS, "peer_cidrs": "10.96.0.1, 172.18.0.0/16", "direction": "egress", "duration": "20"},
    )
    assert fault.params.peer_cidrs == ("10.96.0.1", "172.18.0.0/16")
    assert fault.params.duration == 20.0 and fault.holds
    assert registry.build("network-loss", {**PODS, "loss": "12.5"}).params.loss == 12.5


def test_a_bad_argument_in_an_experiment_exits_2_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    text = (REPO / "experiments" / "network-loss.yaml").read_text()
    path.write_text(text.replace('loss: "${loss}"', "loss: 0"))
    code, _, err = run_cli("validate", str(path))
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "loss: must be more than 0 and at most 100" in lines[0]


def test_victims_are_seeded_and_never_on_the_hosts_network() -> None:
    fault = registry.build("dns-outage", {**PODS, "count": 2})
    pods = [pod("order-a"), pod("order-b"), pod("order-c"), pod("agent", host_network=True)]
    picks = {
        tuple(
            v.name for v in net.network_victims(fault, fault.params, pods, victim_rng("7", "x", 1))
        )
        for _ in range(3)
    }
    assert len(picks) == 1  # the same seed, the same victims
    for seed in range(20):
        victims = net.network_victims(fault, fault.params, pods, victim_rng(str(seed), "x", 1))
        assert "agent" not in {v.name for v in victims}
    single = registry.build("dns-outage", PODS)
    (victim,) = net.network_victims(
        single, single.params, [pod("order-a")], victim_rng("1", "x", 1)
    )
    assert victim == Victim(
        kind="pod", name="order-a", node="w1", namespace="shop", uid="uid-order-a", owner_uid="rs-1"
    )


def test_only_host_network_matches_fail_naming_them() -> None:
    fault = registry.build("dns-outage", PODS)
    with pytest.raises(FaultFailed, match=r"every match \(proxy\) uses its node's network"):
        net.network_victims(
            fault, fault.params, [pod("proxy", host_network=True)], victim_rng("1", "x", 1)
        )


def test_the_blast_radius_limits_network_victims() -> None:
    fault = registry.build("network-loss", {**PODS, "loss": 5, "percent": 100, "max_victims": 1})
    with pytest.raises(InvalidParam, match="exceed the blast-radius limit of 1"):
        net.network_victims(fault, fault.params, [pod("a"), pod("b")], victim_rng("1", "x", 1))


def test_peer_ips_skip_the_victim_and_keep_ipv4_only() -> None:
    pods = [
        pod("pay-a", "10.244.1.7"),
        pod("order-a", "10.244.1.5"),
        pod("pay-b", "fd00::9", ips=("fd00::9", "10.244.2.9")),
    ]
    assert net.pod_ips(pods, skip_uid="uid-order-a") == ["10.244.1.7", "10.244.2.9"]


def test_api_server_peers_are_the_control_planes_and_the_service_ip() -> None:
    def node(*addresses: tuple[str, str]) -> Any:
        return SimpleNamespace(
            status=SimpleNamespace(
                addresses=[SimpleNamespace(type=t, address=a) for t, a in addresses]
            )
        )

    nodes = [
        node(("InternalIP", "172.18.0.2"), ("Hostname", "cp1")),
        node(("InternalIP", "172.18.0.3"), ("InternalIP", "fc00::3")),
    ]
    service = SimpleNamespace(spec=SimpleNamespace(cluster_ip="10.96.0.1"))
    assert net.api_server_ips(nodes, service) == ["172.18.0.2", "172.18.0.3", "10.96.0.1"]


class FakeAgents:
    def __init__(self) -> None:
        self.holds: list[dict[str, Any]] = []

    def hold(self, node: str, fault: str, params: dict[str, str], **kw: Any) -> dict[str, str]:
        self.holds.append({"node": node, "fault": fault, "params": params, **kw})
        return {"pod": "shop/order-a", "rules": "2"}


def fake_env(pods_by_selector: dict[str, list[Any]]) -> tuple[FaultEnv, FakeAgents]:
    agents = FakeAgents()

    def list_namespaced_pod(namespace: str, label_selector: str, **kw: Any) -> Any:
        return SimpleNamespace(items=pods_by_selector[f"{namespace}/{label_selector}"])

    def list_node(label_selector: str, **kw: Any) -> Any:
        assert label_selector == "node-role.kubernetes.io/control-plane"
        address = SimpleNamespace(type="InternalIP", address="172.18.0.2")
        return SimpleNamespace(items=[SimpleNamespace(status=SimpleNamespace(addresses=[address]))])

    def read_namespaced_service(name: str, namespace: str, **kw: Any) -> Any:
        assert (name, namespace) == ("kubernetes", "default")
        return SimpleNamespace(spec=SimpleNamespace(cluster_ip="10.96.0.1"))

    core = SimpleNamespace(
        list_namespaced_pod=list_namespaced_pod,
        list_node=list_node,
        read_namespaced_service=read_namespaced_service,
    )
    env = SimpleNamespace(core=lambda: core, agents=lambda: agents)
    return cast(FaultEnv, env), agents


VICTIM = Victim(kind="pod", name="order-a", node="w2", namespace="shop", uid="uid-order-a")


def test_a_partition_orders_the_victims_node_with_the_peers_ips_now() -> None:
    env, agents = fake_env(
        {"shop/app=pay": [pod("pay-a", "10.244.1.7"), pod("order-a", "10.244.1.5")]}
    )
    fault = registry.build(
        "network-partition",
        {
            **PODS,
            "peer_selector": "app=pay",
            "peer_cidrs": "192.168.0.0/24",
            "peer_api_server": True,
            "direction": "egress",
            "duration": 20,
        },
    )
    recorded: list[object] = []

    def record(undo: object) -> None:
        recorded.append(undo)

    details = fault.inject(env, VICTIM, record)  # type: ignore[arg-type]
    (hold,) = agents.holds
    assert (hold["node"], hold["fault"], hold["duration"]) == ("w2", "net-partition", 20.0)
    assert hold["params"] == {
        "pod_uid": "uid-order-a",
        "namespace": "shop",
        "pod": "order-a",
        "peers": "192.168.0.0/24,10.244.1.7,172.18.0.2,10.96.0.1",
        "direction": "egress",
    }
    assert hold["record"] is record
    assert details["victim"] == "pod shop/order-a on w2"
    assert details["peers"] == "192.168.0.0/24,10.244.1.7,172.18.0.2,10.96.0.1"


def test_a_peer_selector_that_matches_only_the_victim_fails() -> None:
    env, _ = fake_env({"shop/app=order": [pod("order-a")]})
    fault = registry.build("network-partition", {**PODS, "peer_selector": "app=order"})
    with pytest.raises(FaultFailed, match="matches no running pod with an IPv4 address"):
        fault.inject(env, VICTIM, lambda undo: None)  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize(
    ("fault", "arguments", "agent_fault", "order"),
    [
        ("network-loss", {"loss": 30}, "net-loss", {"percent": "30", "direction": "egress"}),
        (
            "network-loss",
            {"loss": 12.5, "peer_cidrs": "10.0.0.0/8", "direction": "both"},
            "net-loss",
            {"percent": "12.5", "direction": "both", "peers": "10.0.0.0/8"},
        ),
        (
            "network-bandwidth",
            {"rate": "1mbit"},
            "net-bandwidth",
            {"rate": "1mbit", "burst": "32kbit"},
        ),
        ("dns-outage", {}, "dns-outage", {}),
        (
            "network-delay",
            {"delay_ms": 100, "jitter_ms": 10},
            "net-delay",
            {"delay_ms": "100", "jitter_ms": "10"},
        ),
    ],
)
def test_each_fault_orders_its_agent_fault(
    fault: str, arguments: dict[str, Any], agent_fault: str, order: dict[str, str]
) -> None:
    env, agents = fake_env({})
    registry.build(fault, {**PODS, **arguments}).inject(env, VICTIM, lambda undo: None)  # type: ignore[arg-type,return-value]
    (hold,) = agents.holds
    assert hold["fault"] == agent_fault
    assert hold["params"] == {
        "pod_uid": "uid-order-a",
        "namespace": "shop",
        "pod": "order-a",
        **order,
    }
    assert hold["duration"] is None  # held until rollback


def test_every_agent_fault_ordered_exists_in_the_agent() -> None:
    from chaoskit.agent.nodeagent.host import FAULTS  # noqa: PLC0415 - registered by network

    for cls in registry.faults():
        if issubclass(cls, net.NetworkFault):
            assert cls.agent_fault in FAULTS and cls.holds
