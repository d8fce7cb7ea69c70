"""Timeline events from watch changes, and recovery split by component (no cluster)."""

from __future__ import annotations

from typing import Any

from chaoskit.probes.timeline import (
    Event,
    node_events,
    pod_events,
    pod_recoveries,
    recovery,
    slice_events,
)
from chaoskit.probes.watch import Change


def pod(
    name: str,
    uid: str,
    *,
    node: str = "",
    ready: bool = False,
    running: str = "",
    deleting: bool = False,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": "2026-11-24T10:00:01Z",
            }
        ]
    }
    if running:
        status["containerStatuses"] = [
            {
                "name": "web",
                "containerID": running,
                "restartCount": 0,
                "state": {"running": {"startedAt": "2026-11-24T10:00:00Z"}},
            }
        ]
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "shop",
        "uid": uid,
        "ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "uid": "rs"}],
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-11-24T10:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": status}


def change(
    kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None, at: float = 1.0
) -> Change:
    return Change("Pod", kind, old, new, at, "watch")  # type: ignore[arg-type]


def kinds(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [k for k, _ in events]


def test_pod_lifecycle_transitions() -> None:
    created = pod("web-x", "u2")
    assert kinds(pod_events(change("ADDED", None, created))) == ["pod-created"]
    bound = pod("web-x", "u2", node="w1")
    assert kinds(pod_events(change("MODIFIED", created, bound))) == ["pod-bound"]
    started = pod("web-x", "u2", node="w1", running="c1")
    assert kinds(pod_events(change("MODIFIED", bound, started))) == ["container-started"]
    ready = pod("web-x", "u2", node="w1", running="c1", ready=True)
    events = pod_events(change("MODIFIED", started, ready))
    assert kinds(events) == ["pod-ready"]
    assert events[0][1]["owner_uid"] == "rs"
    assert events[0][1]["server_time"] == "2026-11-24T10:00:01Z"
    restarted = pod("web-x", "u2", node="w1", running="c2", ready=True)
    assert kinds(pod_events(change("MODIFIED", ready, restarted))) == ["container-started"]
    leaving = pod("web-x", "u2", node="w1", running="c2", deleting=True)
    assert kinds(pod_events(change("MODIFIED", restarted, leaving))) == [
        "pod-deleting",
        "pod-not-ready",
    ]
    assert kinds(pod_events(change("DELETED", leaving, None))) == ["pod-deleted"]


def test_endpoint_and_node_transitions() -> None:
    def eps(*names: str) -> dict[str, Any]:
        return {
            "metadata": {
                "name": "web-abc",
                "namespace": "shop",
                "uid": "s",
                "labels": {"kubernetes.io/service-name": "web"},
            },
            "endpoints": [
                {
                    "addresses": [f"10.0.0.{i}"],
                    "conditions": {"ready": True},
                    "targetRef": {"kind": "Pod", "name": n},
                }
                for i, n in enumerate(names)
            ],
        }

    events = slice_events(
        Change("EndpointSlice", "MODIFIED", eps("a", "b"), eps("b", "c"), 1.0, "watch")
    )
    assert [(k, s) for k, s, _ in events] == [
        ("endpoint-ready", "pod/shop/c"),
        ("endpoint-removed", "pod/shop/a"),
    ]

    def node(status: str) -> dict[str, Any]:
        return {
            "metadata": {"name": "w1", "uid": "n"},
            "status": {"conditions": [{"type": "Ready", "status": status}]},
        }

    assert kinds(
        node_events(Change("Node", "MODIFIED", node("True"), node("Unknown"), 1.0, "watch"))
    ) == ["node-not-ready"]
    assert kinds(
        node_events(Change("Node", "MODIFIED", node("Unknown"), node("True"), 1.0, "watch"))
    ) == ["node-ready"]


def ev(at: float, kind: str, subject: str, uid: str = "", **detail: Any) -> Event:
    return Event(
        at, kind, subject, {"uid": uid, "owner_uid": "rs", "owner": "replicaset/web-1", **detail}
    )


def test_recovery_is_split_by_component() -> None:
    t0 = 100.0
    events = [
        ev(99.0, "pod-created", "pod/shop/web-old", "u-old"),  # before the fault: ignored
        ev(100.01, "pod-deleting", "pod/shop/web-a", "u-a", node="w1"),
        ev(100.05, "pod-created", "pod/shop/web-n", "u-n"),
        ev(100.06, "pod-bound", "pod/shop/web-n", "u-n", node="w2"),
        ev(100.90, "container-started", "pod/shop/web-n", "u-n"),
        ev(101.50, "pod-ready", "pod/shop/web-n", "u-n"),
        Event(101.52, "endpoint-ready", "pod/shop/web-n", {"service": "web"}),
        ev(101.60, "pod-deleted", "pod/shop/web-a", "u-a"),
    ]
    (entry,) = pod_recoveries(events, t0, namespaces=["shop"])
    assert entry["replacement"] == "pod/shop/web-n"
    assert entry["replacement_node"] == "w2"
    assert entry["phases"] == {
        "controller_manager": 0.04,
        "scheduler": 0.01,
        "kubelet": 1.44,
        "kubelet_container_start": 0.84,
        "kubelet_readiness": 0.6,
        "endpoints": 0.02,
    }
    assert entry["total"] == 1.52


def test_a_deleted_pod_without_replacement_says_so_and_nodes_are_timed() -> None:
    events = [
        ev(100.2, "pod-deleted", "pod/shop/web-a", "u-a"),
        Event(120.0, "node-not-ready", "node/w1"),
        Event(131.0, "node-ready", "node/w1"),
        Event(105.0, "api-unavailable", "api"),
        Event(107.5, "api-available", "api"),
        Event(106.0, "watch-lost", "api"),
    ]
    injection = {
        "id": "r-1",
        "fault": "node-stop",
        "injected_at": 100.0,
        "rolled_back_at": 130.0,
        "victims": [{"kind": "node", "name": "w1", "node": "w1"}],
    }
    result = recovery(events, injection, namespaces=["shop"])
    assert result["pods"][0]["replacement"] is None
    assert result["nodes"] == [
        {"node": "w1", "not_ready": 20.0, "ready": 31.0, "ready_after_rollback": 1.0}
    ]
    assert result["api_outages"] == [{"from": 5.0, "to": 7.5, "seconds": 2.5}]
    assert result["watch_gaps"] == [{"from": 6.0, "to": None, "seconds": None}]
