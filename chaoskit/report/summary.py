"""``summary.json``: everything a run measured, per experiment and trial, and its verdict.

The schema (``chaoskit.summary/v1``) is documented field by field in ``reports/README.md``.
The summary is a function of the run directory alone, written with a fixed key order and
rounded numbers, so rendering the same directory twice gives the same bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chaoskit.report import score as scoring
from chaoskit.report.metrics import (
    DEFAULT_PAD,
    recovery_breakdown,
    spread,
    trial_fault,
    window_load,
)
from chaoskit.report.rundir import RESULT_FILE, RUN_FILE, TRIAL_FILE, Run, Trial
from chaoskit.report.slo import SLO, evaluate, load_slos
from chaoskit.results import (
    ERRORED,
    SUMMARY_SCHEMA,
    Aggregate,
    DuringFault,
    ExperimentSummary,
    InvariantCheck,
    LedgerCounts,
    LoadFigures,
    RunResults,
    ScoreSummary,
    SLOCounts,
    SLOResult,
    Summary,
    Totals,
    TrialFault,
    TrialResult,
    TrialStatus,
    TrialSummary,
    Verdict,
)

SCHEMA = SUMMARY_SCHEMA
SUMMARY_FILE = "summary.json"
STATUSES = ("passed", "failed", "errored")


def _clean(value: Any) -> Any:
    """JSON-safe and stable: NaN/inf become null, floats keep at most 4 decimals."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _span(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 3)


def _relative(path: Path, root: Path) -> str | None:
    return path.relative_to(root).as_posix() if path.exists() else None


def _record(trial: Trial) -> TrialResult | None:
    """trial.json, typed; None when the trial has none (or an unreadable one)."""
    return TrialResult.from_dict(trial.info) if trial.info else None


def trial_status(trial: Trial) -> tuple[TrialStatus, list[str]]:
    """The runner's status and reasons; ``errored`` when trial.json says nothing usable."""
    record = _record(trial)
    reasons = list(record.reasons) if record is not None else []
    # TrialResult reads an unknown status as errored; the raw value is only for the reason.
    status = trial.info.get("status")
    if record is None or status not in STATUSES:
        why = trial.problems[:1] or [f"unknown status {status!r} in {TRIAL_FILE}"]
        return ERRORED, [*reasons, *why]
    return record.status, reasons


def trial_slos(trial: Trial, slos: tuple[SLO, ...]) -> tuple[SLOResult, ...]:
    """The SLO results the runner stored; evaluated now where it stored none."""
    record = _record(trial)
    if record is not None and record.slos:
        file = str(trial.path / TRIAL_FILE)
        return tuple(SLOResult.from_dict(s, file, f"slos[{i}]") for i, s in enumerate(record.slos))
    return evaluate(trial, slos) if slos else ()


def _victims(run: RunResults) -> tuple[str, ...]:
    out = []
    for injection in run.injections:
        for victim in injection.victims:
            name = victim.get("name", "?")
            if victim.get("namespace"):
                name = f"{victim['namespace']}/{name}"
            out.append(f"{injection.fault or '?'}: {victim.get('kind', '?')} {name}")
    return tuple(out)


def trial_summary(run: Run, trial: Trial, slos: tuple[SLO, ...]) -> TrialSummary:
    status, reasons = trial_status(trial)
    record = _record(trial)
    results = RunResults.from_dict(trial.chaoskit)
    fault = trial_fault(record, results)
    judged = trial_slos(trial, slos)
    frame = trial.frame
    load = (
        window_load(frame, fault, DEFAULT_PAD, latency=trial.latency) if frame is not None else None
    )
    if load is not None:
        during = DuringFault.from_dict(load.to_dict())
    else:
        missing = trial.frame_problem or ("no fault was injected" if frame is not None else "")
        during = DuringFault(missing=missing or "no load figures")
    slo_ok = all(r.status == "pass" for r in judged)
    # A trial.json without a start says nothing of it (TrialResult reads 0.0).
    started = (record.started_at or None) if record is not None else None
    ended = record.ended_at if record is not None else None
    verdict: Verdict = "pass" if status == "passed" and slo_ok else "fail"
    return TrialSummary(
        trial=trial.number,
        seed=record.seed if record is not None else None,
        status=status,
        verdict=verdict,
        reasons=tuple(reasons),
        started_at=started,
        ended_at=ended,
        duration_s=_span(started, ended),
        fault=TrialFault(
            fault.injected_at,
            fault.recovered_at,
            fault.recovery_s,
            tuple(i.fault for i in results.injections),
            _victims(results),
        ),
        recovery=recovery_breakdown(results),
        during_fault=during,
        slos=judged,
        score=scoring.trial_inputs(during, judged),
        ledger=LedgerCounts.of(record.ledger) if record and record.ledger is not None else None,
        load=LoadFigures.of(record.load) if record and record.load is not None else None,
        load_error=record.load_error if record is not None else None,
        ledger_error=record.ledger_error if record is not None else None,
        system_recovered=record.system_recovered if record is not None else None,
        invariants=tuple(InvariantCheck.of(i) for i in record.invariants) if record else (),
        files={
            "trial": _relative(trial.path / TRIAL_FILE, run.path),
            "result": _relative(trial.path / RESULT_FILE, run.path),
            "timeseries": _relative(trial.timeseries_path, run.path),
        },
    )


