"""The order format and the agent's decisions: what it applies, extends, undoes, reports."""

from __future__ import annotations

import pytest

from chaoskit.agent.nodeagent import orders as o

NOW = 1_800_000_000.0
FAULTS = frozenset({"kubelet-stop", "static-pod-hold"})


def api_object(
    uid: str = "u1", expires: str = "2027-01-15T08:00:30.250Z", phase: str | None = None
) -> dict[str, object]:
    obj = o.order_object("kubelet-stop-1", "w1", "kubelet-stop", {"unit": "kubelet"}, 0)
    obj["metadata"]["uid"] = uid  # type: ignore[index]
    obj["spec"]["expiresAt"] = expires  # type: ignore[index]
    if phase:
        obj["status"] = {"phase": phase}
    return obj


def order(uid: str = "u1", expires_at: float = NOW + 30, phase: str = "Pending") -> o.Order:
    return o.Order("n-" + uid, uid, "w1", "kubelet-stop", {}, expires_at, phase)


def entry(uid: str = "u1", expires_at: float = NOW + 30, **kw: object) -> o.Entry:
    fields: dict[str, object] = {"phase": "Applied", **kw}
    return o.Entry(uid, "n-" + uid, "kubelet-stop", {}, expires_at, **fields)  # type: ignore[arg-type]


def test_time_round_trip_keeps_milliseconds() -> None:
    assert o.format_time(NOW + 0.25) == "2027-01-15T08:00:00.250Z"
    assert o.parse_time("2027-01-15T08:00:00.250Z") == NOW + 0.25
    assert o.parse_time("2027-01-15T09:00:00+01:00") == NOW


def test_parse_order_reads_spec_labels_and_status() -> None:
    parsed = o.parse_order(api_object(phase="Applied"))
    assert (parsed.node, parsed.fault, parsed.params) == ("w1", "kubelet-stop", {"unit": "kubelet"})
    assert parsed.expires_at == NOW + 30.25
    assert parsed.phase == "Applied"
    assert not parsed.terminal
    assert o.parse_order(api_object()).phase == "Pending"


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("expiresAt", "tomorrow", "spec.expiresAt"),
        ("expiresAt", "2027-01-15T08:00:00", "zone"),
        ("node", "", "spec.node"),
        ("params", ["x"], "spec.params"),
    ],
)
def test_bad_orders_name_the_field(field: str, value: object, named: str) -> None:
    obj = api_object()
    obj["spec"][field] = value  # type: ignore[index]
    with pytest.raises(o.OrderInvalid, match=named):
        o.parse_order(obj)


def test_new_order_is_applied_expired_or_unknown_refused() -> None:
    unknown = o.Order("x", "u3", "w1", "moon-landing", {}, NOW + 30)
    steps = o.reconcile({}, [order("u1"), order("u2", NOW - 1), unknown], NOW, FAULTS)
    assert steps[0] == o.Apply(order("u1"))
    assert isinstance(steps[1], o.Refuse) and steps[1].phase == "Expired"
    assert isinstance(steps[2], o.Refuse) and steps[2].phase == "Failed"
    assert "moon-landing" in steps[2].message


def test_terminal_or_applied_orders_without_entry_are_left_alone() -> None:
    remote = [
        order("u1", phase="Undone"),
        order("u2", phase="Failed"),
        order("u3", phase="Applied"),
    ]
    assert o.reconcile({}, remote, NOW, FAULTS) == []


def test_applied_entry_expires_even_when_the_api_does_not_answer() -> None:
    local = {"u1": entry(expires_at=NOW - 0.1)}
    assert o.reconcile(local, None, NOW, FAULTS) == [o.Undo(local["u1"], "expired")]
    assert o.reconcile({"u1": entry()}, None, NOW, FAULTS) == []


def test_renewal_moves_the_local_expiry() -> None:
    local = {"u1": entry(expires_at=NOW - 5)}
    steps = o.reconcile(local, [order(expires_at=NOW + 30, phase="Applied")], NOW, FAULTS)
    assert steps == [o.Extend(local["u1"], NOW + 30)]


def test_an_applied_entry_whose_status_was_not_written_is_reported_again() -> None:
    # The status write failed while the fault took an API server's etcd away.
    local = {"u1": entry()}
    assert o.reconcile(local, [order(phase="Pending")], NOW, FAULTS) == [o.Report(local["u1"])]
    assert o.reconcile(local, [order(phase="Applied")], NOW, FAULTS) == []
    assert o.reconcile(local, None, NOW, FAULTS) == []


def test_release_moves_expiry_to_now_and_undoes() -> None:
    local = {"u1": entry()}
    steps = o.reconcile(local, [order(expires_at=NOW)], NOW, FAULTS)
    assert steps[0] == o.Extend(local["u1"], NOW)
    assert isinstance(steps[1], o.Undo) and steps[1].entry.expires_at == NOW


def test_deleted_order_is_undone_at_once() -> None:
    local = {"u1": entry()}
    assert o.reconcile(local, [], NOW, FAULTS) == [o.Undo(local["u1"], "its order was deleted")]


def test_undone_entry_is_reported_then_forgotten() -> None:
    pending = entry(phase="Undone")
    assert o.reconcile({"u1": pending}, None, NOW, FAULTS) == []
    assert o.reconcile({"u1": pending}, [order(phase="Applied")], NOW, FAULTS) == [
        o.Report(pending)
    ]
    reported = entry(phase="Undone", reported=True)
    assert o.reconcile({"u1": reported}, [order(phase="Undone")], NOW, FAULTS) == [
        o.Forget(reported)
    ]
    assert o.reconcile({"u1": pending}, [], NOW, FAULTS) == [o.Forget(pending)]


def test_recover_undoes_expired_and_reapplies_the_rest() -> None:
    expired, live, done = entry("a", NOW - 1), entry("b", NOW + 10), entry("c", phase="Undone")
    plan = o.recover({"a": expired, "b": live, "c": done}, NOW)
    assert plan.undo == [expired]
    assert plan.reapply == [live]


def test_entry_json_round_trip() -> None:
    e = entry(undo={"manifest": "etcd.yaml"}, message="m", reported=True)
    assert o.Entry.from_json(e.to_json()) == e
    with pytest.raises(o.OrderInvalid, match="phase"):
        o.Entry.from_json({**e.to_json(), "phase": "Gone"})
