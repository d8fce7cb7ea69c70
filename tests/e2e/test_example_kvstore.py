"""The second example system (examples/kvstore, issue 16) as a user runs it: its suite
deployed from its folder, its faults under its own Locust file, and its own invariant (every
acknowledged write reads back) judging each trial; then its deliberately unsafe variant,
whose store acknowledges writes before they are durable, failed by that same invariant with
the lost writes named.

Each fault once in CI: the suite runs here without ``api-pod-kill`` (a second pod-kill);
its node stop and scheduler kill are the CI runs of those faults (test_suite.py and
test_data_tier.py leave them out). The safe run comes first: the unsafe suite then deploys
its variant over it (the store's Pod restarts with buffered writes), and the namespace is
deleted at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import REPO, Cluster, chaoskit, delete_namespace

KVSTORE = REPO / "examples" / "kvstore"
NAMESPACE = "kv"
SKIPPED_IN_CI = ("api-pod-kill",)


def _trials(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(run_dir.glob("trials/*/*/trial.json"))]


def _suite(cluster: Cluster, suite: str, out: Path, *skip: str) -> tuple[int, str]:
    proc = chaoskit(
        "suite", "run", str(KVSTORE / suite), "--cluster", cluster.name, "--out", str(out),
        *(arg for name in skip for arg in ("--skip", name)),
        timeout=1800,
    )  # fmt: skip
    print(proc.stdout[-6000:])
    print(proc.stderr[-4000:])
    assert (out / "summary.json").is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def kv_namespace(cluster: Cluster) -> Iterator[str]:
    yield NAMESPACE
    if not delete_namespace(cluster.core, NAMESPACE, timeout=180):
        pytest.fail(f"namespace {NAMESPACE} was not deleted within 180 s")


def test_the_kvstore_suite_passes_and_its_invariant_reads_every_acknowledged_write_back(
    cluster: Cluster, kv_namespace: str, tmp_path: Path
) -> None:
    out = tmp_path / "kvstore"
    code, output = _suite(cluster, "chaoskit-suite.yaml", out, *SKIPPED_IN_CI)
    trials = _trials(out)
    assert sorted(t["experiment"] for t in trials) == [
        "scheduler-kill",
        "store-pod-kill",
        "worker-stop",
    ]
    failed = {t["experiment"]: t["reasons"] for t in trials if t["status"] != "passed"}
    assert not failed and code == 0, json.dumps(failed, indent=2) + output[-3000:]
    for trial in trials:
        name = trial["experiment"]
        assert trial["ledger"] is None, name  # a system's invariants replace the shop's ledger
        assert trial["load"]["requests"] > 0, name
        phases = {entry["phase"]: entry for entry in trial["invariants"]}
        assert set(phases) == {"before", "after"}, (name, trial["invariants"])
        after = phases["after"]
        assert after["name"] == "acknowledged-writes" and after["ok"], (name, after)
        assert not after["violations"] and after["error"] is None, (name, after)
        acked = out / "trials" / name / "1" / "acknowledged.jsonl"
        keys = {json.loads(line)["key"] for line in acked.read_text().splitlines()}
        assert keys, f"{name}: the Locust file acknowledged no write"
        # The check read back every key the load was told it wrote (its latest value).
        assert after["checked"] == len(keys), (name, after["checked"], len(keys))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == "pass"
    held = "Invariant checks: 6 held, 0 found violations, 0 errored."  # 3 trials, before/after
    assert held in (out / "report.md").read_text()
    assert "acknowledged-writes" in (out / "report.html").read_text()


def test_the_unsafe_kvstore_loses_acknowledged_writes_and_its_invariant_names_them(
    cluster: Cluster, kv_namespace: str, tmp_path: Path
) -> None:
    out = tmp_path / "kvstore-unsafe"
    code, output = _suite(cluster, "chaoskit-suite-unsafe.yaml", out)
    assert code == 1, output[-3000:]
    trials = _trials(out)
    assert trials and all(t["status"] == "failed" for t in trials), [
        (t["status"], t["reasons"]) for t in trials
    ]
    for trial in trials:
        after = next(e for e in trial["invariants"] if e["phase"] == "after")
        assert not after["ok"] and after["violations"], after
        assert all(v["key"] and "acknowledged" in v["what"] for v in after["violations"]), after
        assert after["error"] is None, after  # a violation, not a broken check
        assert any("invariant" in reason for reason in trial["reasons"]), trial["reasons"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == "fail"
