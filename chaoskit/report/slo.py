"""Service level objectives of a suite, checked against each trial.

A suite lists its SLOs under ``slos``; :func:`load_slos` checks them when the suite is
loaded (a bad field is one line naming the file, ``slos[2].threshold`` and the reason) and
:func:`evaluate_trial` checks them against one trial's folder. Kinds:

========== ====================================================== ===========
kind        value                                                  unit
========== ====================================================== ===========
error_rate  failed / all requests over the padded fault window     percent
p99_ms      p99 of every request in that window (histograms)       ms
recovery_s  injection → desired state back (trial.json's fault)    s
lost_orders lost + duplicated + mismatched orders (the ledger)     orders
prometheus  a PromQL range query over the window, aggregated       as queried
========== ====================================================== ===========

Fields: ``name`` (default: the kind), ``kind``, ``threshold`` (``lost_orders``: default 0),
``op`` (``<``, ``<=``, ``>``, ``>=``, ``==``; default ``<=``), ``experiments`` (only these;
default all); ``error_rate``, ``p99_ms`` and ``prometheus`` also ``window`` (``before_s``,
``after_s``: padding of the fault window, default 0 and 5); ``error_rate`` and ``p99_ms``
``endpoint`` (default ``Aggregated``, e.g. ``POST /orders``); ``prometheus`` ``query``
(required), ``aggregate`` (``max``, ``min``, ``mean``, ``last``; default ``max``) and
``step_s`` (default 5).

Every result has a ``status``: ``pass``, ``fail``, or ``error`` when the data to judge is
missing (no load, no ledger, no fault window, Prometheus unreachable): never ``pass``.
A ``p99_ms`` result also names ``worst_second_p99_ms``, the highest p99 of a single second
of the window; it is what ``p99_ms`` is judged on only when the load left no latency
histograms (a locustfile of one's own), as an upper bound of the window's p99.
"""

from __future__ import annotations

import logging
import math
import operator
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast, get_args

from chaoskit.errors import InvalidConfig
from chaoskit.load.timeseries import AGGREGATED
from chaoskit.report.metrics import (
    DEFAULT_PAD,
    Fault,
    Pad,
    WindowLoad,
    trial_fault,
    window_bounds,
    window_load,
)
from chaoskit.report.rundir import Trial
from chaoskit.results import LedgerCounts, RunResults, SLOResult, TrialResult

logger = logging.getLogger(__name__)

Kind = Literal["error_rate", "p99_ms", "recovery_s", "lost_orders", "prometheus"]
Op = Literal["<", "<=", ">", ">=", "=="]
Aggregate = Literal["max", "min", "mean", "last"]
Status = Literal["pass", "fail", "error"]

KINDS: tuple[str, ...] = get_args(Kind)
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}
AGGREGATES: tuple[str, ...] = get_args(Aggregate)
UNITS: dict[str, str] = {
    "error_rate": "%",
    "p99_ms": "ms",
    "recovery_s": "s",
    "lost_orders": "orders",
    "prometheus": "",
}
COMMON_FIELDS = ("name", "kind", "threshold", "op", "experiments")
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "error_rate": ("window", "endpoint"),
    "p99_ms": ("window", "endpoint"),
    "recovery_s": (),
    "lost_orders": (),
    "prometheus": ("window", "query", "aggregate", "step_s"),
}
PROMETHEUS_TIMEOUT = 10.0
"""Seconds one Prometheus query may take."""


