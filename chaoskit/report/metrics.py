"""Figures of one trial: its fault window, the load during it, recovery by component.

The **fault window** runs from the first injection to the moment the desired state held
again (``recovered_at``). Load figures over it are taken from the per-second frame
(whole epoch seconds; a second counts when it overlaps the window) and its p99 from the
latency histograms of the same seconds (every request in the window), padded by a
:class:`Pad` (by default nothing before the injection and 5 s after the recovery, where
clients still see the tail of the fault). A fault that never recovered has an open
window: it runs to the end of the load.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from chaoskit.load.timeseries import AGGREGATED, Latency
from chaoskit.results import FaultWindow, RunResults, Spread, TrialResult, number


@dataclass(frozen=True)
class Pad:
    """Seconds added to the fault window before the injection and after the recovery."""

    before_s: float = 0.0
    after_s: float = 5.0

    def to_dict(self) -> dict[str, float]:
        return {"before_s": self.before_s, "after_s": self.after_s}


DEFAULT_PAD = Pad()


_number = number

Fault = FaultWindow
"""When the fault hit and when the desired state was back (the one model, in
:mod:`chaoskit.results`)."""


def trial_fault(trial: TrialResult | None, run: RunResults) -> Fault:
    """trial.json's ``fault`` if the runner wrote one, else derived from result.json."""
    if trial is not None and trial.fault.injected_at is not None:
        return trial.fault
    return run.fault_window()


def fault_of(trial: Mapping[str, Any], chaoskit: Mapping[str, Any]) -> Fault:
    """:func:`trial_fault` of trial.json's and result.json's documents."""
    return trial_fault(TrialResult.from_dict(trial), RunResults.from_dict(chaoskit))


@dataclass(frozen=True)
class WindowLoad:
    """What clients saw over a window of the per-second frame."""

    start: float
    end: float
    open: bool
    """The fault never recovered: the window runs to the end of the load."""
    seconds: int
    requests: float
    failures: float
    p99_ms: float | None
    """The p99 of every request in the window (from the latency histograms); without
    histograms, the worst second's (an upper bound of it)."""
    peak_rps: float
    worst_second_p99_ms: float | None = None
    """The highest p99 of a single second of the window."""
    p99_from_requests: bool = False
    """Whether ``p99_ms`` was taken from the requests (else it is the worst second's)."""

    @property
    def error_rate_pct(self) -> float | None:
        return None if self.requests <= 0 else 100.0 * self.failures / self.requests

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "open": self.open,
            "seconds": self.seconds,
            "requests": int(self.requests),
            "failures": int(self.failures),
            "error_rate_pct": self.error_rate_pct,
            "p99_ms": self.p99_ms,
            "worst_second_p99_ms": self.worst_second_p99_ms,
            "p99_basis": "requests" if self.p99_from_requests else "worst second",
            "peak_rps": self.peak_rps,
        }


def window_bounds(fault: Fault, frame: pd.DataFrame | None, pad: Pad) -> tuple[float, float, bool]:
    """(start, end, open) of the padded fault window; needs ``fault.injected_at``."""
    assert fault.injected_at is not None
    start = fault.injected_at - pad.before_s
    if fault.recovered_at is not None:
        return start, fault.recovered_at + pad.after_s, False
    last = float(frame.index.max()) + 1 if frame is not None and len(frame.index) else start
    return start, max(last, start), True


