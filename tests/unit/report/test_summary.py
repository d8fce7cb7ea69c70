"""summary.json: per experiment and trial, aggregates with spread, score and verdict."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import fmean
from typing import Any

import pytest

from chaoskit.errors import InvalidInput
from chaoskit.report import render
from chaoskit.report.html import render_html
from chaoskit.report.markdown import render_markdown
from chaoskit.report.rundir import load_run
from chaoskit.report.summary import SCHEMA, build_summary
from tests.unit.report.rundirs import SUITE_SLOS, TrialSpec, standard_run, standard_specs, write_run


def test_a_passing_run(tmp_path: Path) -> None:
    summary = build_summary(load_run(standard_run(tmp_path / "run"))).to_dict()
    assert summary["schema"] == SCHEMA
    assert (summary["verdict"], summary["reasons"]) == ("pass", [])
    _assert_score_components(summary)
    assert summary["totals"] == {
        "experiments": 2, "trials": 4, "passed": 4, "failed": 0, "errored": 0,
        "slos": {"pass": 16, "fail": 0, "error": 0}, "lost_orders": 0,
    }  # fmt: skip
    assert [s["name"] for s in summary["slos"]] == [s["name"] for s in SUITE_SLOS]
    pod_kill, node_stop = summary["experiments"]
    assert (pod_kill["name"], node_stop["name"]) == ("pod-kill", "node-stop")
    assert pod_kill["aggregate"]["recovery_s"] == {"min": 4.5, "median": 4.75, "max": 5.0, "n": 2}
    assert pod_kill["aggregate"]["components"]["kubelet"]["median"] == pytest.approx(4.34)
    assert node_stop["aggregate"]["components"]["node_not_ready"]["median"] == 20.5
    trial = pod_kill["trials"][0]
    assert trial["files"] == {
        "trial": "trials/pod-kill/1/trial.json",
        "result": "trials/pod-kill/1/result.json",
        "timeseries": "trials/pod-kill/1/load/timeseries.csv",
    }
    assert trial["fault"]["victims"] == ["pod-kill: pod shop/gateway-7d9f-abcde"]
    assert trial["ledger"]["lost_total"] == 0 and trial["ledger"]["acknowledged"] == 40
    assert trial["during_fault"]["requests"] == 500


def _assert_score_components(summary: dict[str, Any], lost: int = 0) -> None:
    """The score is its documented formula over the figures summary.json holds."""
    score = summary["score"]
    trials = [t for e in summary["experiments"] for t in e["trials"]]
    availability = [
        1 - t["during_fault"]["failures"] / t["during_fault"]["requests"]
        if "requests" in t["during_fault"]
        else None
        for t in trials
    ]
    expected_availability = fmean(
        min(1.0, max(0.0, (a - 0.9) / 0.1)) if a is not None else 0.0 for a in availability
    )
    assert score["availability_score"] == pytest.approx(expected_availability, abs=1e-4)
    budget = {s["name"]: s["threshold"] for s in summary["slos"]}["recovery"]
    expected_recovery = fmean(
        min(1.0, max(0.0, 1 - t["fault"]["recovery_s"] / budget)) for t in trials
    )
    assert score["recovery_score"] == pytest.approx(expected_recovery, abs=1e-4)
    parts = [
        score["trial_pass_share"],
        score["slo_pass_share"],
        expected_availability,
        expected_recovery,
    ]
    assert score["value"] == round(max(0.0, 100 * fmean(parts) - 10 * lost), 1)
    assert [t["score"]["availability"] for t in trials] == [
        None if a is None else pytest.approx(a, abs=1e-4) for a in availability
    ]


def test_the_score_moves_with_availability_and_recovery(tmp_path: Path) -> None:
    """Every SLO passes in each of these runs; the score still tells them apart."""
    clean = build_summary(load_run(standard_run(tmp_path / "clean", failures_per_s=0))).to_dict()
    failing = build_summary(
        load_run(standard_run(tmp_path / "failing", failures_per_s=6))
    ).to_dict()
    quick = build_summary(load_run(standard_run(tmp_path / "quick", recovery_s=6))).to_dict()
    slow = build_summary(load_run(standard_run(tmp_path / "slow", recovery_s=45))).to_dict()
    for summary in (clean, failing, quick, slow):
        assert summary["verdict"] == "pass", summary["reasons"]
        _assert_score_components(summary)
    assert clean["score"]["availability_score"] == 1.0
    assert failing["score"]["availability_score"] < 0.8
    assert failing["score"]["value"] < clean["score"]["value"] - 5
    assert slow["score"]["recovery_score"] == pytest.approx(0.25)
    assert slow["score"]["value"] < quick["score"]["value"] - 10


def test_failures_lost_orders_and_missing_data_fail_the_verdict(tmp_path: Path) -> None:
    specs = standard_specs()
    specs[1].lost_orders = 2
    specs[2].status, specs[2].reasons = "failed", ["oracle: deployment/gateway: 1 of 2 Ready"]
    specs[3].load = False
    specs[3].status, specs[3].reasons = "errored", ["load: Locust crashed (exit 1)"]
    summary = build_summary(load_run(write_run(tmp_path / "run", specs, slos=SUITE_SLOS))).to_dict()
    assert summary["verdict"] == "fail"
    reasons = summary["reasons"]
    assert "pod-kill trial 2: SLO no-lost-orders fail: 2 orders is not <= 0 orders" in reasons[0]
    assert reasons[1] == "node-stop trial 1: failed: oracle: deployment/gateway: 1 of 2 Ready"
    assert reasons[2] == "node-stop trial 2: errored: load: Locust crashed (exit 1)"
    assert any("SLO error-rate error: no load time series" in r for r in reasons)
    assert summary["totals"]["lost_orders"] == 2
    assert summary["totals"]["slos"] == {"pass": 13, "fail": 1, "error": 2}
    # 2 of 4 trials passed; 13 of 16 SLO checks; two lost orders; the trial without load
    # has no availability and scores 0 for it.
    score = summary["score"]
    assert (score["trial_pass_share"], score["slo_pass_share"]) == (2 / 4, 13 / 16)
    assert score["availability_trials"] == 3
    _assert_score_components(summary, lost=2)
    node_stop = summary["experiments"][1]
    assert (node_stop["verdict"], node_stop["trials_failed"], node_stop["trials_errored"]) == (
        "fail",
        1,
        1,
    )
    assert node_stop["trials"][1]["during_fault"] == {
        "missing": "no load time series (load failed: Locust crashed (exit 1))"
    }
    assert node_stop["aggregate"]["error_rate_pct"]["n"] == 1


def test_a_trial_without_trial_json_is_errored_and_its_slos_are_judged(tmp_path: Path) -> None:
    run_dir = standard_run(tmp_path / "run")
    (run_dir / "trials" / "pod-kill" / "2" / "trial.json").unlink()
    summary = build_summary(load_run(run_dir)).to_dict()
    trial = summary["experiments"][0]["trials"][1]
    assert trial["status"] == "errored"
    assert trial["reasons"] == ["no trial.json"]
    statuses = {r["name"]: r["status"] for r in trial["slos"]}
    assert statuses == {"error-rate": "pass", "p99": "pass", "recovery": "pass",
                        "no-lost-orders": "error"}  # fmt: skip
    assert summary["verdict"] == "fail"


def test_an_experiment_of_run_json_without_trials_fails(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", [TrialSpec()])
    info = json.loads((run_dir / "run.json").read_text())
    info["experiments"].append("node-kill")
    (run_dir / "run.json").write_text(json.dumps(info))
    summary = build_summary(load_run(run_dir)).to_dict()
    assert [e["name"] for e in summary["experiments"]] == ["pod-kill", "node-kill"]
    assert summary["reasons"] == ["node-kill: no trials"]
    empty = build_summary(load_run(write_run(tmp_path / "empty", []))).to_dict()
    assert (empty["verdict"], empty["reasons"], empty["score"]["value"]) == (
        "fail",
        ["the run has no trials"],
        0.0,
    )


def test_rendering_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    run_dir = standard_run(tmp_path / "run")
    first = {k: p.read_bytes() for k, p in render(run_dir).items()}
    second = {k: p.read_bytes() for k, p in render(run_dir).items() if k != "parquet"}
    assert {k: v for k, v in first.items() if k != "parquet"} == second


def test_a_directory_that_is_not_a_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"no such directory"):
        render(tmp_path / "missing")
    with pytest.raises(InvalidInput, match=r": no run.json \(not a chaoskit run directory\)"):
        render(tmp_path)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(InvalidInput, match=r"run.json is unreadable"):
        render(tmp_path)


def test_a_system_that_did_not_come_back_is_in_the_summary_and_the_reports(
    tmp_path: Path,
) -> None:
    run_dir = standard_run(tmp_path / "run")
    path = run_dir / "trials" / "node-stop" / "2" / "trial.json"
    trial = json.loads(path.read_text())
    why = "the system did not come back: not serving end to end within 180 s after the trial"
    trial.update(status="failed", reasons=[why], system_recovered=False, system_check=why)
    path.write_text(json.dumps(trial))
    run = load_run(run_dir)
    summary = build_summary(run)
    assert summary.system_not_back == ("node-stop trial 2",)
    node_stop = summary.experiments[1]
    assert node_stop.trials[1].system_recovered is False
    assert f"node-stop trial 2: failed: {why}" in summary.reasons
    assert "**The system did not come back**" in render_markdown(summary)
    assert "did not come back (not serving end to end) after node-stop trial 2" in render_html(
        run, summary
    )
    # Run directories from before the check (no field) read as not checked.
    assert (
        build_summary(load_run(standard_run(tmp_path / "old"))).to_dict()["system_not_back"] == []
    )