@dataclass(frozen=True)
class SLO:
    """One objective, checked (see the module doc for the fields)."""

    name: str
    kind: Kind
    threshold: float
    op: Op = "<="
    experiments: tuple[str, ...] = ()
    window: Pad = DEFAULT_PAD
    endpoint: str = AGGREGATED
    query: str = ""
    aggregate: Aggregate = "max"
    step_s: float = 5.0

    def applies_to(self, experiment: str) -> bool:
        return not self.experiments or experiment in self.experiments

    @property
    def unit(self) -> str:
        return UNITS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """The definition, normalised (what summary.json lists)."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "threshold": self.threshold,
            "op": self.op,
        }
        if self.experiments:
            out["experiments"] = list(self.experiments)
        fields = KIND_FIELDS[self.kind]
        if "window" in fields:
            out["window"] = self.window.to_dict()
        if "endpoint" in fields:
            out["endpoint"] = self.endpoint
        if self.kind == "prometheus":
            out.update(query=self.query, aggregate=self.aggregate, step_s=self.step_s)
        return out

    def describe(self) -> str:
        """``error_rate <= 5 %`` and the like."""
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.kind} {self.op} {self.threshold:g}{unit}"


# --------------------------------------------------------------------------- parsing


def _number(file: Path | str, where: str, value: Any, *, minimum: float | None = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidConfig(file, where, f"must be a number, not {value!r}")
    if math.isnan(value) or math.isinf(value):
        raise InvalidConfig(file, where, f"must be a finite number, not {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidConfig(file, where, f"must be >= {minimum:g}, not {value!r}")
    return float(value)


def _choice(file: Path | str, where: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise InvalidConfig(file, where, f"must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def _string(file: Path | str, where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidConfig(file, where, "must be a non-empty string")
    return value.strip()


def _window(file: Path | str, where: str, value: Any) -> Pad:
    if not isinstance(value, Mapping):
        raise InvalidConfig(file, where, "must be a mapping with before_s and/or after_s")
    for key in value:
        if key not in ("before_s", "after_s"):
            raise InvalidConfig(file, f"{where}.{key}", "unknown field (known: after_s, before_s)")
    return Pad(
        before_s=_number(file, f"{where}.before_s", value.get("before_s", DEFAULT_PAD.before_s)),
        after_s=_number(file, f"{where}.after_s", value.get("after_s", DEFAULT_PAD.after_s)),
    )


def parse_slo(file: Path | str, where: str, raw: Any) -> SLO:
    """One SLO from its suite entry; InvalidConfig names ``where`` and the field."""
    if not isinstance(raw, Mapping):
        raise InvalidConfig(file, where, f"must be a mapping, not {type(raw).__name__}")
    kind = cast(Kind, _choice(file, f"{where}.kind", raw.get("kind"), KINDS))
    known = (*COMMON_FIELDS, *KIND_FIELDS[kind])
    for key in raw:
        if key not in known:
            raise InvalidConfig(
                file, f"{where}.{key}", f"unknown field for kind {kind} (known: {', '.join(known)})"
            )
    name = _string(file, f"{where}.name", raw["name"]) if "name" in raw else kind
    threshold = _threshold(file, f"{where}.threshold", kind, raw)
    op = cast(Op, _choice(file, f"{where}.op", raw.get("op", "<="), tuple(OPS)))
    experiments = raw.get("experiments", [])
    if not isinstance(experiments, list):
        raise InvalidConfig(file, f"{where}.experiments", "must be a list of experiment names")
    names = tuple(_string(file, f"{where}.experiments[{i}]", e) for i, e in enumerate(experiments))
    slo = SLO(name=name, kind=kind, threshold=threshold, op=op, experiments=names)
    return replace(slo, **_kind_fields(file, where, kind, raw))


def _threshold(file: Path | str, where: str, kind: str, raw: Mapping[str, Any]) -> float:
    if "threshold" not in raw:
        if kind == "lost_orders":
            return 0.0
        raise InvalidConfig(file, where, f"is required for kind {kind}")
    threshold = _number(file, where, raw["threshold"], minimum=None)
    if kind != "prometheus" and threshold < 0:
        raise InvalidConfig(file, where, f"must be >= 0, not {threshold:g}")
    if kind == "error_rate" and threshold > 100:
        raise InvalidConfig(file, where, "is a percentage: at most 100")
    return threshold


def _kind_fields(file: Path | str, where: str, kind: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "window" in raw:
        changes["window"] = _window(file, f"{where}.window", raw["window"])
    if "endpoint" in raw:
        changes["endpoint"] = _string(file, f"{where}.endpoint", raw["endpoint"])
    if kind == "prometheus":
        if "query" not in raw:
            raise InvalidConfig(file, f"{where}.query", "is required for kind prometheus")
        changes["query"] = _string(file, f"{where}.query", raw["query"])
        changes["aggregate"] = _choice(
            file, f"{where}.aggregate", raw.get("aggregate", "max"), AGGREGATES
        )
        step = _number(file, f"{where}.step_s", raw.get("step_s", 5.0))
        if step <= 0:
            raise InvalidConfig(file, f"{where}.step_s", "must be > 0")
        changes["step_s"] = step
    return changes


def load_slos(file: Path | str, raw: Any, field_name: str = "slos") -> tuple[SLO, ...]:
    """The suite's SLOs, checked: what the suite runner calls when it loads a suite.

    ``raw`` is the suite's ``slos`` value (None: no SLOs). Raises InvalidConfig naming
    ``file``, ``slos[i].field`` and the reason.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise InvalidConfig(file, field_name, f"must be a list, not {type(raw).__name__}")
    slos: list[SLO] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        slo = parse_slo(file, f"{field_name}[{i}]", item)
        if slo.name in seen:
            raise InvalidConfig(
                file, f"{field_name}[{i}].name", f"{slo.name!r} is used twice (names are unique)"
            )
        seen.add(slo.name)
        slos.append(slo)
    return tuple(slos)


