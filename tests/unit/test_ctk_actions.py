"""The Chaos Toolkit actions come from the fault registry: a new fault needs no edit of
chaoskit/ctk/actions.py, and an action hands the session exactly what the experiment gave."""

from __future__ import annotations

import inspect
import json
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from chaoslib.exceptions import InvalidActivity
from chaoslib.provider.python import run_python_activity, validate_python_activity
from click.testing import CliRunner

from chaoskit.cli import cli
from chaoskit.ctk import actions, context, discover
from chaoskit.ctk.experiment import check_experiment
from chaoskit.errors import InvalidConfig
from chaoskit.faults import registry
from chaoskit.faults.base import Blast, Fault, FaultEnv, Recorder, Victim, help_

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, kw_only=True)
class PokeParams(Blast):
    thing: str = field(metadata=help_("what to poke"))
    depth: int = field(default=2, metadata=help_("how deep, in pokes"))


class Poke(Fault[PokeParams]):
    """A fault that exists only in this test."""

    name = "test-poke"
    action = "poke_things"
    summary = "poke things, for a test"
    params_type = PokeParams

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        return []

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        return {}


@contextmanager
def registered(cls: type[Fault[Any]]) -> Iterator[None]:
    registry.register(cls)
    actions.refresh()
    try:
        yield
    finally:
        registry.unregister(cls.name)
        actions.refresh()


def _activity(func: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "action",
        "name": func,
        "provider": {
            "type": "python",
            "module": "chaoskit.ctk.actions",
            "func": func,
            "arguments": arguments,
        },
    }


def _experiment(activity: dict[str, Any]) -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "experiments" / "pod-kill.yaml").read_text())
    doc["method"] = [activity]
    return doc


def test_a_new_fault_gets_its_action_discovery_and_checks_without_editing_actions() -> None:
    with registered(Poke):
        func = actions.poke_things
        assert "poke_things" in actions.__all__
        assert actions.FAULT_ACTIONS["poke_things"] == "test-poke"
        assert list(inspect.signature(func).parameters) == [
            "thing",
            "count",
            "percent",
            "max_victims",
            "depth",
            "configuration",
        ]

        found = {a["name"]: a for a in discover()["activities"]}
        args = {a["name"]: a for a in found["poke_things"]["arguments"]}
        assert args["thing"] == {"name": "thing", "type": "string", "doc": "what to poke"}
        assert args["depth"]["default"] == 2
        assert found["poke_things"]["doc"].startswith("poke things, for a test.")

        # Chaos Toolkit's own validation, and chaoskit's.
        validate_python_activity(_activity("poke_things", {"thing": "x"}))
        with pytest.raises(InvalidActivity, match="argument 'deep' is not part of"):
            validate_python_activity(_activity("poke_things", {"thing": "x", "deep": 1}))
        path = Path("poke.yaml")
        check_experiment(path, _experiment(_activity("poke_things", {"thing": "x"})))
        with pytest.raises(InvalidConfig) as e:
            check_experiment(path, _experiment(_activity("poke_things", {"thing": "x", "deep": 1})))
        assert e.value.field == "method[0].provider.arguments.deep"
        assert e.value.reason == (
            "unknown argument of poke_things (valid: thing, count, percent, max_victims, depth)"
        )
        with pytest.raises(InvalidConfig) as e:
            check_experiment(
                path, _experiment(_activity("poke_things", {"thing": "x", "depth": "a"}))
            )
        assert (e.value.field, e.value.reason) == (
            "method[0].provider.arguments.depth",
            "must be an integer, not 'a'",
        )

        listed = CliRunner().invoke(cli, ["faults", "list", "--json"])
        assert listed.exit_code == 0, listed.output
        poke = next(f for f in json.loads(listed.output) if f["name"] == "test-poke")
        assert poke["action"] == "poke_things"
        assert [p["name"] for p in poke["params"]] == [
            "thing",
            "count",
            "percent",
            "max_victims",
            "depth",
        ]

    assert not hasattr(actions, "poke_things")
    assert "poke_things" not in actions.__all__
    assert "poke_things" not in actions.FAULT_ACTIONS


