"""The fault registry and argument checking: wrong input names what is valid."""

from __future__ import annotations

import inspect

import pytest

from chaoskit.ctk import actions, discover
from chaoskit.faults import registry
from chaoskit.faults.errors import InvalidParam
from chaoskit.faults.params import describe


def test_every_fault_of_the_issue_is_registered() -> None:
    assert set(registry.names()) >= {
        "pod-kill",
        "container-kill",
        "node-stop",
        "node-kill",
        "node-pause",
        "node-restart",
        "kubelet-stop",
        "containerd-kill",
        "kube-proxy-kill",
        "etcd-kill",
        "etcd-stop",
        "control-plane-kill",
        "control-plane-stop",
        "etcd-restore-drill",
    }


def test_an_unknown_fault_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidParam) as e:
        registry.get("pod-explode")
    assert "unknown fault 'pod-explode'" in str(e.value)
    assert "pod-kill" in str(e.value) and "etcd-restore-drill" in str(e.value)


def test_an_unknown_argument_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidParam) as e:
        registry.build("pod-kill", {"namespace": "shop", "selector": "app=x", "cnt": 1})
    assert e.value.field == "cnt"
    assert "valid: count, grace_period, max_victims, namespace, percent, selector" in e.value.reason


def test_argument_types_and_cross_checks_name_the_field() -> None:
    with pytest.raises(InvalidParam, match=r"^where\.count: must be an integer, not 'two'$"):
        registry.build(
            "pod-kill", {"namespace": "s", "selector": "a=b", "count": "two"}, where="where"
        )
    with pytest.raises(InvalidParam, match="give count or percent, not both"):
        registry.build("pod-kill", {"namespace": "s", "selector": "a=b", "count": 1, "percent": 5})
    with pytest.raises(InvalidParam, match=r"role: must be one of worker, control-plane, any"):
        registry.build("node-stop", {"role": "master"})
    with pytest.raises(InvalidParam, match=r"^selector: is required$"):
        registry.build("pod-kill", {"namespace": "shop"})


def test_strings_from_the_environment_are_converted() -> None:
    fault = registry.build(
        "node-stop", {"count": "2", "duration": "30", "nodes": "a, b", "max_victims": 2}
    )
    assert fault.params.count == 2
    assert fault.params.duration == 30.0
    assert fault.params.nodes == ("a", "b")


def test_an_optional_filter_left_empty_is_unset_and_a_required_string_is_not() -> None:
    fault = registry.build("node-kill", {"sparing": "", "holding": ""})
    assert fault.params.sparing == "" and fault.params.holding == ""
    with pytest.raises(InvalidParam, match=r"^selector: must be a non-empty string, not ''$"):
        registry.build("pod-kill", {"namespace": "shop", "selector": ""})


def test_every_chaos_toolkit_action_matches_its_fault() -> None:
    for action, fault in actions.FAULT_ACTIONS.items():
        assert action in actions.__all__
        params = {p.name: p for p in describe(registry.get(fault).params_type)}
        signature = inspect.signature(getattr(actions, action)).parameters
        arguments = [n for n in signature if n != "configuration"]
        assert set(arguments) <= set(params), (action, set(arguments) - set(params))
        for name, param in params.items():
            if param.required:
                assert signature[name].default is inspect.Parameter.empty, (action, name)
    exported = {a for a in actions.__all__ if a != "rollback_faults"}
    assert exported == set(actions.FAULT_ACTIONS)


def test_discovery_lists_every_action_with_typed_arguments() -> None:
    found = {a["name"]: a for a in discover()["activities"]}
    assert {"kill_pods", "stop_kubelet", "desired_state_converged"} <= set(found)
    args = {a["name"]: a for a in found["kill_pods"]["arguments"]}
    assert args["count"]["type"] == "integer"
    assert "default" not in args["selector"]