def validate_slos(file: Path | str, field_name: str, raw: Any) -> tuple[SLO, ...]:
    """:func:`load_slos` with the field first (``experiments[3].slos``), as the runner
    checks a suite's own SLOs and each experiment's."""
    return load_slos(file, raw, field_name)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Outcome:
    status: Status
    value: float | None = None
    reason: str = ""
    details: Mapping[str, float | None] = field(default_factory=dict)
    """Figures of the kind beside the judged value (``p99_ms``: the worst second's)."""


@dataclass
class _Facts:
    """What one trial offers to judge SLOs with (read once for all of them)."""

    trial: Trial
    record: TrialResult
    """trial.json."""
    run: RunResults
    """What chaoskit added to result.json."""
    fault: Fault
    prometheus_url: str | None
    timeout: float
    notes: dict[str, str] = field(default_factory=dict)


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _judge(slo: SLO, value: float, basis: str) -> Outcome:
    unit = f" {slo.unit}" if slo.unit else ""
    if OPS[slo.op](value, slo.threshold):
        return Outcome("pass", value, basis)
    return Outcome(
        "fail", value, f"{_fmt(value)}{unit} is not {slo.op} {slo.threshold:g}{unit} ({basis})"
    )


def _no_window(facts: _Facts) -> str:
    if facts.trial.result is None:
        return "no fault window: the experiment left no result"
    return "no fault window: no fault was injected"


def _window_load(slo: SLO, facts: _Facts) -> tuple[WindowLoad | None, str]:
    """The load over the SLO's window, or None and why it cannot be judged."""
    frame = facts.trial.frame
    if frame is None:
        return None, facts.trial.frame_problem
    if facts.fault.injected_at is None:
        return None, _no_window(facts)
    if (slo.endpoint, "rps") not in frame.columns:
        return None, f"no endpoint {slo.endpoint!r} in the load time series"
    load = window_load(frame, facts.fault, slo.window, slo.endpoint, facts.trial.latency)
    assert load is not None
    if load.requests <= 0:
        return None, f"no requests in the fault window ({_span(load)})"
    return load, ""


def _span(load: WindowLoad) -> str:
    return f"{load.seconds} s window" + (", fault never recovered" if load.open else "")


def _error_rate_slo(slo: SLO, facts: _Facts) -> Outcome:
    load, why = _window_load(slo, facts)
    if load is None or load.error_rate_pct is None:
        return Outcome("error", reason=why)
    basis = f"{int(load.failures)} of {int(load.requests)} requests failed, {_span(load)}"
    return _judge(slo, round(load.error_rate_pct, 3), basis)


