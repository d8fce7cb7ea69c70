"""Informer cache logic without a cluster: relist diffs and stale events after a resync."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from chaoskit.probes.watch import Change, Informer


def pod(name: str, rv: int, ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"u-{name}",
            "resourceVersion": str(rv),
        },
        "status": {"conditions": [{"type": "Ready", "status": str(ready)}]},
    }


class FakeResponse:
    def __init__(self, items: list[dict[str, Any]], rv: int) -> None:
        self.data = json.dumps({"metadata": {"resourceVersion": str(rv)}, "items": items}).encode()


def informer(lists: list[tuple[list[dict[str, Any]], int]]) -> tuple[Informer, list[Change]]:
    inf = Informer(client.ApiClient(), "Pod", "shop")
    responses = iter(lists)
    inf._call = lambda **kw: FakeResponse(*next(responses))  # type: ignore[method-assign]
    seen: list[Change] = []
    inf.add_listener(seen.append)
    return inf, seen


def test_the_first_list_fills_the_cache_silently_and_a_relist_reports_the_gap() -> None:
    inf, seen = informer(
        [([pod("a", 10), pod("b", 11)], 12), ([pod("a", 15, False), pod("c", 14)], 16)]
    )
    inf.resync()
    assert seen == [] and sorted(p["metadata"]["name"] for p in inf.items()) == ["a", "b"]
    inf.resync()
    assert sorted((c.type, c.obj["metadata"]["name"], c.origin) for c in seen) == [
        ("ADDED", "c", "relist"),
        ("DELETED", "b", "relist"),
        ("MODIFIED", "a", "relist"),
    ]
    assert inf.last_change_at > 0


def test_events_older_than_what_a_resync_brought_are_dropped() -> None:
    inf, seen = informer([([pod("a", 10)], 10), ([pod("a", 20, False)], 21), ([], 30)])
    inf.resync()
    inf.resync()  # a consistent list saw version 20
    seen.clear()
    inf._apply("MODIFIED", pod("a", 18), 1.0)  # late event from the stream
    assert seen == [] and inf.items()[0]["metadata"]["resourceVersion"] == "20"
    inf._apply("MODIFIED", pod("a", 25), 2.0)
    assert [c.type for c in seen] == ["MODIFIED"]
    inf.resync()  # a later list has no "a": deleted
    seen.clear()
    inf._apply("MODIFIED", pod("a", 26), 3.0)  # stale: the list at 30 had it gone
    assert seen == [] and inf.items() == []


def test_a_list_older_than_the_stream_does_not_delete_what_the_stream_added() -> None:
    inf, seen = informer([([pod("a", 10)], 10), ([pod("a", 10)], 12)])
    inf.resync()
    inf._apply("ADDED", pod("b", 13), 1.0)  # the stream is ahead of the next list (rv 12)
    inf.resync()
    assert [(c.type, c.obj["metadata"]["name"]) for c in seen] == [("ADDED", "b")]
    assert sorted(p["metadata"]["name"] for p in inf.items()) == ["a", "b"]


def test_a_list_older_than_the_stream_does_not_bring_back_what_the_stream_deleted() -> None:
    inf, seen = informer([([pod("a", 10), pod("b", 11)], 11), ([pod("a", 10), pod("b", 11)], 12)])
    inf.resync()
    inf._apply("DELETED", pod("b", 13), 1.0)  # the stream is ahead of the next list (rv 12)
    inf.resync()
    assert [(c.type, c.obj["metadata"]["name"]) for c in seen] == [("DELETED", "b")]
    assert [p["metadata"]["name"] for p in inf.items()] == ["a"]
