"""A trial's orders are its own: every trial's load id is unique (also for long names), and
the ledger's query for one trial matches none of another trial's keys."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskit.load.pods import k8s_name, run_label
from chaoskit.load.runner import RUN_ID
from chaoskit.suite.runner import new_run_id
from chaoskit.suite.spec import load_suite
from chaoskit.suite.trial import load_run_id
from chaoskit.topology import shopdb
from chaoskit.topology.client import KEY_SEPARATOR, order_key

REPO = Path(__file__).resolve().parents[3]
LONG = "kube-controller-manager-stop-while-the-flash-sale-peaks-twice"


def _like(pattern: str, escape: str, text: str) -> bool:
    """SQL LIKE as MariaDB's default collation does it: case-insensitive."""
    regex, chars = "", iter(pattern)
    for c in chars:
        if c == escape:
            regex += re.escape(next(chars))
        elif c == "%":
            regex += ".*"
        elif c == "_":
            regex += "."
        else:
            regex += re.escape(c)
    return re.fullmatch(regex, text, re.IGNORECASE | re.DOTALL) is not None


class FakeShopDb:
    """The shop's orders table behind :func:`shopdb.query`: evaluates the key filter."""

    def __init__(self, keys: list[str]) -> None:
        self.orders = {f"o-{i}": key for i, key in enumerate(keys)}

    def query(
        self, _access: Any, _namespace: str, sql: str, timeout: float = 60
    ) -> list[list[str]]:
        match = re.search(r"LIKE '((?:[^']|'')*)' ESCAPE '(.)'", sql)
        assert match is not None, sql
        pattern, escape = match[1], match[2]
        # (order id, key): what both queries select; one notification per order
        return [[oid, key] for oid, key in self.orders.items() if _like(pattern, escape, key)]


@pytest.fixture
def three_trials(tmp_path: Path) -> list[str]:
    (tmp_path / "exp.yaml").write_text((REPO / "experiments/pod-kill.yaml").read_text())
    (tmp_path / "kind.yaml").write_text((REPO / "kind-config.quick.yaml").read_text())
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(
        yaml.safe_dump(
            {
                "name": "flash-sale-with-a-rather-long-suite-name",
                "trials": 3,
                "cluster": {"config": "kind.yaml"},
                "experiments": [{"file": "exp.yaml", "name": LONG}],
            }
        )
    )
    suite = load_suite(suite_file)
    run_id = new_run_id(suite)
    [entry] = suite.experiments
    assert entry.trials == 3
    return [load_run_id(run_id, entry.name, n) for n in range(1, entry.trials + 1)]


def test_three_trials_of_a_long_named_experiment_get_three_valid_ids(
    three_trials: list[str],
) -> None:
    assert len(set(three_trials)) == 3
    for run_id in three_trials:
        assert RUN_ID.fullmatch(run_id), run_id
    # readable: the head of the suite's name and the trial number stay visible
    assert all(i.startswith("flash-sale-with") for i in three_trials)
    assert [i.rsplit("-", 1)[1] for i in three_trials] == ["1", "2", "3"]


def test_short_ids_are_kept_as_they_are() -> None:
    assert load_run_id("smoke-20260101-000000-abcd", "pod-kill", 2) == (
        "smoke-20260101-000000-abcd-pod-kill-2"
    )


def test_ids_differing_only_past_the_cut_stay_apart() -> None:
    head = "s-20260101-000000-abcd-" + "x" * 40
    assert load_run_id(head, "one", 1) != load_run_id(head, "two", 1)


def test_the_ledger_query_of_one_trial_matches_no_other_trials_keys(
    monkeypatch: pytest.MonkeyPatch, three_trials: list[str]
) -> None:
    # trial 1 of a short run and trial 10 of the same: "r-1" is a prefix of "r-10"
    ids = [*three_trials, "r-1", "r-10", "R-1"]
    keys = {run_id: [order_key(run_id) for _ in range(3)] for run_id in ids}
    db = FakeShopDb([k for ks in keys.values() for k in ks])
    monkeypatch.setattr(shopdb, "query", db.query)
    for run_id in ids:
        stored = shopdb.stored_orders(None, "shop", run_id)  # type: ignore[arg-type]
        assert sorted(o.idempotency_key for o in stored) == sorted(keys[run_id]), run_id
        notified = shopdb.notified_order_ids(None, "shop", run_id)  # type: ignore[arg-type]
        assert len(notified) == 3


def test_like_wildcards_in_a_prefix_are_escaped() -> None:
    assert shopdb.like_prefix("a_b%c!.") == "a!_b!%c!!.%"
    with pytest.raises(ValueError, match="letters, digits"):
        shopdb.key_filter("run_1")


def _profile_constant(name: str) -> object:
    """A constant of loadprofiles/_shop.py, read without importing Locust."""
    tree = ast.parse((REPO / "loadprofiles/_shop.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"no {name} in _shop.py")


def test_the_profiles_use_the_same_key_separator() -> None:
    assert _profile_constant("KEY_SEPARATOR") == KEY_SEPARATOR


def test_worker_pods_of_two_trials_get_different_names() -> None:
    a, b = (load_run_id("s-20260101-000000-abcd", LONG, n) for n in (1, 2))
    assert k8s_name(a) != k8s_name(b) and len(k8s_name(a)) <= 63
    assert run_label(a) != run_label(b) and len(run_label(a)) <= 63