def _p99_slo(slo: SLO, facts: _Facts) -> Outcome:
    load, why = _window_load(slo, facts)
    if load is None:
        return Outcome("error", reason=why)
    if load.p99_ms is None:
        return Outcome("error", reason=f"no latency recorded in the fault window ({_span(load)})")
    if load.p99_from_requests:
        basis = f"p99 of {int(load.requests)} requests, {_span(load)}"
    else:
        basis = f"worst second of the {_span(load)} (the load recorded no latency histograms)"
    judged = _judge(slo, load.p99_ms, basis)
    return replace(judged, details={"worst_second_p99_ms": load.worst_second_p99_ms})


def _recovery_slo(slo: SLO, facts: _Facts) -> Outcome:
    if facts.fault.injected_at is None:
        return Outcome("error", reason=_no_window(facts))
    recovery = facts.fault.recovery_s
    if recovery is None:
        if not facts.run.injections:
            # trial.json says when the fault hit, but nothing recorded what followed.
            return Outcome("error", reason="recovery was not measured (no chaoskit results)")
        return Outcome("fail", reason="the desired state did not come back")
    return _judge(slo, recovery, "injection to desired state back")


def _lost_orders_slo(slo: SLO, facts: _Facts) -> Outcome:
    if facts.record.ledger is None:
        error = facts.record.ledger_error
        return Outcome("error", reason=f"no ledger ({error})" if error else "no ledger")
    ledger = LedgerCounts.of(facts.record.ledger)
    basis = (
        f"{ledger.lost_orders or 0} lost, {ledger.duplicated or 0} duplicated, "
        f"{ledger.mismatched or 0} mismatched of {ledger.acknowledged or 0} acknowledged"
    )
    return _judge(slo, float(ledger.lost_total), basis)


def _aggregate(values: list[float], how: str) -> float:
    if how == "max":
        return max(values)
    if how == "min":
        return min(values)
    if how == "mean":
        return statistics.fmean(values)
    return values[-1]


def _prometheus_slo(slo: SLO, facts: _Facts) -> Outcome:
    url = facts.prometheus_url
    if not url:
        return Outcome("error", reason="no Prometheus URL for this trial")
    if facts.fault.injected_at is None:
        return Outcome("error", reason=_no_window(facts))
    ended = facts.record.ended_at
    if facts.fault.recovered_at is None and not ended:
        return Outcome("error", reason="the fault window has no end (not recovered, no end)")
    fault = facts.fault
    if fault.recovered_at is None:
        fault = Fault(fault.injected_at, ended)
    start, end, _ = window_bounds(fault, None, slo.window)
    try:
        series = query_range(url, slo.query, start, end, slo.step_s, timeout=facts.timeout)
    except PrometheusUnavailable as e:
        return Outcome("error", reason=str(e))
    values = [
        v
        for s in series
        for _, raw in s.get("values") or []
        if not math.isnan(v := float(raw)) and not math.isinf(v)
    ]
    if not values:
        return Outcome("error", reason="the query returned no data in the fault window")
    value = _aggregate(values, slo.aggregate)
    basis = f"{slo.aggregate} of {len(values)} samples in {len(series)} series"
    return _judge(slo, round(value, 6), basis)


class PrometheusUnavailable(Exception):
    """Prometheus could not be asked or did not answer the query (an SLO error)."""


def query_range(
    url: str, query: str, start: float, end: float, step_s: float, *, timeout: float
) -> list[dict[str, Any]]:
    """The series of a PromQL range query (``[{"metric": ..., "values": [[t, "v"], ...]}]``)."""
    import requests  # noqa: PLC0415 - only where Prometheus is asked
    from prometheus_api_client import PrometheusConnect  # noqa: PLC0415
    from prometheus_api_client.exceptions import PrometheusApiClientException  # noqa: PLC0415
    from urllib3.util.retry import Retry  # noqa: PLC0415

    connection = PrometheusConnect(
        url=url.rstrip("/"),
        disable_ssl=True,
        retry=Retry(total=1, backoff_factor=0.2, status_forcelist=(502, 503, 504)),
        timeout=math.ceil(timeout),
    )
    try:
        result = connection.custom_query_range(
            query,
            start_time=datetime.fromtimestamp(math.floor(start), tz=UTC),
            end_time=datetime.fromtimestamp(math.ceil(end), tz=UTC),
            step=f"{step_s:g}s",
        )
    except requests.RequestException as e:
        raise PrometheusUnavailable(f"Prometheus at {url} is unreachable: {_short(e)}") from e
    except PrometheusApiClientException as e:
        raise PrometheusUnavailable(f"Prometheus at {url} refused the query: {e}") from e
    except ValueError as e:
        raise PrometheusUnavailable(f"Prometheus at {url} gave no valid answer: {e}") from e
    finally:
        connection.close()
    if not isinstance(result, list):
        raise PrometheusUnavailable(f"Prometheus at {url} answered {type(result).__name__}")
    return [s for s in result if isinstance(s, dict)]


