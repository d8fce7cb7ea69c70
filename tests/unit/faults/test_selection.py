"""Victim choice: seeded, reproducible, within the blast radius, loud when nothing matches."""

from __future__ import annotations

import random
from typing import Any, cast

import pytest

from chaoskit.faults import base
from chaoskit.faults.base import FaultEnv, NodeChoice, choose
from chaoskit.faults.components import spare_port_node
from chaoskit.faults.errors import FaultFailed, InvalidParam
from chaoskit.faults.nodes import NodeContainer, publishes_topology_ports
from chaoskit.faults.runner import victim_rng

PODS = [f"web-{c}" for c in "abcdefghij"]


def pick(seed: str, candidates: list[str], **kw: object) -> list[str]:
    options: dict[str, object] = {"count": None, "percent": None, "max_victims": None, **kw}
    return choose(
        candidates,
        key=lambda p: p,
        rng=victim_rng(seed, "pod-kill", 1),
        what="pod-kill: selector 'app=web'",
        **options,  # type: ignore[arg-type]
    )


def test_the_same_seed_picks_the_same_victims_whatever_the_listing_order() -> None:
    shuffled = PODS[:]
    random.Random(1).shuffle(shuffled)
    assert pick("42", PODS, count=3) == pick("42", shuffled, count=3)


def test_another_seed_picks_differently_at_least_once() -> None:
    picks = {tuple(pick(str(seed), PODS, count=2)) for seed in range(10)}
    assert len(picks) > 1


def test_each_injection_of_a_run_has_its_own_draw() -> None:
    first = choose(
        PODS,
        key=str,
        rng=victim_rng("7", "pod-kill", 1),
        count=3,
        percent=None,
        max_victims=None,
        what="x",
    )
    again = choose(
        PODS,
        key=str,
        rng=victim_rng("7", "pod-kill", 1),
        count=3,
        percent=None,
        max_victims=None,
        what="x",
    )
    assert first == again


def test_default_is_one_victim_and_percent_rounds_up() -> None:
    assert len(pick("1", PODS)) == 1
    assert len(pick("1", PODS, percent=25)) == 3  # 2.5 -> 3
    assert len(pick("1", PODS, percent=100)) == 10


def test_a_selector_that_matches_nothing_fails_clearly() -> None:
    with pytest.raises(FaultFailed, match="selector 'app=web' matches nothing"):
        pick("1", [])


def test_more_victims_than_candidates_fails_naming_them() -> None:
    with pytest.raises(FaultFailed, match="3 victims asked for, only 2: web-a, web-b"):
        pick("1", ["web-b", "web-a"], count=3)


def test_blast_radius_limit_refuses_and_names_the_argument() -> None:
    with pytest.raises(InvalidParam) as e:
        pick("1", PODS, count=4, max_victims=2)
    assert e.value.field == "max_victims"
    assert "exceed the blast-radius limit of 2" in e.value.reason


# --------------------------------------------------------------------------- nodes

NODES = [
    NodeContainer("kind-control-plane", "control-plane", "running", True),
    NodeContainer("kind-worker", "worker", "running", False),
    NodeContainer("kind-worker2", "worker", "running", False),
]


class _Env:
    def inventory(self) -> list[NodeContainer]:
        return NODES


def pick_nodes(
    monkeypatch: pytest.MonkeyPatch, running_pods: dict[str, set[str]], **params: Any
) -> list[str]:
    """Nodes chosen with ``running_pods``: NAMESPACE/SELECTOR -> nodes running a match."""
    monkeypatch.setattr(
        base, "_nodes_holding", lambda env, spec, field_name="holding": running_pods[spec]
    )
    env = cast(FaultEnv, _Env())
    chosen = base.choose_nodes(
        env,
        NodeChoice(**params),
        victim_rng("1", "node-kill", 1),
        max_victims=None,
        what="node-kill",
    )
    return [v.name for v in chosen]


def test_node_faults_spare_the_nodes_of_matching_pods(monkeypatch: pytest.MonkeyPatch) -> None:
    db = "shop/app.kubernetes.io/name=mysql"
    for seed_nodes in ({"kind-worker"}, {"kind-worker2"}):
        spared = pick_nodes(monkeypatch, {db: seed_nodes}, sparing=db)
        assert spared == sorted({"kind-worker", "kind-worker2"} - seed_nodes)


def test_sparing_every_candidate_fails_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    db = "shop/app.kubernetes.io/name=mysql"
    with pytest.raises(FaultFailed, match=r"every candidate node \(kind-worker, kind-worker2\)"):
        pick_nodes(monkeypatch, {db: {"kind-worker", "kind-worker2"}}, sparing=db)


def test_holding_and_sparing_combine(monkeypatch: pytest.MonkeyPatch) -> None:
    web, db = "shop/app=web", "shop/app=db"
    pods = {web: {"kind-worker", "kind-worker2"}, db: {"kind-worker2"}}
    assert pick_nodes(monkeypatch, pods, holding=web, sparing=db) == ["kind-worker"]


def test_the_port_publishing_node_is_told_apart_from_the_api_servers() -> None:
    control_plane = "127.0.0.1:33733->6443/tcp, 127.0.0.1:38197->30080/tcp"
    assert publishes_topology_ports(control_plane)
    assert publishes_topology_ports("127.0.0.1:38197->30080/tcp")
    # every control plane of a 3-member cluster publishes its API server: not the ingress
    assert not publishes_topology_ports("127.0.0.1:45811->6443/tcp")
    assert not publishes_topology_ports("")  # a worker, or a stopped node


def test_holds_on_control_planes_spare_the_port_node_when_the_others_suffice() -> None:
    planes = [
        NodeContainer("cp1", "control-plane", "running", publishes_ports=True),
        NodeContainer("cp2", "control-plane", "running", publishes_ports=False),
        NodeContainer("cp3", "control-plane", "running", publishes_ports=False),
    ]
    assert [c.name for c in spare_port_node(planes, 2, None)] == ["cp2", "cp3"]
    assert [c.name for c in spare_port_node(planes, None, None)] == ["cp2", "cp3"]
    assert spare_port_node(planes, 3, None) == planes
    assert spare_port_node(planes, None, 100) == planes
    assert spare_port_node(planes[:1], 1, None) == planes[:1]
