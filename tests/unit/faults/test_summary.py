"""What `chaoskit run` prints about a run's results and failures."""

from __future__ import annotations

from chaoskit.ctk.summary import failures, lines, reason


def test_exception_prefixes_are_dropped_from_reasons() -> None:
    assert (
        reason("chaoslib.exceptions.ActivityFailed: chaoskit.faults.errors.FaultFailed: x: y")
        == "x: y"
    )
    assert reason("allow_quorum_loss: loses quorum") == "allow_quorum_loss: loses quorum"


def test_failures_name_the_activity_and_the_reason() -> None:
    journal = {
        "run": [
            {
                "activity": {"name": "delete-pods"},
                "status": "failed",
                "exception": ["Traceback", "chaoslib.exceptions.ActivityFailed: no victim\n"],
            },
            {"activity": {"name": "other"}, "status": "succeeded"},
        ],
        "steady_states": {
            "after": {
                "probes": [
                    {
                        "activity": {"name": "desired-state-holds"},
                        "status": "failed",
                        "exception": [
                            "x.DesiredStateNotReached: deployment/web: 2 of 3 replicas Ready"
                        ],
                    },
                ]
            }
        },
    }
    assert failures(journal) == [
        "delete-pods: no victim",
        "desired-state-holds: deployment/web: 2 of 3 replicas Ready",
    ]


def test_lines_show_victims_component_times_and_verdicts() -> None:
    result = {
        "cluster": "lab",
        "namespaces": ["shop"],
        "seed": "7",
        "injections": [
            {
                "fault": "pod-kill",
                "victims": [{"kind": "pod", "name": "web-a", "node": "w1"}],
                "details": [{"victim": "pod shop/web-a"}],
            }
        ],
        "recovery": [
            {
                "pods": [
                    {
                        "pod": "pod/shop/web-a",
                        "replacement": "pod/shop/web-b",
                        "total": 1.5,
                        "phases": {
                            "controller_manager": 0.1,
                            "scheduler": 0.2,
                            "kubelet": 1.1,
                            "endpoints": 0.1,
                        },
                    }
                ],
                "nodes": [{"node": "w1", "not_ready": None}],
                "recovered_after_s": 1.5,
            }
        ],
        "verdicts": [
            {"name": "before", "ok": True},
            {"name": "after", "ok": False, "problems": ["deployment/web: missing"]},
        ],
    }
    text = "\n".join(lines(result))
    assert "pod-kill: pod web-a on w1" in text
    assert "controller-manager 0.10s, scheduler 0.20s, kubelet 1.10s, endpoints 0.10s" in text
    assert "node w1: stayed Ready" in text
    assert "oracle (after): 1 problem(s)\n  - deployment/web: missing" in text
