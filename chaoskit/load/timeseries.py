"""Per-second load statistics as a pandas DataFrame, on the harness's wall clock.

The frame is indexed by ``t``, whole epoch seconds (``time.time()`` of this machine, the
clock the fault timeline uses), one row for every second of the run. Its columns are
``(endpoint, metric)`` pairs: each endpoint (``"POST /orders"``, ...) and ``"Aggregated"``
have ``rps``, ``failures_per_s``, ``p50_ms``, ``p95_ms`` and ``p99_ms``; ``"Aggregated"``
also has ``users``. A second without requests has rates of 0 and no percentiles (NaN).

Two sources give such a frame:

- :func:`read_seconds`: the per-second records chaoskit's profiles write from Locust's
  ``request`` event in every Locust process; requests are counted in the second they
  completed, so the frame is exact to the second, in distributed mode too.
- :func:`read_locust_history`: Locust's own ``--csv-full-history`` file, for locustfiles that
  do not write those records. Rates come from the differences of its cumulative counts (exact
  per interval); its percentiles are Locust's, over a sliding window of about ten seconds.

A percentile over several seconds cannot be had from per-second percentiles; it is taken
from the requests themselves: :func:`read_latency` keeps the per-second histograms of the
profiles' records (fixed buckets, each named by its upper bound in ms) and
:meth:`Latency.percentile` merges them over any span of seconds.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

AGGREGATED = "Aggregated"
RATES = ("rps", "failures_per_s")
PERCENTILES = {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}
METRICS = (*RATES, *PERCENTILES)
USERS = "users"


def endpoint_name(method: str, name: str) -> str:
    """How an endpoint is named in the frame: Locust's request type and name."""
    return f"{method} {name}".strip()


def percentile(histogram: Mapping[int, int], fraction: float) -> float:
    """The nearest-rank percentile of response times given as {milliseconds: count}."""
    total = sum(histogram.values())
    if total == 0:
        return math.nan
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return float(max(histogram))


@dataclass
class _Bucket:
    count: int = 0
    failures: int = 0
    times: Counter[int] = field(default_factory=Counter)

    def add(self, record: Mapping[str, Any]) -> None:
        self.count += int(record["count"])
        self.failures += int(record["failures"])
        for ms, n in record["times"].items():
            self.times[round(float(ms))] += int(n)

    def merge(self, other: _Bucket) -> None:
        self.count += other.count
        self.failures += other.failures
        self.times.update(other.times)


def _records(path: Path) -> Iterable[dict[str, Any]]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            # A process killed mid-write leaves half a line; the rest of the file is good.
            logger.warning("%s:%d: skipped a line that is not JSON", path, number)
            continue
        if isinstance(record, dict) and "t" in record:
            yield record


@dataclass(frozen=True)
class EndpointStats:
    """Whole-run figures for one endpoint (or ``Aggregated``)."""

    endpoint: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class LoadStats:
    """What a run's statistics say: the per-second frame and the whole-run figures."""

    timeseries: pd.DataFrame
    endpoints: tuple[EndpointStats, ...]
    """One entry per endpoint, ``Aggregated`` last."""

    @property
    def total(self) -> EndpointStats:
        return self.endpoints[-1]


@dataclass(frozen=True)
class Latency:
    """Response-time histograms ({ms: requests}) by endpoint (and ``Aggregated``) and second."""

    histograms: Mapping[str, Mapping[int, Mapping[int, int]]]

    def merged(self, endpoint: str, first: int, last: int) -> Counter[int]:
        """Every request of ``endpoint`` completed in seconds ``first`` to ``last``."""
        total: Counter[int] = Counter()
        for second, histogram in self.histograms.get(endpoint, {}).items():
            if first <= second <= last:
                total.update(histogram)
        return total

    def percentile(self, endpoint: str, first: int, last: int, fraction: float) -> float | None:
        """The percentile over all those requests; None when there were none."""
        value = percentile(self.merged(endpoint, first, last), fraction)
        return None if math.isnan(value) else value


