"""What a run and a trial produce, as typed, frozen models: the one shape every layer reads.

Results travel from the fault session and the timeline (``ctk/context.py``) into a run's
``result.json`` (under ``chaoskit``), from there into a suite trial's ``trial.json``, and
on to the report's summary and the CI gate. Each layer builds or reads these classes
instead of guessing at dictionary keys, so a renamed field is a type error everywhere it
is used. ``to_dict()`` writes the JSON field names the files have always had;
``from_dict()`` reads them back, tolerating fields older run directories lack.

:func:`fault_window` is the one definition of the fault window: from the first injection
to the moment the desired state held again after the last one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
        )