def window_load(
    frame: pd.DataFrame,
    fault: Fault,
    pad: Pad = DEFAULT_PAD,
    endpoint: str = AGGREGATED,
    latency: Latency | None = None,
) -> WindowLoad | None:
    """The load over the padded fault window, or None (no injection, no such endpoint).

    The p99 is taken over every request of the window from ``latency``; without it (a
    locustfile that does not record histograms), the worst second's p99 stands in.
    """
    if fault.injected_at is None or (endpoint, "rps") not in frame.columns:
        return None
    start, end, is_open = window_bounds(fault, frame, pad)
    seconds = frame.index.to_numpy()
    rows = frame[(seconds >= math.floor(start)) & (seconds <= math.floor(end))]
    if rows.empty:
        return WindowLoad(start, end, is_open, 0, 0.0, 0.0, None, 0.0)
    p99 = rows[(endpoint, "p99_ms")].dropna() if (endpoint, "p99_ms") in rows else pd.Series()
    worst = float(p99.max()) if len(p99) else None
    over_requests = None
    if latency is not None:
        first, last = int(rows.index.min()), int(rows.index.max())
        over_requests = latency.percentile(endpoint, first, last, 0.99)
    return WindowLoad(
        start=start,
        end=end,
        open=is_open,
        seconds=len(rows),
        requests=float(rows[(endpoint, "rps")].sum()),
        failures=float(rows[(endpoint, "failures_per_s")].sum()),
        p99_ms=over_requests if over_requests is not None else worst,
        peak_rps=float(rows[(endpoint, "rps")].max()),
        worst_second_p99_ms=worst,
        p99_from_requests=over_requests is not None,
    )


# --------------------------------------------------------------------------- recovery

COMPONENTS: dict[str, str] = {
    "controller_manager": "controller manager (pod deleted → replacement created)",
    "scheduler": "scheduler (created → bound)",
    "kubelet": "kubelet (bound → Ready)",
    "endpoints": "endpoints (Ready → endpoint ready)",
    "pod_total": "replacement pod Ready and serving",
    "container_restart": "container restarted",
    "container_ready": "container's pod Ready again",
    "component_restart": "control-plane component restarted",
    "component_ready": "control-plane component Ready",
    "node_not_ready": "node seen NotReady",
    "node_ready": "node Ready again",
    "api_outage": "API unavailable (total)",
    "desired_state": "desired state back",
}
"""Recovery figures by component, in the order reports show them, with their meaning."""


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def recovery_breakdown(run: RunResults) -> dict[str, float]:
    """Seconds by component (keys of :data:`COMPONENTS`) over all of a run's injections:
    medians over the replaced pods, containers, components and nodes; the API outage
    summed; the desired state the latest. Components without data are left out."""
    pods: list[Mapping[str, Any]] = []
    containers: list[Mapping[str, Any]] = []
    components: list[Mapping[str, Any]] = []
    nodes: list[Mapping[str, Any]] = []
    outage = 0.0
    outages = 0
    back: list[float] = []
    for recovery in run.recovery:
        rec = recovery.detail
        pods += [p for p in rec.get("pods") or [] if p.get("replacement")]
        containers += list(rec.get("containers") or [])
        components += list(rec.get("components") or [])
        nodes += list(rec.get("nodes") or [])
        for item in rec.get("api_outages") or []:
            seconds = _number(item.get("seconds"))
            if seconds is not None:
                outage += seconds
                outages += 1
        if recovery.recovered_after_s is not None:
            back.append(recovery.recovered_after_s)

    def phase(key: str) -> float | None:
        return _median(_number((p.get("phases") or {}).get(key)) for p in pods)

    def pick(items: list[Mapping[str, Any]], *keys: str) -> float | None:
        """The first of ``keys`` each item has (e.g. Ready after rollback, else Ready)."""
        values = []
        for item in items:
            found = [v for k in keys if (v := _number(item.get(k))) is not None]
            values.append(found[0] if found else None)
        return _median(values)

    figures = {
        "controller_manager": phase("controller_manager"),
        "scheduler": phase("scheduler"),
        "kubelet": phase("kubelet"),
        "endpoints": phase("endpoints"),
        "pod_total": _median(_number(p.get("total")) for p in pods),
        "container_restart": pick(containers, "restarted"),
        "container_ready": pick(containers, "ready"),
        "component_restart": pick(components, "restarted"),
        "component_ready": pick(components, "ready_after_rollback", "ready"),
        "node_not_ready": pick(nodes, "not_ready"),
        "node_ready": pick(nodes, "ready_after_rollback", "ready"),
        "api_outage": round(outage, 3) if outages else None,
        "desired_state": max(back) if back else None,
    }
    return {k: v for k, v in figures.items() if v is not None}


def spread(values: Iterable[float | None]) -> Spread:
    """min, median, max and how many values there were (None where there were none)."""
    present = sorted(v for v in values if v is not None)
    if not present:
        return Spread()
    return Spread(present[0], round(statistics.median(present), 3), present[-1], len(present))
