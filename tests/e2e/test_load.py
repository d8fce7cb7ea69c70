"""Flash-sale traffic from the host through the ingress, as ``chaoskit load run`` gives it: a
per-second time series on the host's clock and the list of acknowledged orders, which the
integrity ledger reconciles with MySQL."""

from __future__ import annotations

import json
import time
from pathlib import Path

from chaoskit.load.timeseries import AGGREGATED, read_timeseries
from chaoskit.topology.client import OrderRun
from chaoskit.topology.ledger import Ack
from chaoskit.topology.shopdb import ledger
from tests.e2e.harness import Shop, chaoskit


def _orders(out: Path) -> OrderRun:
    summary = json.loads((out / "summary.json").read_text())
    acks = [json.loads(line) for line in (out / "acks.jsonl").read_text().splitlines()]
    return OrderRun(
        run_id=summary["run_id"],
        acks=[Ack(a["idempotency_key"], a["order_id"]) for a in acks],
    )


def test_a_flash_sale_yields_a_time_series_and_orders_the_ledger_reconciles(
    shop: Shop, tmp_path: Path
) -> None:
    out = tmp_path / "flash"
    started = time.time()
    proc = chaoskit(
        "load", "run", "flash_sale", "--host", shop.ingress, "--duration", "40",
        "--users", "30", "--out", str(out),
        timeout=300,
    )  # fmt: skip
    ended = time.time()
    assert proc.returncode == 0, proc.stderr
    assert "acknowledged orders" in proc.stdout

    series = read_timeseries(out / "timeseries.csv")
    # One row per second of the run, on the host's wall clock.
    assert started - 1 <= series.index[0] and series.index[-1] <= ended + 1
    assert len(series) >= 38
    assert list(series.index) == list(range(series.index[0], series.index[-1] + 1))
    for endpoint in ("GET /products", "POST /cart", "POST /orders", AGGREGATED):
        for metric in ("rps", "failures_per_s", "p50_ms", "p95_ms", "p99_ms"):
            assert (endpoint, metric) in series.columns
    users = series[(AGGREGATED, "users")]
    assert users.max() == 30  # the spike: ten times the baseline of 3
    assert users.iloc[2:6].max() <= 3
    assert (series[(AGGREGATED, "rps")] > 0).sum() >= 35

    run = _orders(out)
    assert len(run.acks) > 20
    report = ledger(shop.access, shop.namespace, run)
    assert report.lost_orders == (), report.summary()
    assert report.duplicated == (), report.summary()
    assert report.ok, report.summary()
    print(proc.stdout)


def test_two_distributed_workers_share_the_load(shop: Shop, tmp_path: Path) -> None:
    out = tmp_path / "distributed"
    proc = chaoskit(
        "load", "run", "steady", "--host", shop.ingress, "--duration", "20",
        "--users", "10", "--workers", "2", "--out", str(out),
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # Each worker recorded what its own users did; the master counted the users.
    assert len(list(out.glob("seconds-*.jsonl"))) == 3
    assert len(list(out.glob("acks-*.jsonl"))) == 2
    series = read_timeseries(out / "timeseries.csv")
    assert series[(AGGREGATED, "users")].max() == 10
    run = _orders(out)
    assert run.acks
    report = ledger(shop.access, shop.namespace, run)
    assert report.ok, report.summary()


def test_an_unreachable_target_fails_fast_with_the_url(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = chaoskit(
        "load", "run", "steady", "--host", "http://127.0.0.1:9", "--duration", "30",
        "--out", str(tmp_path / "nothing"),
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "http://127.0.0.1:9/products" in proc.stderr
    assert time.monotonic() - started < 20
    assert not (tmp_path / "nothing").exists()