def experiment_summary(
    name: str, file: str | None, trials: Sequence[TrialSummary]
) -> ExperimentSummary:
    components = list(dict.fromkeys(k for t in trials for k in t.recovery))
    verdict: Verdict = "pass" if trials and all(t.verdict == "pass" for t in trials) else "fail"
    return ExperimentSummary(
        name=name,
        file=file,
        verdict=verdict,
        trials_total=len(trials),
        trials_passed=sum(1 for t in trials if t.status == "passed"),
        trials_failed=sum(1 for t in trials if t.status == "failed"),
        trials_errored=sum(1 for t in trials if t.status == "errored"),
        slos=SLOCounts.of([r.status for t in trials for r in t.slos]),
        aggregate=Aggregate(
            recovery_s=spread(t.fault.recovery_s for t in trials),
            error_rate_pct=spread(t.during_fault.error_rate_pct for t in trials),
            p99_ms=spread(t.during_fault.p99_ms for t in trials),
            worst_second_p99_ms=spread(t.during_fault.worst_second_p99_ms for t in trials),
            components={c: spread(t.recovery.get(c) for t in trials) for c in components},
        ),
        trials=tuple(trials),
    )


def build_summary(run: Run) -> Summary:
    """The summary of a run directory (see reports/README.md), as summary.json holds it:
    rounded, so that reading the file back gives an equal summary."""
    slos = load_slos(run.path / RUN_FILE, run.info.get("slos"))
    experiments = []
    files = {t.experiment: r.file for t in run.trials if (r := _record(t)) and r.file}
    for name in run.experiments:
        trials = [trial_summary(run, t, slos) for t in run.trials_of(name)]
        experiments.append(experiment_summary(name, files.get(name), trials))
    all_trials = [t for e in experiments for t in e.trials]
    slo_statuses = [r.status for t in all_trials for r in t.slos]
    lost = sum(t.ledger.lost_total for t in all_trials if t.ledger is not None)
    violations = sum(t.invariant_violations for t in all_trials)
    score = scoring.compute(
        [t.status for t in all_trials],
        slo_statuses,
        lost + violations,  # a system's invariants stand in for the shop's ledger
        availabilities=[t.score.availability for t in all_trials],
        recovery_used=[scoring.recovery_budget_used(t.slos) for t in all_trials],
    )
    reasons = verdict_reasons(experiments)
    info = run.info
    started, ended = info.get("started_at"), info.get("ended_at")
    summary = Summary(
        run_id=str(info.get("run_id", run.path.name)),
        suite={
            k: run.suite.get(k)
            for k in ("name", "file", "seed", "trials", "profile", "topology", "cluster_config")
        },
        cluster=info.get("cluster") or {},
        started_at=started if isinstance(started, int | float) else None,
        ended_at=ended if isinstance(ended, int | float) else None,
        duration_s=_span(
            float(started) if isinstance(started, int | float) else None,
            float(ended) if isinstance(ended, int | float) else None,
        ),
        verdict="pass" if not reasons else "fail",
        reasons=tuple(reasons),
        score=ScoreSummary.from_dict(score.to_dict()),
        totals=Totals(
            experiments=len(experiments),
            trials=len(all_trials),
            passed=sum(e.trials_passed for e in experiments),
            failed=sum(e.trials_failed for e in experiments),
            errored=sum(e.trials_errored for e in experiments),
            slos=SLOCounts.of(slo_statuses),
            lost_orders=lost,
        ),
        slos=tuple(s.to_dict() for s in slos),
        experiments=tuple(experiments),
        system_not_back=tuple(
            f"{e.name} trial {t.trial}"
            for e in experiments
            for t in e.trials
            if t.system_recovered is False
        ),
    )
    # What the file will hold (NaN gone, 4 decimals): the summary every report reads.
    return Summary.from_dict(_clean(summary.to_dict()))


def verdict_reasons(experiments: Sequence[ExperimentSummary]) -> list[str]:
    """Why a run fails: each trial that did not pass and each SLO that did not."""
    if not any(e.trials for e in experiments):
        return ["the run has no trials"]
    reasons = []
    for e in experiments:
        if not e.trials:
            reasons.append(f"{e.name}: no trials")
        for t in e.trials:
            where = f"{e.name} trial {t.trial}"
            if t.status != "passed":
                why = "; ".join(t.reasons) or "no reason given"
                reasons.append(f"{where}: {t.status}: {why}")
            for r in t.slos:
                if r.status != "pass":
                    reasons.append(f"{where}: SLO {r.name} {r.status}: {r.reason}")
    return reasons


def dumps(summary: Summary) -> str:
    return json.dumps(summary.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_summary(summary: Summary, path: Path) -> Path:
    path.write_text(dumps(summary), encoding="utf-8")
    return path
