"""The raw per-second time series of every trial in one long table, for pandas users.

Columns: ``experiment``, ``trial``, then what ``chaoskit.load.timeseries.write_timeseries``
writes (``t`` epoch second, ``endpoint``, ``rps``, ``failures_per_s``, ``p50_ms``,
``p95_ms``, ``p99_ms``, ``users``), plus ``t_rel``: seconds since the trial's injection
(empty without one). Written as ``timeseries.csv``, and as ``timeseries.parquet`` when
pyarrow is installed (``pip install 'chaoskit[parquet]'``).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pandas as pd

from chaoskit.report.rundir import Run
from chaoskit.results import Summary

logger = logging.getLogger(__name__)

CSV_FILE = "timeseries.csv"
PARQUET_FILE = "timeseries.parquet"
LEADING = ["experiment", "trial", "t", "t_rel", "endpoint"]


def long_frame(run: Run, summary: Summary) -> pd.DataFrame:
    """Every trial's series, stacked; ordered by experiment (run order), trial, t, endpoint."""
    injected = {
        (e.name, t.trial): t.fault.injected_at for e in summary.experiments for t in e.trials
    }
    parts = []
    for order, experiment in enumerate(run.experiments):
        for trial in run.trials_of(experiment):
            frame = trial.frame
            if frame is None or frame.empty:
                continue
            long = frame.stack(level="endpoint", future_stack=True).reset_index()
            long.insert(0, "trial", trial.number)
            long.insert(0, "experiment", experiment)
            long["_order"] = order
            at = injected.get((experiment, trial.number))
            long["t_rel"] = (long["t"] - at).round(3) if at is not None else float("nan")
            parts.append(long)
    if not parts:
        return pd.DataFrame(columns=LEADING)
    table = pd.concat(parts, ignore_index=True)
    table = table.sort_values(["_order", "trial", "t", "endpoint"], kind="stable")
    columns = [*LEADING, *(c for c in table.columns if c not in (*LEADING, "_order"))]
    return table[columns].reset_index(drop=True)


def parquet_available() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def write_series(run: Run, summary: Summary, out: Path) -> dict[str, Path]:
    """timeseries.csv, and timeseries.parquet where pyarrow is importable."""
    table = long_frame(run, summary)
    paths = {"timeseries": out / CSV_FILE}
    table.to_csv(paths["timeseries"], index=False)
    if parquet_available():
        paths["parquet"] = out / PARQUET_FILE
        table.to_parquet(paths["parquet"], index=False)
    else:
        logger.info(
            "pyarrow is not installed: no %s (pip install 'chaoskit[parquet]')", PARQUET_FILE
        )
    return paths
