"""The p99 SLO is the p99 of every request in the fault window (merged histograms), not the
worst single second's p99; that one is named separately."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaoskit.load.timeseries import read_seconds, write_timeseries
from chaoskit.report.slo import evaluate_trial

T0 = 1_700_000_000
SECONDS = 60
INJECTED = T0 + 10
RECOVERED = T0 + 40


def _trial(tmp_path: Path, slow_per_second: dict[int, dict[int, int]], *, records: bool) -> Path:
    """A trial whose every second has 100 requests at 50 ms, but for ``slow_per_second``:
    {second offset: {ms: count}} replacing as many fast ones."""
    folder = tmp_path / "trials" / "pod-kill" / "1"
    load = folder / "load"
    load.mkdir(parents=True)
    lines: list[dict[str, Any]] = []
    for offset in range(SECONDS):
        slow = slow_per_second.get(offset, {})
        times = {"50": 100 - sum(slow.values()), **{str(ms): n for ms, n in slow.items()}}
        lines.append(
            {"t": T0 + offset, "type": "GET", "name": "/products", "count": 100,
             "failures": 0, "times": times}
        )  # fmt: skip
    seconds = load / "seconds-host-1.jsonl"
    seconds.write_text("".join(json.dumps(line) + "\n" for line in lines))
    write_timeseries(read_seconds([seconds]).timeseries, load / "timeseries.csv")
    if not records:
        seconds.unlink()
    trial = {
        "experiment": "pod-kill",
        "status": "passed",
        "fault": {"injected_at": INJECTED, "recovered_at": RECOVERED, "recovery_s": 30},
    }
    (folder / "trial.json").write_text(json.dumps(trial))
    return folder


P99 = [{"name": "p99", "kind": "p99_ms", "threshold": 1000}]


def test_one_slow_second_does_not_decide_the_windows_p99(tmp_path: Path) -> None:
    # 5 slow requests of the window's ~3,600: 0.14 %, below the 1 % a p99 allows
    folder = _trial(tmp_path, {20: {5000: 5}}, records=True)
    [result] = evaluate_trial(folder, P99, None)
    assert result["status"] == "pass", result
    assert result["value"] == 50
    assert result["worst_second_p99_ms"] == 5000
    assert "p99 of" in result["reason"] and "requests" in result["reason"]


def test_slow_requests_spread_over_the_window_fail_it(tmp_path: Path) -> None:
    # 2 % of every second's requests slow: each second's p99 and the window's are slow
    folder = _trial(tmp_path, {s: {2000: 2} for s in range(SECONDS)}, records=True)
    [result] = evaluate_trial(folder, P99, None)
    assert result["status"] == "fail" and result["value"] == 2000


def test_timeouts_in_the_window_fail_a_p99_below_the_timeout(tmp_path: Path) -> None:
    # a fifth of the window's requests timed out, recorded at the full 10 s
    folder = _trial(tmp_path, {s: {10000: 20} for s in range(10, 17)}, records=True)
    [result] = evaluate_trial(folder, [{"kind": "p99_ms", "threshold": 9900}], None)
    assert result["status"] == "fail" and result["value"] == 10000


def test_without_histograms_the_worst_second_stands_in_and_says_so(tmp_path: Path) -> None:
    folder = _trial(tmp_path, {20: {5000: 5}}, records=False)
    [result] = evaluate_trial(folder, P99, None)
    assert result["status"] == "fail" and result["value"] == 5000
    assert "worst second" in result["reason"] and "no latency histograms" in result["reason"]
