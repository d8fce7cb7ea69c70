"""The per-second statistics: Locust's history file and chaoskit's per-second records become
one frame, indexed by epoch second, with rates, failures and percentiles per endpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from chaoskit.load.timeseries import (
    AGGREGATED,
    METRICS,
    percentile,
    read_locust,
    read_locust_history,
    read_seconds,
    read_timeseries,
    write_timeseries,
)

DATA = Path(__file__).parent / "data"
T0 = 1_700_000_000


def test_locust_history_becomes_one_row_per_second_on_the_epoch_clock() -> None:
    frame = read_locust_history(DATA / "locust_stats_history.csv")
    assert list(frame.index) == [T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4]
    assert frame.index.name == "t"
    endpoints = list(dict.fromkeys(frame.columns.get_level_values("endpoint")))
    assert endpoints == ["GET /products", "POST /orders", AGGREGATED]
    for endpoint in endpoints:
        assert [m for e, m in frame.columns if e == endpoint][: len(METRICS)] == list(METRICS)


def test_locust_history_rates_come_from_the_cumulative_counts() -> None:
    frame = read_locust_history(DATA / "locust_stats_history.csv")
    total = frame[AGGREGATED]
    # 6 requests by t+1, 16 by t+3 (the row of t+2 is missing: 5/s over both seconds), and
    # of the two rows Locust wrote for t+4 the last one counts.
    assert list(total["rps"]) == [0, 6, 5, 5, 5]
    assert list(total["failures_per_s"]) == [0, 1, 1, 1, 0]
    assert list(frame["GET /products"]["rps"]) == [0, 4, 4, 4, 5]
    assert list(frame["POST /orders"]["rps"]) == [0, 2, 1, 1, 0]
    assert list(total["users"]) == [0, 5, 5, 10, 10]


def test_locust_history_keeps_locust_percentiles_and_na_as_nan() -> None:
    frame = read_locust_history(DATA / "locust_stats_history.csv")
    p95 = frame[(AGGREGATED, "p95_ms")]
    assert math.isnan(p95[T0]) and math.isnan(p95[T0 + 2])
    assert p95[T0 + 1] == 35 and p95[T0 + 3] == 36 and p95[T0 + 4] == 17
    assert frame[("POST /orders", "p99_ms")][T0 + 3] == 38


def test_locust_stats_give_the_whole_run_figures_aggregated_last() -> None:
    stats = read_locust(DATA / "locust")
    assert [e.endpoint for e in stats.endpoints] == ["GET /products", "POST /orders", AGGREGATED]
    assert stats.total.requests == 21 and stats.total.failures == 3
    assert stats.total.rps == 5.0 and stats.total.p95_ms == 17
    assert len(stats.timeseries) == 5


def _write(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_per_second_records_of_several_processes_are_merged(tmp_path: Path) -> None:
    worker_1 = _write(
        tmp_path / "seconds-a-1.jsonl",
        [
            {"t": T0, "type": "POST", "name": "/orders", "count": 2, "failures": 1,
             "times": {"10": 1, "200": 1}},
            {"t": T0 + 2, "type": "GET", "name": "/products", "count": 1, "failures": 0,
             "times": {"5": 1}},
        ],
    )  # fmt: skip
    worker_2 = _write(
        tmp_path / "seconds-b-2.jsonl",
        [
            {"t": T0, "type": "POST", "name": "/orders", "count": 2, "failures": 0,
             "times": {"20": 2}},
        ],
    )  # fmt: skip
    master = _write(
        tmp_path / "seconds-c-3.jsonl", [{"t": T0, "users": 4}, {"t": T0 + 2, "users": 6}]
    )
    stats = read_seconds([worker_1, worker_2, master])
    frame = stats.timeseries
    assert list(frame.index) == [T0, T0 + 1, T0 + 2]
    orders = frame["POST /orders"]
    assert list(orders["rps"]) == [4, 0, 0]
    assert list(orders["failures_per_s"]) == [1, 0, 0]
    assert orders["p50_ms"][T0] == 20 and orders["p99_ms"][T0] == 200
    assert math.isnan(orders["p50_ms"][T0 + 1])
    assert list(frame[AGGREGATED]["rps"]) == [4, 0, 1]
    assert list(frame[AGGREGATED]["users"]) == [4, 4, 6]
    assert stats.total.requests == 5 and stats.total.failures == 1
    assert stats.total.rps == pytest.approx(5 / 3)
    assert [e.endpoint for e in stats.endpoints] == ["GET /products", "POST /orders", AGGREGATED]


def test_a_half_written_last_line_is_skipped(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "seconds-a-1.jsonl",
        [{"t": T0, "type": "GET", "name": "/products", "count": 3, "failures": 0,
          "times": {"7": 3}}],
    )  # fmt: skip
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"t": 17000000')
    stats = read_seconds([path])
    assert stats.total.requests == 3


def test_no_records_give_an_empty_frame(tmp_path: Path) -> None:
    stats = read_seconds([])
    assert stats.timeseries.empty
    assert stats.total.requests == 0


def test_the_frame_survives_a_round_trip_through_csv(tmp_path: Path) -> None:
    frame = read_locust_history(DATA / "locust_stats_history.csv")
    write_timeseries(frame, tmp_path / "timeseries.csv")
    again = read_timeseries(tmp_path / "timeseries.csv")
    assert list(again.columns) == list(frame.columns)
    assert list(again.index) == list(frame.index)
    assert again.fillna(-1).equals(frame.fillna(-1))


@pytest.mark.parametrize(
    ("histogram", "fraction", "expected"),
    [
        ({10: 1}, 0.99, 10),
        ({10: 50, 20: 50}, 0.50, 10),
        ({10: 50, 20: 50}, 0.51, 20),
        ({1: 98, 500: 1, 900: 1}, 0.99, 500),
        ({1: 98, 500: 1, 900: 1}, 0.995, 900),
    ],
)
def test_percentiles_are_nearest_rank(
    histogram: dict[int, int], fraction: float, expected: float
) -> None:
    assert percentile(histogram, fraction) == expected


def test_the_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(percentile({}, 0.5))