def _short(error: BaseException) -> str:
    """The innermost reason of a requests error, without the retry noise."""
    text = str(error)
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.rsplit(marker, 1)[-1]
    return text.strip("()'\" ")[:200]


EVALUATORS: dict[str, Callable[[SLO, _Facts], Outcome]] = {
    "error_rate": _error_rate_slo,
    "p99_ms": _p99_slo,
    "recovery_s": _recovery_slo,
    "lost_orders": _lost_orders_slo,
    "prometheus": _prometheus_slo,
}


def judged(slo: SLO, outcome: Outcome) -> SLOResult:
    return SLOResult(
        name=slo.name,
        kind=slo.kind,
        status=outcome.status,
        value=outcome.value,
        threshold=slo.threshold,
        op=slo.op,
        reason=outcome.reason,
        details=outcome.details,
    )


def _as_slos(slos: Sequence[SLO | Mapping[str, Any]]) -> list[SLO]:
    return [
        s if isinstance(s, SLO) else parse_slo("run.json", f"slos[{i}]", s)
        for i, s in enumerate(slos)
    ]


def evaluate(
    trial: Trial,
    slos: Sequence[SLO | Mapping[str, Any]],
    prometheus_url: str | None = None,
    *,
    timeout: float = PROMETHEUS_TIMEOUT,
) -> tuple[SLOResult, ...]:
    """The results of the SLOs that apply to ``trial``'s experiment, in their order."""
    record = TrialResult.from_dict(trial.info)
    run = RunResults.from_dict(trial.chaoskit)
    url = prometheus_url or record.prometheus_url or None
    facts = _Facts(trial, record, run, trial_fault(record, run), url, timeout)
    results = []
    for slo in _as_slos(slos):
        if not slo.applies_to(trial.experiment):
            continue
        try:
            outcome = EVALUATORS[slo.kind](slo, facts)
        except Exception as e:  # one SLO's bad data must not hide the others
            logger.debug("SLO %s on %s", slo.name, trial.path, exc_info=True)
            outcome = Outcome("error", reason=f"could not be evaluated: {e}")
        results.append(judged(slo, outcome))
    return tuple(results)


def evaluate_trial(
    trial_dir: Path,
    slos: Sequence[SLO | Mapping[str, Any]],
    prometheus_url: str | None,
    *,
    trial: Mapping[str, Any] | None = None,
    timeout: float = PROMETHEUS_TIMEOUT,
) -> list[dict[str, Any]]:
    """What the suite runner calls after a trial: the SLO results for its trial.json.

    ``trial_dir`` is ``trials/<experiment>/<n>/``; its ``result.json`` and ``load/`` are
    read from there. ``trial`` is the trial.json document (without ``slos``) if the runner
    has not written it yet; else trial.json is read. ``prometheus_url`` None falls back
    to the trial's ``prometheus_url``.
    """
    experiment = trial_dir.parent.name
    number = int(trial_dir.name) if trial_dir.name.isdigit() else 0
    loaded = Trial.read(experiment, number, trial_dir)
    if trial is not None:
        loaded.info = dict(trial)
    if experiment_name := TrialResult.from_dict(loaded.info).experiment:
        loaded.experiment = experiment_name
    return [r.to_dict() for r in evaluate(loaded, slos, prometheus_url, timeout=timeout)]
