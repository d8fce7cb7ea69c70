"""What a run and a trial produce, as typed, frozen models: the one shape every layer reads.

Results travel from the fault session and the timeline (``ctk/context.py``) into a run's
``result.json`` (under ``chaoskit``), from there into a suite trial's ``trial.json``, and
on to the report's summary and the CI gate. Each layer builds or reads these classes
instead of guessing at dictionary keys, so a renamed field is a type error everywhere it
is used. ``to_dict()`` writes the JSON field names the files have always had;
``from_dict()`` reads them back, tolerating fields older run directories lack.

:func:`fault_window` is the one definition of the fault window: from the first injection
to the moment the desired state held again after the last one.

The report's ``summary.json`` is :class:`Summary` (per experiment :class:`ExperimentSummary`,
per trial :class:`TrialSummary`). Unlike the run's files, it is read strictly: a field
older summaries lack takes its default, but a field of the wrong type is an
:class:`~chaoskit.errors.InvalidConfig` naming the file and the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from chaoskit.errors import InvalidConfig

TrialStatus = Literal["passed", "failed", "errored"]
PASSED: TrialStatus = "passed"
FAILED: TrialStatus = "failed"
ERRORED: TrialStatus = "errored"


def number(value: Any) -> float | None:
    """A finite number from JSON, else None (bools and strings are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) or math.isinf(value) else float(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _mappings(value: Any) -> tuple[Mapping[str, Any], ...]:
    return tuple(v for v in value or () if isinstance(v, Mapping))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# --------------------------------------------------------------------------- a run


@dataclass(frozen=True)
class InjectionResult:
    """One fault injected during a run: what, on whom, when, and how to undo it."""

    id: str
    fault: str
    injected_at: float
    """Epoch seconds right before the first victim was hit."""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    seed: str = ""
    victims: tuple[Mapping[str, Any], ...] = ()
    effective_at: float | None = None
    rolled_back_at: float | None = None
    details: tuple[Mapping[str, Any], ...] = ()
    undo: tuple[str, ...] = ()
    """What undoing it does, for people."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fault": self.fault,
            "arguments": dict(self.arguments),
            "seed": self.seed,
            "victims": [dict(v) for v in self.victims],
            "injected_at": self.injected_at,
            "effective_at": self.effective_at,
            "rolled_back_at": self.rolled_back_at,
            "details": [dict(d) for d in self.details],
            "undo": list(self.undo),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> InjectionResult:
        return cls(
            id=_text(raw.get("id")),
            fault=_text(raw.get("fault")),
            injected_at=number(raw.get("injected_at")) or 0.0,
            arguments=_mapping(raw.get("arguments")),
            seed=_text(raw.get("seed")),
            victims=_mappings(raw.get("victims")),
            effective_at=number(raw.get("effective_at")),
            rolled_back_at=number(raw.get("rolled_back_at")),
            details=_mappings(raw.get("details")),
            undo=tuple(str(u) for u in raw.get("undo") or ()),
        )


@dataclass(frozen=True)
class RecoveryResult:
    """How one injection recovered. The timings every layer reads are typed; the
    breakdown by pod, container, component and node stays in ``detail``."""

    recovered_after_s: float | None = None
    """Seconds from the injection until the desired state held again (None: never)."""
    recovered_after_rollback_s: float | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.detail)
        if self.recovered_after_s is not None:
            out["recovered_after_s"] = self.recovered_after_s
        if self.recovered_after_rollback_s is not None:
            out["recovered_after_rollback_s"] = self.recovered_after_rollback_s
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RecoveryResult:
        typed = ("recovered_after_s", "recovered_after_rollback_s")
        return cls(
            recovered_after_s=number(raw.get("recovered_after_s")),
            recovered_after_rollback_s=number(raw.get("recovered_after_rollback_s")),
            detail={k: v for k, v in raw.items() if k not in typed},
        )


@dataclass(frozen=True)
class VerdictResult:
    """One oracle verdict of a run (``before``/``after`` the faults)."""

    name: str
    ok: bool
    problems: tuple[str, ...] = ()
    checked_at: float = 0.0
    waited: float = 0.0
    judged_at: float = 0.0
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "problems": list(self.problems),
            "checked_at": self.checked_at,
            "waited": self.waited,
            "judged_at": self.judged_at,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> VerdictResult:
        return cls(
            name=_text(raw.get("name")),
            ok=raw.get("ok") is True,
            problems=tuple(str(p) for p in raw.get("problems") or ()),
            checked_at=number(raw.get("checked_at")) or 0.0,
            waited=number(raw.get("waited")) or 0.0,
            judged_at=number(raw.get("judged_at")) or 0.0,
            notes=tuple(str(n) for n in raw.get("notes") or ()),
        )


@dataclass(frozen=True)
class RunResults:
    """What chaoskit adds to a run's journal (``result.json`` under ``chaoskit``)."""

    run_id: str
    cluster: str
    context: str = ""
    namespaces: tuple[str, ...] = ()
    seed: str = ""
    started_at: float = 0.0
    desired_state: Mapping[str, Any] | None = None
    injections: tuple[InjectionResult, ...] = ()
    recovery: tuple[RecoveryResult, ...] = ()
    """One per injection, in the same order."""
    verdicts: tuple[VerdictResult, ...] = ()
    timeline: tuple[Mapping[str, Any], ...] = ()
    rollback_error: str = ""
    """Why the rollback at the end of the run failed ('' if it did not)."""
    still_changed: tuple[str, ...] = ()
    """What the failed rollback left changed (undo descriptions from the state file)."""

    @property
    def rolled_back(self) -> bool:
        return not self.rollback_error

    def rollback_problem(self) -> str | None:
        """One line for a failed rollback: what is still changed and how to undo it."""
        if self.rolled_back:
            return None
        left = "; ".join(self.still_changed) or "see the state file"
        return (
            f"rollback failed: {self.rollback_error}; still changed: {left}; "
            f"undo it with 'chaoskit recover --cluster {self.cluster}'"
        )

    def fault_window(self) -> FaultWindow:
        return fault_window(self.injections, self.recovery)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "cluster": self.cluster,
            "context": self.context,
            "namespaces": list(self.namespaces),
            "seed": self.seed,
            "started_at": self.started_at,
            "desired_state": dict(self.desired_state) if self.desired_state else None,
            "injections": [i.to_dict() for i in self.injections],
            "recovery": [r.to_dict() for r in self.recovery],
            "verdicts": [v.to_dict() for v in self.verdicts],
            "timeline": [dict(e) for e in self.timeline],
            "rollback_error": self.rollback_error,
            "still_changed": list(self.still_changed),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunResults:
        desired = raw.get("desired_state")
        return cls(
            run_id=_text(raw.get("run_id")),
            cluster=_text(raw.get("cluster")),
            context=_text(raw.get("context")),
            namespaces=tuple(str(n) for n in raw.get("namespaces") or ()),
            seed=_text(raw.get("seed")),
            started_at=number(raw.get("started_at")) or 0.0,
            desired_state=desired if isinstance(desired, Mapping) else None,
            injections=tuple(
                InjectionResult.from_dict(i) for i in _mappings(raw.get("injections"))
            ),
            recovery=tuple(RecoveryResult.from_dict(r) for r in _mappings(raw.get("recovery"))),
            verdicts=tuple(VerdictResult.from_dict(v) for v in _mappings(raw.get("verdicts"))),
            timeline=_mappings(raw.get("timeline")),
            rollback_error=_text(raw.get("rollback_error")),
            still_changed=tuple(str(c) for c in raw.get("still_changed") or ()),
        )


# --------------------------------------------------------------------------- fault window


@dataclass(frozen=True)
class FaultWindow:
    """When the first fault hit and when the desired state was back (epoch seconds)."""

    injected_at: float | None = None
    recovered_at: float | None = None

    @property
    def recovery_s(self) -> float | None:
        if self.injected_at is None or self.recovered_at is None:
            return None
        return round(self.recovered_at - self.injected_at, 3)

    def to_dict(self) -> dict[str, float | None]:
        return {
            "injected_at": self.injected_at,
            "recovered_at": self.recovered_at,
            "recovery_s": self.recovery_s,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FaultWindow:
        injected = number(raw.get("injected_at"))
        recovered = number(raw.get("recovered_at"))
        if recovered is None and injected is not None:
            recovery = number(raw.get("recovery_s"))
            recovered = injected + recovery if recovery is not None else None
        return cls(injected, recovered)


def fault_window(
    injections: Sequence[InjectionResult], recoveries: Sequence[RecoveryResult]
) -> FaultWindow:
    """From the first injection to the desired state holding again after the last one;
    open (``recovered_at`` None) if any injection did not recover."""
    if not injections:
        return FaultWindow()
    start = min(i.injected_at for i in injections)
    if len(recoveries) < len(injections):
        return FaultWindow(start, None)
    ends: list[float] = []
    for injection, recovery in zip(injections, recoveries, strict=False):
        if recovery.recovered_after_s is None:
            return FaultWindow(start, None)
        ends.append(injection.injected_at + recovery.recovered_after_s)
    return FaultWindow(start, max(ends))


# --------------------------------------------------------------------------- a trial


@dataclass(frozen=True)
class TrialResult:
    """One suite trial as ``trial.json`` holds it."""

    experiment: str
    file: str
    trial: int
    seed: str
    started_at: float
    status: TrialStatus = ERRORED
    reasons: tuple[str, ...] = ()
    ended_at: float | None = None
    fault: FaultWindow = field(default_factory=FaultWindow)
    load: Mapping[str, Any] | None = None
    load_error: str | None = None
    ledger: Mapping[str, Any] | None = None
    ledger_error: str | None = None
    slos: tuple[Mapping[str, Any], ...] = ()
    prometheus_url: str | None = None
    markers: tuple[Mapping[str, Any], ...] = ()
    system_recovered: bool | None = None
    """Whether the system under test still served end to end after this trial, within
    the suite's deadline (None: not checked)."""
    system_check: str | None = None
    """What the end-to-end check after the trial found, when it failed."""
    invariants: tuple[Mapping[str, Any], ...] = ()
    """A system's invariant checks before and after the trial, one entry per check and
    phase: ``phase``, ``name``, ``ok``, ``checked``, ``violations``, ``details``, ``error``
    (why the check gave no result), ``seconds``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "file": self.file,
            "trial": self.trial,
            "seed": self.seed,
            "status": self.status,
            "reasons": list(self.reasons),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "fault": self.fault.to_dict(),
            "load": dict(self.load) if self.load is not None else None,
            "load_error": self.load_error,
            "ledger": dict(self.ledger) if self.ledger is not None else None,
            "ledger_error": self.ledger_error,
            "slos": [dict(s) for s in self.slos],
            "prometheus_url": self.prometheus_url,
            "markers": sorted((dict(m) for m in self.markers), key=lambda m: float(m["t"])),
            "system_recovered": self.system_recovered,
            "system_check": self.system_check,
            "invariants": [dict(i) for i in self.invariants],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TrialResult:
        status = raw.get("status")
        load, ledger = raw.get("load"), raw.get("ledger")
        recovered = raw.get("system_recovered")
        return cls(
            experiment=_text(raw.get("experiment")),
            file=_text(raw.get("file")),
            trial=int(number(raw.get("trial")) or 0),
            seed=_text(raw.get("seed")),
            started_at=number(raw.get("started_at")) or 0.0,
            status=status if status in (PASSED, FAILED, ERRORED) else ERRORED,
            reasons=tuple(str(r) for r in raw.get("reasons") or ()),
            ended_at=number(raw.get("ended_at")),
            fault=FaultWindow.from_dict(_mapping(raw.get("fault"))),
            load=load if isinstance(load, Mapping) else None,
            load_error=raw.get("load_error") if isinstance(raw.get("load_error"), str) else None,
            ledger=ledger if isinstance(ledger, Mapping) else None,
            ledger_error=(
                raw.get("ledger_error") if isinstance(raw.get("ledger_error"), str) else None
            ),
            slos=_mappings(raw.get("slos")),
            prometheus_url=(
                raw.get("prometheus_url") if isinstance(raw.get("prometheus_url"), str) else None
            ),
            markers=tuple(
                m for m in _mappings(raw.get("markers")) if number(m.get("t")) is not None
            ),
            system_recovered=recovered if isinstance(recovered, bool) else None,
            system_check=(
                raw.get("system_check") if isinstance(raw.get("system_check"), str) else None
            ),
            invariants=_mappings(raw.get("invariants")),
        )


# --------------------------------------------------------------------------- the summary

SUMMARY_SCHEMA = "chaoskit.summary/v1"
Verdict = Literal["pass", "fail"]
SLOStatus = Literal["pass", "fail", "error"]
Num = int | float
"""A JSON number as written (a count stays an int)."""


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class _Fields:
    """One JSON object of a summary, read strictly. A missing (or null) field takes its
    default, as older summaries lack the newer fields; a field of the wrong type raises
    InvalidConfig naming ``file`` and the field's path (``experiments[0].trials[1].status``)."""

    def __init__(self, raw: Any, where: str, file: str) -> None:
        if not isinstance(raw, Mapping):
            raise InvalidConfig(file, where or "(document)", f"must be an object, not {_kind(raw)}")
        self.raw: Mapping[str, Any] = raw
        self.where = where
        self.file = file

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def bad(self, key: str, want: str) -> InvalidConfig:
        return InvalidConfig(self.file, self.at(key), f"must be {want}, not {_kind(self.raw[key])}")

    def missing(self, key: str) -> bool:
        return self.raw.get(key) is None

    def required(self, key: str) -> None:
        if self.missing(key):
            raise InvalidConfig(self.file, self.at(key), "is missing")

    def text(self, key: str) -> str | None:
        if self.missing(key):
            return None
        value = self.raw[key]
        if not isinstance(value, str):
            raise self.bad(key, "a string")
        return value

    def num(self, key: str) -> Num | None:
        if self.missing(key):
            return None
        value = self.raw[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.bad(key, "a number")
        return value

    def count(self, key: str) -> int:
        if self.missing(key):
            return 0
        value = self.raw[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.bad(key, "an integer")
        return value

    def flag(self, key: str) -> bool | None:
        if self.missing(key):
            return None
        value = self.raw[key]
        if not isinstance(value, bool):
            raise self.bad(key, "true or false")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.raw.get(key)
        if value not in choices:
            if value is None:
                raise InvalidConfig(self.file, self.at(key), "is missing")
            raise InvalidConfig(
                self.file, self.at(key), f"must be one of {', '.join(choices)}, not {value!r}"
            )
        return str(value)

    def texts(self, key: str) -> tuple[str, ...]:
        if self.missing(key):
            return ()
        value = self.raw[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.bad(key, "a list of strings")
        return tuple(value)

    def obj(self, key: str) -> _Fields:
        return _Fields({} if self.missing(key) else self.raw[key], self.at(key), self.file)

    def optional_obj(self, key: str) -> _Fields | None:
        return None if self.missing(key) else self.obj(key)

    def objs(self, key: str) -> list[_Fields]:
        if self.missing(key):
            return []
        value = self.raw[key]
        if not isinstance(value, list):
            raise self.bad(key, "a list")
        return [_Fields(v, f"{self.at(key)}[{i}]", self.file) for i, v in enumerate(value)]

    def mapping(self, key: str) -> Mapping[str, Any]:
        """An object kept as it is (what run.json said about the suite, say)."""
        return self.obj(key).raw

    def numbers(self, key: str) -> dict[str, float]:
        fields = self.obj(key)
        out: dict[str, float] = {}
        for name in fields.raw:
            value = fields.num(name)
            if value is None:
                raise fields.bad(name, "a number")
            out[str(name)] = value
        return out


@dataclass(frozen=True)
class Spread:
    """min, median and max of a figure over an experiment's trials, and how many had it."""

    min: Num | None = None
    median: Num | None = None
    max: Num | None = None
    n: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"min": self.min, "median": self.median, "max": self.max, "n": self.n}

    @classmethod
    def read(cls, doc: _Fields) -> Spread:
        return cls(doc.num("min"), doc.num("median"), doc.num("max"), doc.count("n"))


@dataclass(frozen=True)
class SLOCounts:
    """SLO results by status (``pass``, ``fail``, ``error`` in the JSON)."""

    passed: int = 0
    failed: int = 0
    errors: int = 0

    @classmethod
    def of(cls, statuses: Sequence[str]) -> SLOCounts:
        return cls(
            statuses.count("pass"),
            statuses.count("fail"),
            sum(1 for s in statuses if s not in ("pass", "fail")),
        )

    def to_dict(self) -> dict[str, int]:
        return {"pass": self.passed, "fail": self.failed, "error": self.errors}

    @classmethod
    def read(cls, doc: _Fields) -> SLOCounts:
        return cls(doc.count("pass"), doc.count("fail"), doc.count("error"))


@dataclass(frozen=True)
class SLOResult:
    """One SLO judged on one trial (trial.json's and summary.json's ``slos[]``)."""

    name: str
    kind: str
    status: SLOStatus
    value: Num | None = None
    threshold: Num | None = None
    op: str = "<="
    reason: str = ""
    details: Mapping[str, Num | None] = field(default_factory=dict)
    """Figures beside the judged value (``p99_ms``: ``worst_second_p99_ms``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "value": self.value,
            "threshold": self.threshold,
            "op": self.op,
            "reason": self.reason,
            **self.details,
        }

    @classmethod
    def read(cls, doc: _Fields) -> SLOResult:
        known = ("name", "kind", "status", "value", "threshold", "op", "reason")
        status: SLOStatus = doc.choice("status", get_args(SLOStatus))  # type: ignore[assignment]
        return cls(
            name=doc.text("name") or "",
            kind=doc.text("kind") or "",
            status=status,
            value=doc.num("value"),
            threshold=doc.num("threshold"),
            op=doc.text("op") or "<=",
            reason=doc.text("reason") or "",
            details={k: doc.num(k) for k in doc.raw if k not in known},
        )

    @classmethod
    def from_dict(
        cls, raw: Mapping[str, Any], file: str = "trial.json", where: str = "slos[]"
    ) -> SLOResult:
        return cls.read(_Fields(raw, where, file))


@dataclass(frozen=True)
class TrialFault:
    """A trial's fault window, what was injected and on whom (``trials[].fault``)."""

    injected_at: Num | None = None
    recovered_at: Num | None = None
    recovery_s: Num | None = None
    faults: tuple[str, ...] = ()
    victims: tuple[str, ...] = ()
    """``<fault>: <kind> <namespace>/<name>``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "injected_at": self.injected_at,
            "recovered_at": self.recovered_at,
            "recovery_s": self.recovery_s,
            "faults": list(self.faults),
            "victims": list(self.victims),
        }

    @classmethod
    def read(cls, doc: _Fields) -> TrialFault:
        return cls(
            doc.num("injected_at"),
            doc.num("recovered_at"),
            doc.num("recovery_s"),
            doc.texts("faults"),
            doc.texts("victims"),
        )


@dataclass(frozen=True)
class DuringFault:
    """What clients saw over a trial's padded fault window; or why nothing (``missing``)."""

    missing: str | None = None
    start: Num | None = None
    end: Num | None = None
    open: bool = False
    seconds: int = 0
    requests: int = 0
    failures: int = 0
    error_rate_pct: Num | None = None
    p99_ms: Num | None = None
    worst_second_p99_ms: Num | None = None
    p99_basis: str = "worst second"
    """``requests`` (every request of the window) or ``worst second`` (no histograms; what
    summaries before the p99 over requests held)."""
    peak_rps: Num | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.missing is not None:
            return {"missing": self.missing}
        return {
            "start": self.start,
            "end": self.end,
            "open": self.open,
            "seconds": self.seconds,
            "requests": self.requests,
            "failures": self.failures,
            "error_rate_pct": self.error_rate_pct,
            "p99_ms": self.p99_ms,
            "worst_second_p99_ms": self.worst_second_p99_ms,
            "p99_basis": self.p99_basis,
            "peak_rps": self.peak_rps,
        }

    @classmethod
    def read(cls, doc: _Fields) -> DuringFault:
        if "missing" in doc.raw:
            return cls(missing=doc.text("missing") or "")
        return cls(
            start=doc.num("start"),
            end=doc.num("end"),
            open=doc.flag("open") or False,
            seconds=doc.count("seconds"),
            requests=doc.count("requests"),
            failures=doc.count("failures"),
            error_rate_pct=doc.num("error_rate_pct"),
            p99_ms=doc.num("p99_ms"),
            worst_second_p99_ms=doc.num("worst_second_p99_ms"),
            p99_basis=doc.text("p99_basis") or "worst second",
            peak_rps=doc.num("peak_rps"),
        )

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DuringFault:
        return cls.read(_Fields(raw, "during_fault", "summary.json"))


@dataclass(frozen=True)
class TrialScoreParts:
    """What one trial gives the score (``trials[].score``; see chaoskit.report.score)."""

    availability: float | None = None
    availability_score: float | None = None
    recovery_budget_used: float | None = None
    recovery_score: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {
            "availability": self.availability,
            "availability_score": self.availability_score,
            "recovery_budget_used": self.recovery_budget_used,
            "recovery_score": self.recovery_score,
        }

    @classmethod
    def read(cls, doc: _Fields) -> TrialScoreParts:
        return cls(
            doc.num("availability"),
            doc.num("availability_score"),
            doc.num("recovery_budget_used"),
            doc.num("recovery_score"),
        )


LEDGER_COUNTS = (
    "acknowledged",
    "stored",
    "notified",
    "lost_orders",
    "lost_events",
    "duplicated",
    "orphaned",
    "mismatched",
)


@dataclass(frozen=True)
class LedgerCounts:
    """A trial's ledger as counts (``trials[].ledger``)."""

    acknowledged: int | None = None
    stored: int | None = None
    notified: int | None = None
    lost_orders: int | None = None
    lost_events: int | None = None
    duplicated: int | None = None
    orphaned: int | None = None
    mismatched: int | None = None
    lost_total: int = 0
    """Lost + duplicated + mismatched orders."""
    ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "acknowledged": self.acknowledged,
            "stored": self.stored,
            "notified": self.notified,
            "lost_orders": self.lost_orders,
            "lost_events": self.lost_events,
            "duplicated": self.duplicated,
            "orphaned": self.orphaned,
            "mismatched": self.mismatched,
            "lost_total": self.lost_total,
            "ok": self.ok,
        }

    @classmethod
    def of(cls, report: Mapping[str, Any]) -> LedgerCounts:
        """From a ledger report of trial.json (lists of orders, or counts)."""

        def count(key: str) -> int | None:
            value = report.get(key)
            if isinstance(value, list | tuple):
                return len(value)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        counts = {key: count(key) for key in LEDGER_COUNTS}
        lost = sum(counts[k] or 0 for k in ("lost_orders", "duplicated", "mismatched"))
        ok = report.get("ok")
        return cls(**counts, lost_total=lost, ok=ok if isinstance(ok, bool) else lost == 0)

    @classmethod
    def read(cls, doc: _Fields) -> LedgerCounts:
        flag = doc.flag("ok")
        return cls(
            **{key: doc.count(key) if not doc.missing(key) else None for key in LEDGER_COUNTS},
            lost_total=doc.count("lost_total"),
            ok=True if flag is None else flag,
        )


@dataclass(frozen=True)
class InvariantCheck:
    """One invariant check of a system, in one phase of a trial (``trials[].invariants[]``)."""

    phase: str
    name: str
    ok: bool
    checked: int | None = None
    violations: int = 0
    error: str | None = None
    """Why the check gave no result (the trial errored)."""
    first_violation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "name": self.name,
            "ok": self.ok,
            "checked": self.checked,
            "violations": self.violations,
            "error": self.error,
            "first_violation": self.first_violation,
        }

    @property
    def line(self) -> str:
        """One line: ``after no-lost-writes: 120 checked, 1 violations (first: ...)``."""
        if self.error is not None:
            return f"{self.phase} {self.name}: errored: {self.error}"
        line = f"{self.phase} {self.name}: {self.checked} checked, {self.violations} violations"
        return line + (f" (first: {self.first_violation})" if self.first_violation else "")

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> InvariantCheck:
        """From an entry of trial.json's ``invariants``."""
        violations = entry.get("violations")
        listed = violations if isinstance(violations, list) else []
        first = listed[0].get("what") if listed and isinstance(listed[0], Mapping) else None
        checked, error = entry.get("checked"), entry.get("error")
        return cls(
            phase=str(entry.get("phase", "")),
            name=str(entry.get("name", "")),
            ok=entry.get("ok") is True,
            checked=checked if isinstance(checked, int) and not isinstance(checked, bool) else None,
            violations=len(listed),
            error=error if isinstance(error, str) else None,
            first_violation=first if isinstance(first, str) else None,
        )

    @classmethod
    def read(cls, doc: _Fields) -> InvariantCheck:
        flag = doc.flag("ok")
        return cls(
            phase=doc.text("phase") or "",
            name=doc.text("name") or "",
            ok=bool(flag),
            checked=None if doc.missing("checked") else doc.count("checked"),
            violations=doc.count("violations"),
            error=doc.text("error"),
            first_violation=doc.text("first_violation"),
        )


@dataclass(frozen=True)
class LoadFigures:
    """The whole trial's load (``trials[].load``)."""

    requests: Num | None = None
    failures: Num | None = None
    rps: Num | None = None
    p50_ms: Num | None = None
    p99_ms: Num | None = None
    users: Num | None = None

    def to_dict(self) -> dict[str, Num | None]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "rps": self.rps,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "users": self.users,
        }

    @classmethod
    def of(cls, load: Mapping[str, Any]) -> LoadFigures:
        """From trial.json's ``load`` (a number that is not one becomes null)."""
        figures = {
            k: load.get(k) for k in ("requests", "failures", "rps", "p50_ms", "p99_ms", "users")
        }
        return cls(
            **{
                k: v if isinstance(v, int | float) and not isinstance(v, bool) else None
                for k, v in figures.items()
            }
        )

    @classmethod
    def read(cls, doc: _Fields) -> LoadFigures:
        return cls(
            *(doc.num(k) for k in ("requests", "failures", "rps", "p50_ms", "p99_ms", "users"))
        )


@dataclass(frozen=True)
class TrialSummary:
    """One trial in summary.json (``experiments[].trials[]``)."""

    trial: int
    status: TrialStatus
    verdict: Verdict
    seed: str | None = None
    reasons: tuple[str, ...] = ()
    started_at: Num | None = None
    ended_at: Num | None = None
    duration_s: Num | None = None
    fault: TrialFault = field(default_factory=TrialFault)
    recovery: Mapping[str, float] = field(default_factory=dict)
    """Seconds by recovery component (chaoskit.report.metrics.COMPONENTS)."""
    during_fault: DuringFault = field(default_factory=DuringFault)
    slos: tuple[SLOResult, ...] = ()
    score: TrialScoreParts = field(default_factory=TrialScoreParts)
    ledger: LedgerCounts | None = None
    load: LoadFigures | None = None
    load_error: str | None = None
    ledger_error: str | None = None
    system_recovered: bool | None = None
    files: Mapping[str, str | None] = field(default_factory=dict)
    """``trial``, ``result``, ``timeseries``: paths relative to the run directory."""
    invariants: tuple[InvariantCheck, ...] = ()
    """A system's invariant checks before and after the trial (none for the shop)."""

    @property
    def invariant_violations(self) -> int:
        return sum(i.violations for i in self.invariants)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "seed": self.seed,
            "status": self.status,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            "fault": self.fault.to_dict(),
            "recovery": dict(self.recovery),
            "during_fault": self.during_fault.to_dict(),
            "slos": [s.to_dict() for s in self.slos],
            "score": self.score.to_dict(),
            "ledger": self.ledger.to_dict() if self.ledger is not None else None,
            "load": self.load.to_dict() if self.load is not None else None,
            "errors": {"load": self.load_error, "ledger": self.ledger_error},
            "system_recovered": self.system_recovered,
            "files": {k: self.files.get(k) for k in ("trial", "result", "timeseries")},
            # Only a system's trials have them: the shop's summaries stay as they were.
            **({"invariants": [i.to_dict() for i in self.invariants]} if self.invariants else {}),
        }

    @classmethod
    def read(cls, doc: _Fields) -> TrialSummary:
        doc.required("trial")
        status: TrialStatus = doc.choice("status", (PASSED, FAILED, ERRORED))  # type: ignore[assignment]
        verdict: Verdict = doc.choice("verdict", get_args(Verdict))  # type: ignore[assignment]
        seed = doc.raw.get("seed")
        ledger, load = doc.optional_obj("ledger"), doc.optional_obj("load")
        errors, files = doc.obj("errors"), doc.obj("files")
        return cls(
            trial=doc.count("trial"),
            status=status,
            verdict=verdict,
            # run.json and trial.json have held seeds as numbers and as strings
            seed=None if seed is None else str(seed),
            reasons=doc.texts("reasons"),
            started_at=doc.num("started_at"),
            ended_at=doc.num("ended_at"),
            duration_s=doc.num("duration_s"),
            fault=TrialFault.read(doc.obj("fault")),
            recovery=doc.numbers("recovery"),
            during_fault=DuringFault.read(doc.obj("during_fault")),
            slos=tuple(SLOResult.read(s) for s in doc.objs("slos")),
            score=TrialScoreParts.read(doc.obj("score")),
            ledger=LedgerCounts.read(ledger) if ledger is not None else None,
            load=LoadFigures.read(load) if load is not None else None,
            load_error=errors.text("load"),
            ledger_error=errors.text("ledger"),
            system_recovered=doc.flag("system_recovered"),
            files={k: files.text(k) for k in ("trial", "result", "timeseries")},
            invariants=tuple(InvariantCheck.read(i) for i in doc.objs("invariants")),
        )


