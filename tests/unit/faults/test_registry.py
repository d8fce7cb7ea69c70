"""The fault registry and argument checking: wrong input names what is valid."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, get_type_hints

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


def test_every_fault_has_exactly_one_action_with_its_parameters() -> None:
    faults = registry.faults()
    assert sorted(actions.FAULT_ACTIONS.values()) == sorted(cls.name for cls in faults)
    assert set(actions.__all__) == {*actions.FAULT_ACTIONS, "rollback_faults"}
    for cls in faults:
        assert actions.FAULT_ACTIONS[cls.action] == cls.name
        func = getattr(actions, cls.action)
        # What Chaos Toolkit looks for: a module-level function of that name.
        assert inspect.isfunction(func)
        assert (func.__name__, func.__module__) == (cls.action, "chaoskit.ctk.actions")
        hints = get_type_hints(cls.params_type)
        expected = {}
        for f in dataclasses.fields(cls.params_type):
            default = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
            expected[f.name] = (inspect.Parameter.KEYWORD_ONLY, hints[f.name], default)
        expected["configuration"] = (
            inspect.Parameter.KEYWORD_ONLY,
            dict[str, Any] | None,
            None,
        )
        signature = inspect.signature(func)
        got = {p.name: (p.kind, p.annotation, p.default) for p in signature.parameters.values()}
        assert got == expected, cls.name
        assert get_type_hints(func)["return"] == dict[str, Any]
        doc = inspect.getdoc(func) or ""
        assert doc.startswith(cls.summary) and repr(cls.name) in doc
        for p in describe(cls.params_type):
            assert f"    {p.name} ({p.type}, " in doc and p.help in doc, (cls.name, p.name)


def test_the_actions_that_experiments_call_keep_their_names() -> None:
    # Renaming an action breaks every experiment file that calls it.
    actions_of = {cls.name: cls.action for cls in registry.faults()}
    assert (
        actions_of.items()
        >= {
            "pod-kill": "kill_pods",
            "container-kill": "kill_containers",
            "node-stop": "stop_nodes",
            "node-kill": "kill_nodes",
            "node-pause": "pause_nodes",
            "node-restart": "restart_nodes",
            "kubelet-stop": "stop_kubelet",
            "kubelet-kill": "kill_kubelet",
            "containerd-kill": "kill_containerd",
            "containerd-stop": "stop_containerd",
            "kube-proxy-kill": "kill_kube_proxy",
            "etcd-kill": "kill_etcd_members",
            "etcd-stop": "stop_etcd_members",
            "control-plane-kill": "kill_control_plane",
            "control-plane-stop": "stop_control_plane",
            "etcd-restore-drill": "etcd_restore_drill",
        }.items()
    )


def test_discovery_lists_every_action_with_typed_arguments() -> None:
    found = {a["name"]: a for a in discover()["activities"]}
    assert {"kill_pods", "stop_kubelet", "desired_state_converged"} <= set(found)
    args = {a["name"]: a for a in found["kill_pods"]["arguments"]}
    assert args["count"]["type"] == "integer"
    assert "default" not in args["selector"]
    assert args["selector"]["doc"] == "label selector, e.g. app=gateway"
    assert found["kill_pods"]["doc"].startswith("delete pods chosen by label selector")
    stop = {a["name"]: a for a in found["stop_nodes"]["arguments"]}
    assert stop["role"] == {
        "name": "role",
        "type": "worker|control-plane|any",
        "default": "worker",
        "doc": "worker, control-plane or any",
    }
