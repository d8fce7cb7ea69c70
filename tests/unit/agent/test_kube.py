"""What the agent reads from the API: which pods its node's kubelet evicted."""

from __future__ import annotations

from typing import Any

from chaoskit.agent.nodeagent.kube import Api, evicted


def by_kubelet(phase: str, reason: str | None) -> dict[str, Any]:
    condition = {"type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet"}
    return {"phase": phase, "reason": reason, "conditions": [condition]}


def test_an_evicted_pod_is_known_by_its_reason_or_its_disruption_condition() -> None:
    assert evicted(by_kubelet("Failed", "Evicted"))
    # A process that exits 0 on SIGTERM leaves its evicted pod Succeeded, with no reason.
    assert evicted(by_kubelet("Succeeded", None))
    assert evicted({"phase": "Failed", "reason": "Evicted"})
    assert not evicted({"phase": "Failed", "reason": "OutOfmemory"})
    preempted = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}
    assert not evicted({"phase": "Failed", "conditions": [preempted]})
    assert not evicted({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]})


def test_evicted_pods_lists_the_nodes_pods_of_every_phase() -> None:
    asked: list[str] = []

    class Listing(Api):
        def request(self, method: str, path: str, body: Any = None) -> Any:
            asked.append(path)
            pods = [
                ("u1", "shop/gateway-1", by_kubelet("Succeeded", None)),
                ("u2", "t/besteffort", by_kubelet("Failed", "Evicted")),
                ("u3", "shop/order-1", {"phase": "Running"}),
            ]
            return {
                "items": [
                    {"metadata": {"uid": uid, "namespace": ns, "name": name}, "status": status}
                    for uid, ref, status in pods
                    for ns, name in [ref.split("/")]
                ]
            }

    found = Listing(base_url="https://api.invalid").evicted_pods("w1")
    assert found == {"u1": "shop/gateway-1", "u2": "t/besteffort"}
    assert asked == ["/api/v1/pods?fieldSelector=spec.nodeName%3Dw1"]
