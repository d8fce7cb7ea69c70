"""``summary.json``: everything a run measured, per experiment and trial, and its verdict.

The schema (``chaoskit.summary/v1``) is documented field by field in ``reports/README.md``.
The summary is a function of the run directory alone, written with a fixed key order and
rounded numbers, so rendering the same directory twice gives the same bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaoskit.report import score as scoring
from chaoskit.report.metrics import (
    DEFAULT_PAD,
    fault_of,
    recovery_breakdown,
    spread,
    window_load,
)
from chaoskit.report.rundir import RESULT_FILE, RUN_FILE, TRIAL_FILE, Run, Trial
from chaoskit.report.slo import SLO, evaluate, load_slos, lost_total
from chaoskit.results import TrialResult

SCHEMA = "chaoskit.summary/v1"
SUMMARY_FILE = "summary.json"
STATUSES = ("passed", "failed", "errored")
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


def _clean(value: Any) -> Any:
    """JSON-safe and stable: NaN/inf become null, floats keep at most 4 decimals."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 4)
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _epoch(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _span(start: Any, end: Any) -> float | None:
    a, b = _epoch(start), _epoch(end)
    return None if a is None or b is None else round(b - a, 3)


def _relative(path: Path, root: Path) -> str | None:
    return path.relative_to(root).as_posix() if path.exists() else None


def trial_status(trial: Trial) -> tuple[str, list[str]]:
    """The runner's status and reasons; ``errored`` when trial.json says nothing usable."""
    status = trial.info.get("status")
    reasons = [str(r) for r in trial.info.get("reasons") or []]
    if status not in STATUSES:
        why = trial.problems[:1] or [f"unknown status {status!r} in {TRIAL_FILE}"]
        return "errored", [*reasons, *why]
    return str(status), reasons


def trial_slos(trial: Trial, slos: tuple[SLO, ...]) -> list[dict[str, Any]]:
    """The SLO results the runner stored; evaluated now where it stored none."""
    stored = trial.info.get("slos")
    if isinstance(stored, list):
        return [dict(s) for s in stored if isinstance(s, Mapping)]
    return evaluate(trial, slos) if slos else []


def _ledger(info: Mapping[str, Any]) -> dict[str, Any] | None:
    ledger = info.get("ledger")
    if not isinstance(ledger, Mapping):
        return None
    counts: dict[str, Any] = {}
    for key in LEDGER_COUNTS:
        value = ledger.get(key)
        counts[key] = len(value) if isinstance(value, list | tuple) else value
    counts["lost_total"] = lost_total(ledger)
    counts["ok"] = bool(ledger.get("ok", counts["lost_total"] == 0))
    return counts


def _load(info: Mapping[str, Any]) -> dict[str, Any] | None:
    load = info.get("load")
    if not isinstance(load, Mapping):
        return None
    return {k: load.get(k) for k in ("requests", "failures", "rps", "p50_ms", "p99_ms", "users")}


def _victims(chaoskit: Mapping[str, Any]) -> list[str]:
    out = []
    for injection in chaoskit.get("injections") or []:
        for victim in injection.get("victims") or []:
            name = victim.get("name", "?")
            if victim.get("namespace"):
                name = f"{victim['namespace']}/{name}"
            out.append(f"{injection.get('fault', '?')}: {victim.get('kind', '?')} {name}")
    return out


def trial_summary(run: Run, trial: Trial, slos: tuple[SLO, ...]) -> dict[str, Any]:
    status, reasons = trial_status(trial)
    info = trial.info
    chaoskit = trial.chaoskit
    fault = fault_of(info, chaoskit)
    results = trial_slos(trial, slos)
    frame = trial.frame
    load = (
        window_load(frame, fault, DEFAULT_PAD, latency=trial.latency) if frame is not None else None
    )
    during: dict[str, Any] | None = load.to_dict() if load is not None else None
    if during is None:
        missing = trial.frame_problem or ("no fault was injected" if frame is not None else "")
        during = {"missing": missing or "no load figures"}
    slo_ok = all(r.get("status") == "pass" for r in results)
    return {
        "trial": trial.number,
        "seed": info.get("seed"),
        "status": status,
        "verdict": "pass" if status == "passed" and slo_ok else "fail",
        "reasons": reasons,
        "started_at": info.get("started_at"),
        "ended_at": info.get("ended_at"),
        "duration_s": _span(info.get("started_at"), info.get("ended_at")),
        "fault": {
            **fault.to_dict(),
            "faults": [str(i.get("fault")) for i in chaoskit.get("injections") or []],
            "victims": _victims(chaoskit),
        },
        "recovery": recovery_breakdown(chaoskit),
        "during_fault": during,
        "slos": results,
        "score": scoring.trial_inputs(during, results),
        "ledger": _ledger(info),
        "load": _load(info),
        "errors": {"load": info.get("load_error"), "ledger": info.get("ledger_error")},
        "system_recovered": TrialResult.from_dict(info).system_recovered,
        "files": {
            "trial": _relative(trial.path / TRIAL_FILE, run.path),
            "result": _relative(trial.path / RESULT_FILE, run.path),
            "timeseries": _relative(trial.timeseries_path, run.path),
        },
    }


def _during(trial: Mapping[str, Any], key: str) -> float | None:
    value = (trial.get("during_fault") or {}).get(key)
    return _epoch(value)


def experiment_summary(name: str, file: str | None, trials: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {s: sum(1 for t in trials if t["status"] == s) for s in STATUSES}
    slo_counts = {s: 0 for s in ("pass", "fail", "error")}
    for t in trials:
        for r in t["slos"]:
            slo_counts[r.get("status", "error")] = slo_counts.get(r.get("status", "error"), 0) + 1
    components = list(dict.fromkeys(k for t in trials for k in t["recovery"]))
    return {
        "name": name,
        "file": file,
        "verdict": "pass" if trials and all(t["verdict"] == "pass" for t in trials) else "fail",
        "trials_total": len(trials),
        "trials_passed": counts["passed"],
        "trials_failed": counts["failed"],
        "trials_errored": counts["errored"],
        "slos": slo_counts,
        "aggregate": {
            "recovery_s": spread(_epoch(t["fault"]["recovery_s"]) for t in trials),
            "error_rate_pct": spread(_during(t, "error_rate_pct") for t in trials),
            "p99_ms": spread(_during(t, "p99_ms") for t in trials),
            "worst_second_p99_ms": spread(_during(t, "worst_second_p99_ms") for t in trials),
            "components": {c: spread(t["recovery"].get(c) for t in trials) for c in components},
        },
        "trials": trials,
    }


def build_summary(run: Run) -> dict[str, Any]:
    """The summary of a run directory (see reports/README.md)."""
    slos = load_slos(run.path / RUN_FILE, run.info.get("slos"))
    experiments = []
    files = {t.experiment: t.info.get("file") for t in run.trials if t.info.get("file")}
    for name in run.experiments:
        trials = [trial_summary(run, t, slos) for t in run.trials_of(name)]
        experiments.append(experiment_summary(name, files.get(name), trials))
    all_trials = [t for e in experiments for t in e["trials"]]
    slo_statuses = [str(r.get("status")) for t in all_trials for r in t["slos"]]
    lost = sum((t["ledger"] or {}).get("lost_total", 0) for t in all_trials)
    score = scoring.compute(
        [t["status"] for t in all_trials],
        slo_statuses,
        lost,
        availabilities=[t["score"]["availability"] for t in all_trials],
        recovery_used=[scoring.recovery_budget_used(t["slos"]) for t in all_trials],
    )
    reasons = verdict_reasons(experiments)
    info = run.info
    summary = {
        "schema": SCHEMA,
        "run_id": info.get("run_id", run.path.name),
        "suite": {
            k: run.suite.get(k)
            for k in ("name", "file", "seed", "trials", "profile", "topology", "cluster_config")
        },
        "cluster": info.get("cluster") or {},
        "started_at": info.get("started_at"),
        "ended_at": info.get("ended_at"),
        "duration_s": _span(info.get("started_at"), info.get("ended_at")),
        "verdict": "pass" if not reasons else "fail",
        "reasons": reasons,
        "score": score.to_dict(),
        "totals": {
            "experiments": len(experiments),
            "trials": len(all_trials),
            "passed": sum(e["trials_passed"] for e in experiments),
            "failed": sum(e["trials_failed"] for e in experiments),
            "errored": sum(e["trials_errored"] for e in experiments),
            "slos": {s: sum(1 for x in slo_statuses if x == s) for s in ("pass", "fail", "error")},
            "lost_orders": lost,
        },
        "slos": [s.to_dict() for s in slos],
        "experiments": experiments,
        "system_not_back": [
            f"{e['name']} trial {t['trial']}"
            for e in experiments
            for t in e["trials"]
            if t.get("system_recovered") is False
        ],
    }
    cleaned: dict[str, Any] = _clean(summary)
    return cleaned


def verdict_reasons(experiments: list[dict[str, Any]]) -> list[str]:
    """Why a run fails: each trial that did not pass and each SLO that did not."""
    if not any(e["trials"] for e in experiments):
        return ["the run has no trials"]
    reasons = []
    for e in experiments:
        if not e["trials"]:
            reasons.append(f"{e['name']}: no trials")
        for t in e["trials"]:
            where = f"{e['name']} trial {t['trial']}"
            if t["status"] != "passed":
                why = "; ".join(t["reasons"]) or "no reason given"
                reasons.append(f"{where}: {t['status']}: {why}")
            for r in t["slos"]:
                if r.get("status") != "pass":
                    reasons.append(
                        f"{where}: SLO {r.get('name')} {r.get('status')}: {r.get('reason', '')}"
                    )
    return reasons


def dumps(summary: Mapping[str, Any]) -> str:
    return json.dumps(summary, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_summary(summary: Mapping[str, Any], path: Path) -> Path:
    path.write_text(dumps(summary), encoding="utf-8")
    return path
