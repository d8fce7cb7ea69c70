"""One trial: an experiment file run under load, then checked against the ledger and SLOs.

The order of a trial, on the harness's wall clock (every mark lands in ``trial.json``):

1. the load profile starts and runs ``warmup`` seconds (for ``flash_sale`` the sale opens
   a few seconds before the experiment, so the fault meets the spike);
2. the experiment runs through chaostoolkit-lib as ``chaoskit run`` would: steady-state
   check, faults, rollback, steady-state check again;
3. the load runs ``cooldown`` seconds more, then stops; a Locust process that ended by
   itself before that is a crash and makes the trial *errored*;
4. the acknowledged orders are reconciled with the shop's database (the ledger);
5. the SLOs are evaluated over the fault window.

On a system of the user's own (``suite.system``) there is no ledger: the system's invariant
checks run with phase ``before`` just before the load starts, and with phase ``after`` once
the load stopped and the faults were rolled back (``docs/system-file.md``), given the
trial's window, its acknowledged operations (``acknowledged.jsonl``, merged from the load's
``acked-*.jsonl``), the published URLs and the cluster's kubeconfig.

A trial *passed* when the experiment completed without deviating, the load ran throughout,
the ledger lost and duplicated nothing (a system's invariants found no violation), and
every SLO passed; *failed* when one of those says so; *errored* when the harness could not
tell (a crash, an SLO without data, an invariant check that gave no valid answer).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoskit.cluster.access import ClusterAccess
from chaoskit.ctk.experiment import run_experiment_file
from chaoskit.ctk.summary import failures
from chaoskit.errors import ChaoskitError
from chaoskit.load.profiles import find_profile
from chaoskit.load.runner import (
    LoadResult,
    LoadRun,
    LoadSpec,
    merge_acknowledged,
    write_outputs,
)
from chaoskit.results import (
    ERRORED,
    FAILED,
    PASSED,
    FaultWindow,
    RunResults,
    TrialResult,
    TrialStatus,
)
from chaoskit.suite.spec import ExperimentEntry, LoadSettings, Suite
from chaoskit.system.checks import CheckOutcome, run_checks
from chaoskit.system.invariants import InvariantInput, Phase, Window
from chaoskit.system.spec import SystemSpec
from chaoskit.topology.client import RUN_ID_LIMIT, bounded_id
from chaoskit.topology.shopdb import ledger

logger = logging.getLogger(__name__)

SALE_LEAD = 5.0
"""flash_sale: seconds between the sale opening and the experiment starting."""
LEDGER_SETTLE = 180.0
"""Seconds the ledger waits for notifications still travelling through Kafka before it
calls them lost (after a containerd kill, the consumer was measured 75 s behind)."""

SloEvaluator = Callable[[Path, tuple[dict[str, Any], ...], str | None], list[dict[str, Any]]]
InvariantChecker = Callable[[SystemSpec, InvariantInput], list[CheckOutcome]]
"""Runs a system's invariant checks with the given input (:func:`system_checks`)."""
ACKNOWLEDGED_FILE = "acknowledged.jsonl"
"""In the trial's folder: the operations its load acknowledged, as the checks get them."""


def system_checks(system: SystemSpec, given: InvariantInput) -> list[CheckOutcome]:
    """Every invariant check of ``system``, each in a process of its own."""
    return run_checks(system.invariants, given, folder=system.folder)


@dataclass(frozen=True)
class TrialTarget:
    """Where trials run: the cluster, the system under test and its Prometheus."""

    suite: Suite
    access: ClusterAccess
    shop_namespace: str
    """The shop's namespace, or a system's first (where replicas are respread)."""
    ingress: str
    """Where the load goes: the shop's ingress, or the system's ``load.target``."""
    prometheus: str | None
    run_id: str
    published: Mapping[str, str] = field(default_factory=dict)
    """A system's published URLs by publish name (its invariant checks get them)."""


