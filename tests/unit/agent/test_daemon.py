"""The agent's loop on a fake API: applies, undoes at expiry without the API, recovers."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chaoskit.agent.nodeagent import orders as o
from chaoskit.agent.nodeagent.daemon import Agent
from chaoskit.agent.nodeagent.host import ENDED, FAULTS, Host
from chaoskit.agent.nodeagent.kube import Api, ApiUnavailable
from chaoskit.agent.nodeagent.store import Store


class FakeApi(Api):
    def __init__(self) -> None:
        super().__init__(base_url="https://api.invalid")
        self.objects: dict[str, dict[str, Any]] = {}
        self.down = False

    def list_orders(self, node: str) -> list[dict[str, Any]]:
        if self.down:
            raise ApiUnavailable("connection refused")
        return list(self.objects.values())

    def read_order(self, name: str) -> dict[str, Any]:
        if self.down:
            raise ApiUnavailable("connection refused")
        return self.objects[name]

    def write_status(self, name: str, status: dict[str, Any]) -> None:
        if self.down:
            raise ApiUnavailable("connection refused")
        self.objects[name]["status"] = status

    def order(self, name: str, ttl: float) -> None:
        obj = o.order_object(
            name,
            "cp1",
            "static-pod-hold",
            {"component": "etcd", "wait": "false"},
            time.time() + ttl,
        )
        obj["metadata"]["uid"] = "uid-" + name
        self.objects[name] = obj


def setup(tmp_path: Path) -> tuple[Agent, FakeApi, Path]:
    (tmp_path / "manifests").mkdir()
    manifest = tmp_path / "manifests" / "etcd.yaml"
    manifest.write_text("pod")
    api = FakeApi()
    agent = Agent(Host("cp1", tmp_path), api, Store(tmp_path / "orders.json"))
    agent.start()
    return agent, api, manifest


def test_order_applied_then_undone_at_expiry_while_api_is_down(tmp_path: Path) -> None:
    agent, api, manifest = setup(tmp_path)
    api.order("hold", ttl=0.3)
    agent.tick()
    assert not manifest.exists()
    assert api.objects["hold"]["status"]["phase"] == "Applied"
    api.down = True
    time.sleep(0.35)
    agent.tick()
    assert manifest.read_text() == "pod"  # undone with no API
    assert api.objects["hold"]["status"]["phase"] == "Applied"
    api.down = False
    agent.tick()
    assert api.objects["hold"]["status"]["phase"] == "Undone"
    agent.tick()
    assert agent.entries == {}
    agent.tick()
    assert manifest.exists()  # an Undone order is never applied again


def test_restarted_agent_reapplies_live_and_undoes_expired(tmp_path: Path) -> None:
    agent, api, manifest = setup(tmp_path)
    api.order("hold", ttl=30)
    agent.tick()
    assert not manifest.exists()
    # The fault came partly undone while the agent was away: a restart re-applies it.
    (tmp_path / "chaoskit-held" / "etcd.yaml").replace(manifest)
    again = Agent(Host("cp1", tmp_path), api, Store(tmp_path / "orders.json"))
    again.start()
    assert not manifest.exists()
    # The harness died: nobody renews; the next agent start finds it expired and undoes it.
    entries = again.store.load()
    expired = {k: o.Entry(**{**vars(e), "expires_at": time.time() - 1}) for k, e in entries.items()}
    again.store.save(expired)
    api.down = True
    Agent(Host("cp1", tmp_path), api, Store(tmp_path / "orders.json")).start()
    assert manifest.read_text() == "pod"


def test_a_renewal_during_a_long_apply_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kubelet may take seconds to stop a held static pod; the harness renews meanwhile.
    The order must not be undone on the expiry it had when the apply began."""
    agent, api, manifest = setup(tmp_path)
    api.order("hold", ttl=0.5)
    hold = FAULTS["static-pod-hold"]
    slow_apply = hold.apply

    def apply(host: Host, params: Mapping[str, str]) -> dict[str, str]:
        info = slow_apply(host, params)
        time.sleep(1.2)  # past the first expiry, while the harness renews:
        api.objects["hold"]["spec"]["expiresAt"] = o.format_time(time.time() + 60)
        return info

    monkeypatch.setitem(FAULTS, "static-pod-hold", replace(hold, apply=apply))
    agent.tick()
    agent.tick()
    assert not manifest.exists(), "undone on the expiry the order had before the renewal"
    assert api.objects["hold"]["status"]["phase"] == "Applied"


def test_apply_and_undo_get_the_orders_name_also_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Network faults tag what they change with the order's name and find it again by it."""
    agent, api, _ = setup(tmp_path)
    seen: list[tuple[str, str]] = []
    hold = FAULTS["static-pod-hold"]

    def apply(host: Host, params: Mapping[str, str]) -> dict[str, str]:
        seen.append(("apply", params.get(o.ORDER_PARAM, "")))
        return hold.apply(host, params)

    def undo(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
        seen.append(("undo", params.get(o.ORDER_PARAM, "")))
        hold.undo(host, params, info)

    monkeypatch.setitem(FAULTS, "static-pod-hold", replace(hold, apply=apply, undo=undo))
    api.order("hold", ttl=0.5)
    agent.tick()
    Agent(Host("cp1", tmp_path), api, Store(tmp_path / "orders.json")).start()  # re-applies
    time.sleep(0.55)
    agent.tick()
    assert seen == [("apply", "hold"), ("apply", "hold"), ("undo", "hold")]


def test_a_watch_that_ends_a_fault_is_reported_and_not_reapplied_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent gives an applied order's watch a look on every tick; once it says the
    fault's active part ended, that is reported, and a restarted agent does not apply the
    fault again (only its undo is left)."""
    agent, api, _ = setup(tmp_path)
    hold = FAULTS["static-pod-hold"]
    looks: list[Mapping[str, str]] = []
    applies: list[str] = []

    def apply(host: Host, params: Mapping[str, str]) -> dict[str, str]:
        applies.append(params.get(o.ORDER_PARAM, ""))
        return hold.apply(host, params)

    def watch(
        host: Host, cluster: Any, params: Mapping[str, str], info: Mapping[str, str]
    ) -> dict[str, str] | None:
        looks.append(dict(info))
        return {**info, ENDED: "after 1 eviction(s)"} if len(looks) == 2 else None

    monkeypatch.setitem(FAULTS, "static-pod-hold", replace(hold, apply=apply, watch=watch))
    api.order("hold", ttl=30)
    agent.tick()
    agent.tick()
    status = api.objects["hold"]["status"]
    assert status["phase"] == "Applied" and status["info"][ENDED] == "after 1 eviction(s)"
    assert "ended by itself after 1 eviction(s)" in status["message"]
    agent.tick()
    assert len(looks) == 2, "an ended fault is not watched any more"
    api.down = True  # no look while the API does not answer, either
    Agent(Host("cp1", tmp_path), api, Store(tmp_path / "orders.json")).start()
    assert applies == ["hold"], "applied again after it had ended"