class _Session:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str]] = []

    def inject(self, fault: str, given: dict[str, Any], *, where: str) -> Any:
        self.calls.append((fault, given, where))
        return SimpleNamespace(to_dict=lambda: {"fault": fault, "victims": []})


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[_Session, list[Any]]]:
    fake = _Session()
    configurations: list[Any] = []

    def get(configuration: Any = None) -> Any:
        configurations.append(configuration)
        return SimpleNamespace(session=fake)

    monkeypatch.setattr(context, "get", get)
    yield fake, configurations


def test_an_action_passes_exactly_the_given_arguments(
    session: tuple[_Session, list[Any]],
) -> None:
    fake, configurations = session
    kill_pods = actions.kill_pods
    result = kill_pods(
        namespace="shop", selector="app=x", count=None, percent=50, configuration={"a": 1}
    )
    assert result == {"fault": "pod-kill", "victims": []}
    # Not the unset count, not the defaults (the fault's parameters apply those).
    assert fake.calls == [
        ("pod-kill", {"namespace": "shop", "selector": "app=x", "percent": 50}, "pod-kill")
    ]
    assert configurations == [{"a": 1}]

    stop_nodes = actions.stop_nodes
    stop_nodes()
    assert fake.calls[-1] == ("node-stop", {}, "node-stop")


def test_an_action_refuses_what_a_written_function_would(
    session: tuple[_Session, list[Any]],
) -> None:
    fake, _ = session
    kill_pods = actions.kill_pods
    with pytest.raises(TypeError, match=r"^kill_pods\(\) got an unexpected keyword argument 'cnt'"):
        kill_pods(namespace="shop", selector="app=x", cnt=1)
    with pytest.raises(TypeError, match=r"^kill_pods\(\) missing a required argument: 'selector'"):
        kill_pods(namespace="shop")
    with pytest.raises(TypeError):
        kill_pods("shop", "app=x")
    assert fake.calls == []


def test_chaos_toolkit_runs_an_action_with_the_configuration(
    session: tuple[_Session, list[Any]],
) -> None:
    fake, configurations = session
    activity = _activity("kill_pods", {"namespace": "${ns}", "selector": "app=x", "count": 2})
    result = run_python_activity(activity, {"ns": "shop"}, {})
    assert result == {"fault": "pod-kill", "victims": []}
    assert fake.calls == [
        ("pod-kill", {"namespace": "shop", "selector": "app=x", "count": 2}, "pod-kill")
    ]
    assert configurations == [{"ns": "shop"}]


def _fault(action: str) -> type[Fault[Any]]:
    return type("Bad", (Poke,), {"name": "test-bad", "action": action})


class NoAction(Fault[PokeParams]):
    name = "test-no-action"
    summary = "a fault that forgot its action"
    params_type = PokeParams

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        return []

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        return {}


def test_a_fault_without_an_action_is_refused_at_registration() -> None:
    with pytest.raises(RuntimeError, match=r"'test-no-action' .* declares no action"):
        registry.register(NoAction)
    assert "test-no-action" not in registry.names()


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("", "action must be a Python name, not ''"),
        ("kill-things", "action must be a Python name, not 'kill-things'"),
        ("class", "action must be a Python name, not 'class'"),
        ("_hidden", "action '_hidden' must not be private"),
        ("kill_pods", "action 'kill_pods' of fault 'test-bad' is already 'pod-kill''s"),
    ],
)
def test_a_badly_declared_action_is_refused_at_registration(action: str, reason: str) -> None:
    registry.load_all()
    with pytest.raises(RuntimeError, match=re.escape(reason)):
        registry.register(_fault(action))
    assert "test-bad" not in registry.names()


def test_an_action_that_shadows_a_name_of_the_module_is_refused() -> None:
    cls = _fault("rollback_faults")
    registry.register(cls)
    try:
        with pytest.raises(RuntimeError, match="action 'rollback_faults' is already a name"):
            actions.refresh()
    finally:
        registry.unregister(cls.name)
        actions.refresh()
    assert actions.rollback_faults.__module__ == "chaoskit.ctk.actions"
    assert "kill_pods" in actions.__all__
