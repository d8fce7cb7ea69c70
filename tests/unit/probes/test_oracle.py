"""The desired-state oracle's diff logic, on fake API objects (no cluster)."""

from __future__ import annotations

import copy
from typing import Any

from chaoskit.probes.oracle import Observed, desired_from, diff

NS = "shop"


def meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "uid": f"uid-{name}", **extra}


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "metadata": meta(name),
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
        "status": {"readyReplicas": replicas},
    }


def statefulset(name: str, replicas: int) -> dict[str, Any]:
    return {
        "metadata": meta(name),
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
    }


def pod(
    name: str, app: str, *, ready: bool = True, node: str = "w1", **status: Any
) -> dict[str, Any]:
    return {
        "metadata": meta(name, labels={"app": app}),
        "spec": {"nodeName": node},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            **status,
        },
    }


def service(name: str, app: str) -> dict[str, Any]:
    return {"metadata": meta(name), "spec": {"selector": {"app": app}, "ports": [{"port": 80}]}}


def endpoint_slice(service_name: str, pods: list[str]) -> dict[str, Any]:
    return {
        "metadata": meta(
            f"{service_name}-xyz", labels={"kubernetes.io/service-name": service_name}
        ),
        "endpoints": [
            {
                "addresses": ["10.0.0.1"],
                "conditions": {"ready": True},
                "targetRef": {"kind": "Pod", "name": p},
            }
            for p in pods
        ],
    }


def healthy() -> dict[str, list[dict[str, Any]]]:
    return {
        "Deployment": [deployment("web", 3)],
        "StatefulSet": [statefulset("db", 2)],
        "Service": [service("web", "web")],
        "ConfigMap": [{"metadata": meta("settings"), "data": {"a": "1"}}],
        "Secret": [{"metadata": meta("creds"), "type": "Opaque", "data": {"p": "c2VjcmV0"}}],
        "PodDisruptionBudget": [{"metadata": meta("web"), "spec": {"minAvailable": 2}}],
        "Pod": [
            pod("web-a", "web"),
            pod("web-b", "web"),
            pod("web-c", "web"),
            pod("db-0", "db"),
            pod("db-1", "db"),
        ],
        "EndpointSlice": [endpoint_slice("web", ["web-a", "web-b", "web-c"])],
    }


def test_a_healthy_namespace_has_no_diff() -> None:
    objects = healthy()
    desired = desired_from(Observed(objects), [NS])
    assert {d.ref for d in desired.objects} == {
        "deployment/web",
        "statefulset/db",
        "service/web",
        "configmap/settings",
        "secret/creds",
        "poddisruptionbudget/web",
    }
    assert diff(desired, Observed(objects)) == []


def test_a_deleted_pod_that_is_never_replaced_is_named_with_the_survivors() -> None:
    desired = desired_from(Observed(healthy()), [NS])
    after = healthy()
    after["Pod"] = [p for p in after["Pod"] if p["metadata"]["name"] != "web-b"]
    after["EndpointSlice"] = [endpoint_slice("web", ["web-a", "web-c"])]
    # The Deployment's status still says 3/3: without the controller manager it is stale.
    assert diff(desired, Observed(after)) == [
        "deployment/web: 2 of 3 replicas Ready, 1 pod(s) missing (not re-created) "
        "(Ready: web-a, web-c)"
    ]


def test_a_missing_statefulset_pod_is_named_by_ordinal() -> None:
    desired = desired_from(Observed(healthy()), [NS])
    after = healthy()
    after["Pod"] = [p for p in after["Pod"] if p["metadata"]["name"] != "db-1"]
    problems = diff(desired, Observed(after))
    assert problems == ["statefulset/db: 1 of 2 replicas Ready, pod(s) missing: db-1 (Ready: db-0)"]


def test_unscheduled_and_unready_pods_say_why() -> None:
    desired = desired_from(Observed(healthy()), [NS])
    after = healthy()
    pending = pod("web-c", "web", ready=False, node="")
    pending["spec"] = {}
    pending["status"]["conditions"].append(
        {"type": "PodScheduled", "status": "False", "message": "0/2 nodes are available"}
    )
    crashing = pod(
        "web-b",
        "web",
        ready=False,
        containerStatuses=[
            {"name": "web", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
        ],
    )
    after["Pod"] = [pod("web-a", "web"), crashing, pending, pod("db-0", "db"), pod("db-1", "db")]
    after["EndpointSlice"] = [endpoint_slice("web", ["web-a"])]
    problems = diff(desired, Observed(after))
    assert problems[0] == "deployment/web: 1 of 3 replicas Ready (Ready: web-a)"
    assert "pod/web-b (deployment/web) on w1: container web CrashLoopBackOff" in problems
    assert "pod/web-c (deployment/web): not scheduled: 0/2 nodes are available" in problems


def test_service_endpoints_must_cover_every_ready_pod_and_nothing_gone() -> None:
    desired = desired_from(Observed(healthy()), [NS])
    after = healthy()
    after["EndpointSlice"] = [endpoint_slice("web", ["web-a", "web-b", "web-old"])]
    assert diff(desired, Observed(after)) == [
        "service/web: no ready endpoint for Ready pod(s) web-c",
        "service/web: endpoint(s) for pod(s) that are gone: web-old",
    ]


def test_changed_and_missing_objects_are_named() -> None:
    desired = desired_from(Observed(healthy()), [NS])
    after = copy.deepcopy(healthy())
    after["ConfigMap"][0]["data"] = {"a": "2"}
    after["Secret"] = []
    after["Deployment"][0]["spec"]["template"] = {"metadata": {"annotations": {"x": "y"}}}
    problems = diff(desired, Observed(after))
    assert "configmap/settings: spec differs from the recorded one" in problems
    assert "secret/creds: missing" in problems
    assert "deployment/web: spec differs from the recorded one" in problems


def test_terminating_pods_do_not_count_and_extra_pods_are_reported() -> None:
    desired = desired_from(Observed(healthy()), [NS])
    after = healthy()
    leaving = pod("web-z", "web")
    leaving["metadata"]["deletionTimestamp"] = "2026-11-24T10:00:00Z"
    after["Pod"].append(leaving)
    assert diff(desired, Observed(after)) == []
    after["Pod"].append(pod("web-d", "web"))
    after["EndpointSlice"] = [endpoint_slice("web", ["web-a", "web-b", "web-c", "web-d"])]
    assert diff(desired, Observed(after)) == [
        "deployment/web: 4 pods for 3 replicas: web-a, web-b, web-c, web-d"
    ]


def test_system_checks_nodes_and_static_pods() -> None:
    objects = healthy()
    static = {
        "metadata": {
            "name": "etcd-cp1",
            "namespace": "kube-system",
            "uid": "u-etcd",
            "ownerReferences": [{"kind": "Node", "name": "cp1", "uid": "n"}],
        },
        "spec": {"nodeName": "cp1"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    node = {
        "metadata": {"name": "cp1", "uid": "n"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    objects["Pod"] = [*objects["Pod"], static]
    objects["Node"] = [node]
    desired = desired_from(Observed(objects), [NS], system=True)
    assert diff(desired, Observed(objects)) == []
    down = copy.deepcopy(objects)
    down["Node"][0]["status"]["conditions"][0]["status"] = "Unknown"
    down["Pod"] = [p for p in down["Pod"] if p["metadata"]["name"] != "etcd-cp1"]
    assert diff(desired, Observed(down)) == [
        "node/cp1: NotReady",
        "kube-system: pod/etcd-cp1: missing",
    ]