@dataclass(frozen=True)
class Aggregate:
    """An experiment's figures over its trials (``experiments[].aggregate``)."""

    recovery_s: Spread = field(default_factory=Spread)
    error_rate_pct: Spread = field(default_factory=Spread)
    p99_ms: Spread = field(default_factory=Spread)
    worst_second_p99_ms: Spread = field(default_factory=Spread)
    components: Mapping[str, Spread] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recovery_s": self.recovery_s.to_dict(),
            "error_rate_pct": self.error_rate_pct.to_dict(),
            "p99_ms": self.p99_ms.to_dict(),
            "worst_second_p99_ms": self.worst_second_p99_ms.to_dict(),
            "components": {k: v.to_dict() for k, v in self.components.items()},
        }

    @classmethod
    def read(cls, doc: _Fields) -> Aggregate:
        components = doc.obj("components")
        return cls(
            recovery_s=Spread.read(doc.obj("recovery_s")),
            error_rate_pct=Spread.read(doc.obj("error_rate_pct")),
            p99_ms=Spread.read(doc.obj("p99_ms")),
            worst_second_p99_ms=Spread.read(doc.obj("worst_second_p99_ms")),
            components={str(k): Spread.read(components.obj(str(k))) for k in components.raw},
        )


@dataclass(frozen=True)
class ExperimentSummary:
    """One experiment of a run over its trials (``experiments[]``)."""

    name: str
    verdict: Verdict
    file: str | None = None
    trials_total: int = 0
    trials_passed: int = 0
    trials_failed: int = 0
    trials_errored: int = 0
    slos: SLOCounts = field(default_factory=SLOCounts)
    aggregate: Aggregate = field(default_factory=Aggregate)
    trials: tuple[TrialSummary, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "verdict": self.verdict,
            "trials_total": self.trials_total,
            "trials_passed": self.trials_passed,
            "trials_failed": self.trials_failed,
            "trials_errored": self.trials_errored,
            "slos": self.slos.to_dict(),
            "aggregate": self.aggregate.to_dict(),
            "trials": [t.to_dict() for t in self.trials],
        }

    @classmethod
    def read(cls, doc: _Fields) -> ExperimentSummary:
        doc.required("name")
        verdict: Verdict = doc.choice("verdict", get_args(Verdict))  # type: ignore[assignment]
        return cls(
            name=doc.text("name") or "",
            verdict=verdict,
            file=doc.text("file"),
            trials_total=doc.count("trials_total"),
            trials_passed=doc.count("trials_passed"),
            trials_failed=doc.count("trials_failed"),
            trials_errored=doc.count("trials_errored"),
            slos=SLOCounts.read(doc.obj("slos")),
            aggregate=Aggregate.read(doc.obj("aggregate")),
            trials=tuple(TrialSummary.read(t) for t in doc.objs("trials")),
        )