def read_latency(paths: Iterable[Path]) -> Latency | None:
    """The histograms of the profiles' per-second records; None when there are none."""
    histograms: dict[str, dict[int, Counter[int]]] = defaultdict(lambda: defaultdict(Counter))
    for path in paths:
        for record in _records(path):
            if USERS in record:
                continue
            try:
                second = int(record["t"])
                endpoint = endpoint_name(str(record["type"]), str(record["name"]))
                times = {round(float(ms)): int(n) for ms, n in record["times"].items()}
            except (KeyError, TypeError, ValueError, AttributeError):
                continue  # read_seconds warns about it
            histograms[endpoint][second].update(times)
            histograms[AGGREGATED][second].update(times)
    if not histograms:
        return None
    return Latency({e: dict(by_second) for e, by_second in histograms.items()})


def read_seconds(paths: Iterable[Path]) -> LoadStats:
    """Merges the per-second records of every Locust process of a run."""
    buckets: dict[tuple[int, str], _Bucket] = defaultdict(_Bucket)
    users: Counter[int] = Counter()
    for path in paths:
        for record in _records(path):
            second = int(record["t"])
            if USERS in record:
                users[second] += int(record[USERS])
                continue
            try:
                endpoint = endpoint_name(str(record["type"]), str(record["name"]))
                buckets[second, endpoint].add(record)
                buckets[second, AGGREGATED].add(record)
            except (KeyError, TypeError, ValueError, AttributeError):
                logger.warning("%s: skipped a malformed record: %s", path, record)

    data: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    whole_run: dict[str, _Bucket] = defaultdict(_Bucket)
    for (second, endpoint), bucket in buckets.items():
        data[endpoint, "rps"][second] = bucket.count
        data[endpoint, "failures_per_s"][second] = bucket.failures
        for metric, fraction in PERCENTILES.items():
            data[endpoint, metric][second] = percentile(bucket.times, fraction)
        whole_run[endpoint].merge(bucket)
    data[AGGREGATED, USERS] = {second: float(n) for second, n in users.items()}
    busy = [s for s, _ in buckets]
    span = max(busy) - min(busy) + 1 if busy else 1
    names = _endpoint_order(whole_run)
    endpoints = tuple(
        EndpointStats(
            endpoint=name,
            requests=whole_run[name].count,
            failures=whole_run[name].failures,
            rps=whole_run[name].count / span,
            p50_ms=percentile(whole_run[name].times, 0.50),
            p95_ms=percentile(whole_run[name].times, 0.95),
            p99_ms=percentile(whole_run[name].times, 0.99),
        )
        for name in names
    )
    return LoadStats(_frame(data, busy + list(users)), endpoints)


def _endpoint_order(endpoints: Iterable[str]) -> list[str]:
    """Endpoints by name, ``Aggregated`` last (as Locust lists them)."""
    return [*sorted(set(endpoints) - {AGGREGATED}), AGGREGATED]


def _columns(endpoints: Iterable[str]) -> list[tuple[str, str]]:
    return [(e, m) for e in _endpoint_order(endpoints) for m in METRICS] + [(AGGREGATED, USERS)]


def _frame(data: Mapping[tuple[str, str], Mapping[int, float]], seconds: list[int]) -> pd.DataFrame:
    """Every second from the first to the last; rates 0 and users carried where missing."""
    if seconds:
        index = pd.RangeIndex(min(seconds), max(seconds) + 1, name="t")
    else:
        index = pd.RangeIndex(0, name="t")
    columns = _columns(e for e, _ in data)
    frame = pd.DataFrame(
        {col: pd.Series(data.get(col, {}), dtype=float) for col in columns}, index=index
    )
    frame.columns = pd.MultiIndex.from_tuples(columns, names=["endpoint", "metric"])
    rate_columns = [c for c in columns if c[1] in RATES]
    frame[rate_columns] = frame[rate_columns].fillna(0.0)
    frame[(AGGREGATED, USERS)] = frame[(AGGREGATED, USERS)].ffill().fillna(0.0)
    return frame