@dataclass
class TrialRecord:
    """A trial while it runs; :meth:`to_result` is what ``trial.json`` holds."""

    experiment: str
    file: str
    trial: int
    seed: str
    started_at: float
    status: TrialStatus = ERRORED
    reasons: list[str] = field(default_factory=list)
    ended_at: float | None = None
    fault: FaultWindow = field(default_factory=FaultWindow)
    load: dict[str, Any] | None = None
    load_error: str | None = None
    ledger: dict[str, Any] | None = None
    ledger_error: str | None = None
    slos: list[dict[str, Any]] = field(default_factory=list)
    prometheus_url: str | None = None
    markers: list[dict[str, Any]] = field(default_factory=list)
    system_recovered: bool | None = None
    system_check: str | None = None
    invariants: list[dict[str, Any]] = field(default_factory=list)

    def mark(self, kind: str, label: str, at: float | None = None) -> None:
        self.markers.append(
            {"t": at if at is not None else time.time(), "kind": kind, "label": label}
        )

    def to_result(self) -> TrialResult:
        return TrialResult(
            experiment=self.experiment,
            file=self.file,
            trial=self.trial,
            seed=self.seed,
            started_at=self.started_at,
            status=self.status,
            reasons=tuple(self.reasons),
            ended_at=self.ended_at,
            fault=self.fault,
            load=self.load,
            load_error=self.load_error,
            ledger=self.ledger,
            ledger_error=self.ledger_error,
            slos=tuple(self.slos),
            prometheus_url=self.prometheus_url,
            markers=tuple(self.markers),
            system_recovered=self.system_recovered,
            system_check=self.system_check,
            invariants=tuple(self.invariants),
        )

    def to_dict(self) -> dict[str, Any]:
        return self.to_result().to_dict()


def trial_seed(suite_seed: str, experiment: str, trial: int) -> str:
    """The same suite seed picks the same victims in the same trial, and other victims in
    other trials."""
    return f"{suite_seed}-{experiment}-{trial}"


def load_run_id(run_id: str, experiment: str, trial: int) -> str:
    """The id of a trial's load run, the prefix of its orders' keys: unique per trial, also
    when the suite's and experiment's names are long (then shortened with a hash)."""
    suffix = f"-{trial}"
    return bounded_id(f"{run_id}-{experiment}", RUN_ID_LIMIT - len(suffix)) + suffix


def _load_spec(settings: LoadSettings, target: TrialTarget, out_dir: Path, run_id: str) -> LoadSpec:
    profile = find_profile(settings.profile)
    # The sale's timing is an option of chaoskit's flash_sale profile, not of a Locust file
    # of one's own that happens to have that name.
    flash_sale = settings.profile == "flash_sale"
    sale_start = max(1.0, settings.warmup - SALE_LEAD) if flash_sale else None
    return LoadSpec(
        profile=profile,
        host=target.ingress,
        duration=settings.max_duration,
        out_dir=out_dir,
        users=settings.users,
        spawn_rate=settings.spawn_rate,
        workers=settings.workers,
        run_id=run_id,
        sale_start=sale_start,
        sale_hold=settings.max_duration - sale_start if sale_start is not None else None,
        think_time=settings.think_time,
    )