@dataclass(frozen=True)
class ScoreSummary:
    """The resilience score and its parts (``score``; see chaoskit.report.score). Older
    summaries lack the availability and recovery parts: they read as absent."""

    value: float | None = None
    formula: str = ""
    quality: float | None = None
    components: tuple[str, ...] = ()
    trial_pass_share: float | None = None
    slo_pass_share: float | None = None
    availability_score: float | None = None
    recovery_score: float | None = None
    availability: float | None = None
    availability_floor: float | None = None
    availability_trials: int = 0
    recovery_trials: int = 0
    lost_orders: int = 0
    lost_order_points: float = 0.0
    slo_checks: int = 0
    slo_passed: int = 0
    trials: int = 0
    trials_passed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "formula": self.formula,
            "quality": self.quality,
            "components": list(self.components),
            "trial_pass_share": self.trial_pass_share,
            "slo_pass_share": self.slo_pass_share,
            "availability_score": self.availability_score,
            "recovery_score": self.recovery_score,
            "availability": self.availability,
            "availability_floor": self.availability_floor,
            "availability_trials": self.availability_trials,
            "recovery_trials": self.recovery_trials,
            "lost_orders": self.lost_orders,
            "lost_order_points": self.lost_order_points,
            "slo_checks": self.slo_checks,
            "slo_passed": self.slo_passed,
            "trials": self.trials,
            "trials_passed": self.trials_passed,
        }

    @classmethod
    def read(cls, doc: _Fields) -> ScoreSummary:
        return cls(
            value=doc.num("value"),
            formula=doc.text("formula") or "",
            quality=doc.num("quality"),
            components=doc.texts("components"),
            trial_pass_share=doc.num("trial_pass_share"),
            slo_pass_share=doc.num("slo_pass_share"),
            availability_score=doc.num("availability_score"),
            recovery_score=doc.num("recovery_score"),
            availability=doc.num("availability"),
            availability_floor=doc.num("availability_floor"),
            availability_trials=doc.count("availability_trials"),
            recovery_trials=doc.count("recovery_trials"),
            lost_orders=doc.count("lost_orders"),
            lost_order_points=doc.num("lost_order_points") or 0.0,
            slo_checks=doc.count("slo_checks"),
            slo_passed=doc.count("slo_passed"),
            trials=doc.count("trials"),
            trials_passed=doc.count("trials_passed"),
        )

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ScoreSummary:
        return cls.read(_Fields(raw, "score", "summary.json"))