def read_locust_history(path: Path) -> pd.DataFrame:
    """Locust's ``*_stats_history.csv`` (written with ``--csv-full-history``) as a frame."""
    raw = pd.read_csv(path, na_values=["N/A"], keep_default_na=False)
    if raw.empty:
        return _frame({}, [])
    is_total = (raw["Name"] == AGGREGATED) & (raw["Type"].fillna("") == "")
    raw["endpoint"] = [
        AGGREGATED if total else endpoint_name(str(kind), str(name))
        for total, kind, name in zip(is_total, raw["Type"].fillna(""), raw["Name"], strict=True)
    ]
    data: dict[tuple[str, str], dict[int, float]] = {}
    seconds: list[int] = []
    for endpoint, group in raw.groupby("endpoint", sort=False):
        rows = group.drop_duplicates("Timestamp", keep="last").set_index("Timestamp").sort_index()
        elapsed = pd.Series(rows.index, index=rows.index).diff().fillna(1.0)
        for metric, column in (
            ("rps", "Total Request Count"),
            ("failures_per_s", "Total Failure Count"),
        ):
            counts = rows[column].astype(float)
            data[str(endpoint), metric] = (counts.diff().fillna(counts) / elapsed).to_dict()
        for metric, fraction in PERCENTILES.items():
            column = f"{fraction * 100:g}%"
            data[str(endpoint), metric] = rows[column].astype(float).to_dict()
        if endpoint == AGGREGATED:
            data[AGGREGATED, USERS] = rows["User Count"].astype(float).to_dict()
        seconds += [int(s) for s in rows.index]
    frame = _frame(data, seconds)
    # Locust writes about once a second; a skipped second shares the rate of the interval
    # it belongs to, which the next row reports.
    rate_columns = [c for c in frame.columns if c[1] in RATES]
    present = frame.index.isin(seconds)
    frame.loc[~present, rate_columns] = math.nan
    frame[rate_columns] = frame[rate_columns].bfill().fillna(0.0)
    return frame


def write_timeseries(frame: pd.DataFrame, path: Path) -> None:
    """Writes the frame as CSV, one row per second and endpoint (long form)."""
    long = frame.stack(level="endpoint", future_stack=True).reset_index()
    long.to_csv(path, index=False)


def read_timeseries(path: Path) -> pd.DataFrame:
    """Reads what :func:`write_timeseries` wrote, back into the wide frame."""
    long = pd.read_csv(path)
    wide = long.set_index(["t", "endpoint"]).unstack("endpoint")
    wide = wide.swaplevel(axis=1)
    present = set(wide.columns)
    frame = wide[[c for c in _columns(e for e, _ in present) if c in present]]
    frame.columns = pd.MultiIndex.from_tuples(list(frame.columns), names=["endpoint", "metric"])
    return frame


def read_locust_stats(path: Path) -> tuple[EndpointStats, ...]:
    """Locust's ``*_stats.csv``: one entry per endpoint, ``Aggregated`` last.

    Locust rewrites it every second while it runs, so the last second may be missing.
    """
    raw = pd.read_csv(path, na_values=["N/A"], keep_default_na=False)
    stats = []
    for row in raw.to_dict("records"):
        kind = "" if pd.isna(row["Type"]) else str(row["Type"])
        name = str(row["Name"])
        stats.append(
            EndpointStats(
                endpoint=AGGREGATED
                if name == AGGREGATED and not kind
                else endpoint_name(kind, name),
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                rps=float(row["Requests/s"]),
                p50_ms=float(row["50%"]),
                p95_ms=float(row["95%"]),
                p99_ms=float(row["99%"]),
            )
        )
    return tuple(stats)


def read_locust(csv_prefix: Path) -> LoadStats:
    """What Locust's own ``--csv PREFIX --csv-full-history`` files say about a run."""
    history = Path(f"{csv_prefix}_stats_history.csv")
    return LoadStats(
        read_locust_history(history), read_locust_stats(Path(f"{csv_prefix}_stats.csv"))
    )
