"""report.html, report.md, junit.xml and the long time series of a run."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from chaoskit.report import render, series
from chaoskit.report.svg import nice_step, ticks
from tests.unit.report.rundirs import SUITE_SLOS, TrialSpec, standard_run, standard_specs, write_run


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    specs = standard_specs()
    specs[2].status = "failed"
    specs[2].reasons = ["oracle: <script>alert('x')</script> & more"]
    specs[3].lost_orders = 1
    return render(write_run(tmp_path_factory.mktemp("r") / "run-7", specs, slos=SUITE_SLOS))


def test_render_writes_every_file(rendered: dict[str, Path]) -> None:
    assert set(rendered) == {"summary", "html", "markdown", "junit", "timeseries", "parquet"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in rendered.values())


def test_the_html_has_a_timeline_and_a_recovery_chart_per_trial(rendered: dict[str, Path]) -> None:
    page = rendered["html"].read_text()
    timelines = re.findall(r'<svg [^>]*class="chart timeline"', page)
    assert len(timelines) == 4
    assert len(re.findall(r'<svg [^>]*class="chart bars"', page)) == 4
    assert len(re.findall(r'<svg [^>]*class="chart spread"', page)) == 3
    # Each timeline: three panels, the fault window shaded, injection and recovery marked.
    first = page[page.index('class="chart timeline"') :]
    first = first[: first.index("</svg>")]
    assert re.findall(r'data-panel="([^"]+)"', first) == [
        "Requests per second",
        "p99 latency",
        "Errors per second",
    ]
    assert first.count('class="fault-window"') == 3
    assert re.findall(r'data-marker="([^"]+)"', first) == ["injected", "recovered"]
    assert first.count('class="series"') == 3
    # The stopped node is rolled back too.
    assert 'data-marker="rolled back"' in page


def test_the_html_is_self_contained_and_escaped(rendered: dict[str, Path]) -> None:
    page = rendered["html"].read_text()
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)
    assert "@import" not in page and "url(" not in page
    assert "http://" not in page and "https://" not in page


def test_the_html_shows_score_verdict_slos_and_ledger(rendered: dict[str, Path]) -> None:
    page = rendered["html"].read_text()
    summary = json.loads(rendered["summary"].read_text())
    assert f'<span class="score" id="score">{summary["score"]["value"]:.1f}</span>' in page
    assert '<span class="badge fail">FAIL</span>' in page
    assert "<h4>Ledger</h4>" in page and "lost orders" in page
    assert page.count("<h4>SLOs</h4>") == 4
    assert "How the score is computed" in page


def test_junit_has_one_case_per_trial_with_failure_reasons(rendered: dict[str, Path]) -> None:
    root = ET.parse(rendered["junit"]).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "2", "0")
    [suite] = list(root)
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("flash-sale", "pod-kill[trial 1]"),
        ("flash-sale", "pod-kill[trial 2]"),
        ("flash-sale", "node-stop[trial 1]"),
        ("flash-sale", "node-stop[trial 2]"),
    ]
    assert cases[0].find("failure") is None
    failure = cases[2].find("failure")
    assert failure is not None
    assert failure.get("message") == "oracle: <script>alert('x')</script> & more"
    lost = cases[3].find("failure")
    assert lost is not None
    assert lost.get("message", "").startswith("SLO no-lost-orders fail: 1 orders is not <= 0")


def test_junit_marks_an_errored_trial_as_error(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", [TrialSpec(status="errored", reasons=["boom"])])
    [case] = ET.parse(render(run_dir)["junit"]).getroot().iter("testcase")
    error = case.find("error")
    assert error is not None and error.get("message") == "boom"


def test_markdown_for_a_job_summary(rendered: dict[str, Path]) -> None:
    text = rendered["markdown"].read_text()
    assert text.startswith("## chaoskit: flash-sale: FAIL, score ")
    assert "| pod-kill | pass | 2/2 | 4.75 (4.50 to 5.00) |" in text
    assert "| node-stop | fail | 1/2 |" in text
    assert "### Why it fails" in text
    assert "- node-stop trial 1: failed: oracle: <script>" in text


def test_the_time_series_of_all_trials_in_one_long_table(rendered: dict[str, Path]) -> None:
    table = pd.read_csv(rendered["timeseries"])
    assert list(table.columns[:5]) == ["experiment", "trial", "t", "t_rel", "endpoint"]
    assert {"rps", "failures_per_s", "p99_ms", "users"} <= set(table.columns)
    assert list(dict.fromkeys(table["experiment"])) == ["pod-kill", "node-stop"]
    # 60 seconds x 3 endpoints per trial.
    assert len(table) == 4 * 60 * 3
    first = table[(table.experiment == "pod-kill") & (table.trial == 1)]
    assert first["t_rel"].min() == pytest.approx(-20.3)
    parquet = pd.read_parquet(rendered["parquet"])
    assert len(parquet) == len(table)
    assert list(parquet.columns) == list(table.columns)


def test_without_pyarrow_only_the_csv_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(series, "parquet_available", lambda: False)
    paths = render(standard_run(tmp_path / "run"))
    assert "parquet" not in paths
    assert not (tmp_path / "run" / "timeseries.parquet").exists()


def test_axis_ticks_are_round_numbers() -> None:
    assert nice_step(100, 5) == 20
    assert nice_step(7, 3) == 5
    assert ticks(-20.3, 40, 6) == [-20, 0, 20, 40]
    assert ticks(0, 100, 5) == [0, 20, 40, 60, 80, 100]
    assert ticks(0, 0.9, 3) == [0, 0.5]


def _check(phase: str, name: str, **result: Any) -> dict[str, Any]:
    entry = {"phase": phase, "name": name, "ok": True, "checked": 40, "violations": [],
             "details": {}, "error": None, "seconds": 0.2}  # fmt: skip
    return entry | result


def test_a_systems_invariants_are_shown_per_trial_and_cost_as_lost_orders(tmp_path: Path) -> None:
    held = [_check("before", "no-lost-writes"), _check("after", "no-lost-writes")]
    broken = [
        _check("before", "no-lost-writes"),
        _check("after", "no-lost-writes", ok=False,
               violations=[{"what": "write 17 acknowledged, <lost>"}, {"what": "write 18"}]),
        _check("after", "balances", ok=False, checked=None, error="timed out after 60 s"),
    ]  # fmt: skip
    specs = [
        TrialSpec(ledger=False, invariants=held),
        TrialSpec(trial=2, ledger=False, status="failed", invariants=broken, offset=100,
                  reasons=["invariant no-lost-writes: 40 checked, 2 violations"]),
    ]  # fmt: skip
    out = render(write_run(tmp_path / "run", specs, slos=[]))
    summary = json.loads(out["summary"].read_text())
    trials = summary["experiments"][0]["trials"]
    assert trials[1]["invariants"][1] == {
        "phase": "after",
        "name": "no-lost-writes",
        "ok": False,
        "checked": 40,
        "violations": 2,
        "error": None,
        "first_violation": "write 17 acknowledged, <lost>",
    }
    assert summary["score"]["lost_orders"] == 2  # each violation counts as a lost order

    html = out["html"].read_text()
    assert html.count("<h4>Invariants</h4>") == 2 and "<h4>Ledger</h4>" not in html
    assert "write 17 acknowledged, &lt;lost&gt;" in html and "timed out after 60 s" in html

    markdown = out["markdown"].read_text()
    assert "Invariant checks: 3 held, 1 found violations, 1 errored." in markdown
    assert "- pod-kill trial 2: after balances: errored: timed out after 60 s" in markdown

    cases = list(ET.parse(out["junit"]).getroot().iter("testcase"))
    system_out = cases[1].find("system-out")
    assert system_out is not None and system_out.text is not None
    assert "invariant after no-lost-writes: 40 checked, 2 violations (first: write 17" in (
        system_out.text
    )