def _sleep_under_load(load: LoadRun | None, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if load is not None:
            load.check()
        time.sleep(min(1.0, left))


def run_trial(
    target: TrialTarget,
    entry: ExperimentEntry,
    number: int,
    trial_dir: Path,
    evaluate_slos: SloEvaluator,
    *,
    check_invariants: InvariantChecker = system_checks,
) -> TrialRecord:
    """Runs trial ``number`` of ``entry`` into ``trial_dir`` and writes its ``trial.json``."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    record = TrialRecord(
        experiment=entry.name,
        file=str(entry.file),
        trial=number,
        seed=trial_seed(target.suite.seed, entry.name, number),
        started_at=time.time(),
        prometheus_url=target.prometheus,
    )
    verdict = _Verdict()
    invariants = _Invariants(target, trial_dir, record, verdict, check_invariants)
    measured = _run_under_load(
        target,
        entry,
        number=number,
        trial_dir=trial_dir,
        record=record,
        verdict=verdict,
        before=invariants.before,
    )
    if target.suite.system is not None:
        invariants.after()
        write_record(trial_dir, record)
    elif measured is not None:
        _check_ledger(target, measured, record, verdict)
        write_record(trial_dir, record)  # the SLOs read the ledger from trial.json
    try:
        record.slos = evaluate_slos(trial_dir, entry.slos, target.prometheus)
    except ChaoskitError as e:
        verdict.errors.append(f"SLOs: {e}")
    for slo in record.slos:
        if slo.get("status") == "fail":
            verdict.problems.append(f"SLO {slo.get('name')}: {slo.get('reason') or 'failed'}")
        elif slo.get("status") == "error":
            verdict.errors.append(f"SLO {slo.get('name')}: {slo.get('reason') or 'no data'}")
    record.reasons = ([verdict.rollback] if verdict.rollback else []) + (
        verdict.problems + verdict.errors
    )
    record.status = verdict.status
    write_record(trial_dir, record)
    return record


@dataclass
class _Verdict:
    problems: list[str] = field(default_factory=list)
    """What the system under test did wrong: the trial failed."""
    errors: list[str] = field(default_factory=list)
    """What kept the harness from judging: the trial errored."""
    experiment_ok: bool = False
    rollback: str | None = None
    """The experiment's undo failed: the cluster is left changed, so whatever the trial
    measured, the harness did not finish its job (errored, and the reason says how to
    recover)."""

    @property
    def status(self) -> TrialStatus:
        if self.rollback:
            return ERRORED
        if self.problems:
            return FAILED
        if self.errors or not self.experiment_ok:
            return ERRORED
        return PASSED


def _run_under_load(
    target: TrialTarget,
    entry: ExperimentEntry,
    *,
    number: int,
    trial_dir: Path,
    record: TrialRecord,
    verdict: _Verdict,
    before: Callable[[], None],
) -> LoadResult | None:
    """Load, experiment, load again; the load always stops and ``trial.json`` is written.
    ``before`` runs first (a system's invariants, phase ``before``)."""
    suite = target.suite
    load: LoadRun | None = None
    measured: LoadResult | None = None
    try:
        before()
        if suite.load is not None:
            run_id = load_run_id(target.run_id, entry.name, number)
            spec = _load_spec(suite.load, target, trial_dir / "load", run_id)
            load = LoadRun(spec).start()
            record.mark("load-started", f"{suite.load.profile}, {suite.load.users} users")
            _sleep_under_load(load, suite.load.warmup)
        _experiment(target, entry, trial_dir, record, verdict)
        if load is not None and suite.load is not None:
            _sleep_under_load(load, suite.load.cooldown)
    except ChaoskitError as e:
        verdict.errors.append(str(e))
        logger.error("%s trial %d: %s", entry.name, number, e)
    except Exception as e:  # a harness bug must not end the suite: the trial is errored
        logger.exception("%s trial %d: harness error", entry.name, number)
        verdict.errors.append(f"harness error: {type(e).__name__}: {e}")
    finally:
        if load is not None:
            measured, problem = _stop_load(load)
            record.load = measured.summary() if measured is not None else None
            record.load_error = problem
            record.mark("load-stopped", "load stopped")
            if problem and not any(problem.endswith(e) for e in verdict.errors):
                verdict.errors.append(problem)
        record.ended_at = time.time()
        write_record(trial_dir, record)
    return measured


def _experiment(
    target: TrialTarget,
    entry: ExperimentEntry,
    trial_dir: Path,
    record: TrialRecord,
    verdict: _Verdict,
) -> None:
    record.mark("experiment-started", entry.name)
    outcome = run_experiment_file(
        entry.file,
        output=trial_dir / "result.json",
        cluster=target.suite.cluster_name,
        namespaces=target.suite.namespaces,
        seed=record.seed,
        variables=entry.variables,
    )
    state = "deviated" if outcome.deviated else outcome.status
    record.mark("experiment-ended", state)
    record.fault = RunResults.from_dict(outcome.chaoskit or {}).fault_window()
    if record.fault.injected_at:
        record.mark("fault-injected", "first fault injected", record.fault.injected_at)
    if record.fault.recovered_at:
        record.mark("recovered", "desired state back", record.fault.recovered_at)
    verdict.experiment_ok = outcome.ok
    verdict.rollback = outcome.rollback_problem
    if outcome.ok:
        return
    if verdict.rollback and outcome.status == "completed" and not outcome.deviated:
        return
    verdict.problems.append(f"experiment {state}")
    verdict.problems += failures(outcome.journal)
    for item in (outcome.chaoskit or {}).get("verdicts") or []:
        if not item.get("ok"):
            verdict.problems += [f"oracle: {p}" for p in (item.get("problems") or [])[:8]]


def _stop_load(load: LoadRun) -> tuple[LoadResult | None, str | None]:
    """Stops the load and writes its outputs; what it measured, and why it failed if it did."""
    problem: str | None = None
    try:
        load.check()
    except ChaoskitError as e:
        problem = f"load: {e}"
    try:
        result = load.stop()
    except ChaoskitError as e:
        return None, problem or f"load: {e}"
    write_outputs(result)
    return result, problem


def _check_ledger(
    target: TrialTarget,
    measured: LoadResult,
    record: TrialRecord,
    verdict: _Verdict,
) -> None:
    try:
        report = ledger(target.access, target.shop_namespace, measured.orders, settle=LEDGER_SETTLE)
    except ChaoskitError as e:
        record.ledger_error = str(e)
        verdict.errors.append(f"ledger: {e}")
        return
    record.ledger = report.to_dict()
    if not report.ok:
        verdict.problems.append(f"ledger: {report.summary()}")


class _Invariants:
    """A system's invariant checks around one trial (nothing without a system)."""

    def __init__(
        self,
        target: TrialTarget,
        trial_dir: Path,
        record: TrialRecord,
        verdict: _Verdict,
        check: InvariantChecker,
    ) -> None:
        self.target = target
        self.trial_dir = trial_dir
        self.record = record
        self.verdict = verdict
        self.check = check

    def before(self) -> None:
        start = self.record.started_at
        self._run("before", Window(start, start), acknowledged=None)

    def after(self) -> None:
        start = self.record.started_at
        end = max(start, self.record.ended_at or time.time())
        acknowledged = merge_acknowledged(
            self.trial_dir / "load", self.trial_dir / ACKNOWLEDGED_FILE
        )
        self._run("after", Window(start, end), acknowledged=acknowledged)

    def _run(self, phase: Phase, window: Window, *, acknowledged: Path | None) -> None:
        system = self.target.suite.system
        if system is None or not system.invariants:
            return
        given = InvariantInput(
            phase=phase,
            window=window,
            published=dict(self.target.published),
            acknowledged=acknowledged,
            kubeconfig=self.target.access.kubeconfig,
        )
        try:
            outcomes = self.check(system, given)
        except Exception as e:  # a harness bug must not end the suite: the trial is errored
            logger.exception("invariants (%s): harness error", phase)
            self.verdict.errors.append(f"invariants ({phase}): {type(e).__name__}: {e}")
            return
        for outcome in outcomes:
            self.record.invariants.append(invariant_entry(phase, outcome))
            if outcome.errored:
                self.verdict.errors.append(f"invariant {outcome.summary()} ({phase})")
            elif outcome.violated:
                self.verdict.problems.append(f"invariant {outcome.summary()} ({phase})")
        failed = sum(1 for o in outcomes if o.errored or o.violated)
        state = f"{failed} of {len(outcomes)} not passed" if failed else "passed"
        self.record.mark("invariants", f"{phase}: {state}")
        write_record(self.trial_dir, self.record)


def invariant_entry(phase: Phase, outcome: CheckOutcome) -> dict[str, Any]:
    """One check's run as ``trial.json`` holds it (``invariants[]``)."""
    result = outcome.result
    return {
        "phase": phase,
        "name": outcome.name,
        "ok": result is not None and result.ok,
        "checked": result.checked if result is not None else None,
        "violations": list(result.violations) if result is not None else [],
        "details": dict(result.details) if result is not None else {},
        "error": outcome.error,
        "seconds": round(outcome.seconds, 3),
    }


def write_record(trial_dir: Path, record: TrialRecord) -> None:
    path = trial_dir / "trial.json"
    path.write_text(json.dumps(record.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