@dataclass(frozen=True)
class Totals:
    """Counts over the whole run (``totals``)."""

    experiments: int = 0
    trials: int = 0
    passed: int = 0
    failed: int = 0
    errored: int = 0
    slos: SLOCounts = field(default_factory=SLOCounts)
    lost_orders: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiments": self.experiments,
            "trials": self.trials,
            "passed": self.passed,
            "failed": self.failed,
            "errored": self.errored,
            "slos": self.slos.to_dict(),
            "lost_orders": self.lost_orders,
        }

    @classmethod
    def read(cls, doc: _Fields) -> Totals:
        return cls(
            doc.count("experiments"),
            doc.count("trials"),
            doc.count("passed"),
            doc.count("failed"),
            doc.count("errored"),
            SLOCounts.read(doc.obj("slos")),
            doc.count("lost_orders"),
        )


@dataclass(frozen=True)
class Summary:
    """A run's ``summary.json`` (schema ``chaoskit.summary/v1``, in reports/README.md)."""

    run_id: str
    verdict: Verdict
    score: ScoreSummary
    totals: Totals
    schema: str = SUMMARY_SCHEMA
    suite: Mapping[str, Any] = field(default_factory=dict)
    """``name``, ``file``, ``seed``, ``trials``, ``profile``, ``topology``,
    ``cluster_config``, as run.json gave them."""
    cluster: Mapping[str, Any] = field(default_factory=dict)
    """``name``, ``fresh``, as run.json gave them."""
    started_at: Num | None = None
    ended_at: Num | None = None
    duration_s: Num | None = None
    reasons: tuple[str, ...] = ()
    slos: tuple[Mapping[str, Any], ...] = ()
    """The suite's SLO definitions, normalised (chaoskit.report.slo.SLO.to_dict)."""
    experiments: tuple[ExperimentSummary, ...] = ()
    system_not_back: tuple[str, ...] = ()
    """``<experiment> trial <n>`` after which the system did not serve end to end again."""

    @property
    def suite_name(self) -> str:
        return str(self.suite.get("name") or self.run_id)

    @property
    def trials(self) -> list[TrialSummary]:
        return [t for e in self.experiments for t in e.trials]

    def experiment(self, name: str) -> ExperimentSummary | None:
        return next((e for e in self.experiments if e.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "run_id": self.run_id,
            "suite": dict(self.suite),
            "cluster": dict(self.cluster),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "score": self.score.to_dict(),
            "totals": self.totals.to_dict(),
            "slos": [dict(s) for s in self.slos],
            "experiments": [e.to_dict() for e in self.experiments],
            "system_not_back": list(self.system_not_back),
        }

    @classmethod
    def from_dict(cls, raw: Any, file: str | Path = "summary.json") -> Summary:
        """A summary.json document; InvalidConfig naming ``file``, the field and why when
        a field is damaged (a field older summaries lack takes its default)."""
        doc = _Fields(raw, "", str(file))
        if doc.raw.get("schema") != SUMMARY_SCHEMA:
            raise InvalidConfig(
                doc.file, "schema", f"is {doc.raw.get('schema')!r}, want {SUMMARY_SCHEMA!r}"
            )
        doc.required("run_id")
        verdict: Verdict = doc.choice("verdict", get_args(Verdict))  # type: ignore[assignment]
        return cls(
            run_id=doc.text("run_id") or "",
            verdict=verdict,
            score=ScoreSummary.read(doc.obj("score")),
            totals=Totals.read(doc.obj("totals")),
            suite=doc.mapping("suite"),
            cluster=doc.mapping("cluster"),
            started_at=doc.num("started_at"),
            ended_at=doc.num("ended_at"),
            duration_s=doc.num("duration_s"),
            reasons=doc.texts("reasons"),
            slos=tuple(s.raw for s in doc.objs("slos")),
            experiments=tuple(ExperimentSummary.read(e) for e in doc.objs("experiments")),
            system_not_back=doc.texts("system_not_back"),
        )
