"""Running a whole suite: cluster, topology, every experiment x trial under load, report.

:func:`check_suite` proves the suite can run before anything is made (every experiment file,
its variables, the load profile, the SLOs); :func:`prepare` gets the cluster and the
topology (reused when they are there and serve, made otherwise; ``fresh`` makes them anew);
:func:`run_suite` runs the trials in order, keeps going when one fails, and always writes
the run directory's ``run.json`` and the report, also when interrupted.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from chaoskit import provision
from chaoskit.agent import install as agent_install
from chaoskit.cluster.access import ClusterAccess, access
from chaoskit.cluster.config import load_config
from chaoskit.cluster.health import api_client
from chaoskit.ctk.experiment import check_experiment, load_experiment
from chaoskit.errors import ChaoskitError, InvalidConfig
from chaoskit.faults.signals import remembering_stops
from chaoskit.load.profiles import find_profile
from chaoskit.progress import Progress
from chaoskit.report import render
from chaoskit.report.slo import evaluate_trial, validate_slos
from chaoskit.results import ERRORED, FAILED, PASSED
from chaoskit.settings import Settings
from chaoskit.suite.spec import Suite
from chaoskit.suite.trial import TrialRecord, TrialTarget, run_trial, write_record
from chaoskit.topology import deploy, spread, system_deploy
from chaoskit.topology.catalog import find_topology

logger = logging.getLogger(__name__)

FRESH, REUSE = "fresh", "reuse"

ServingCheck = Callable[[float], None]
"""Proves the system under test serves end to end within the given seconds (what
``chaoskit deploy --check`` does); raises ChaoskitError (or an API/OS error) if not."""


def new_run_id(suite: Suite) -> str:
    return f"{suite.name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"


def check_suite(suite: Suite) -> None:
    """Raises InvalidConfig (exit 2) for anything in the suite that cannot run."""
    for i, entry in enumerate(suite.experiments):
        doc = load_experiment(entry.file)
        check_experiment(entry.file, doc)
        keys = set((doc.get("configuration") or {}).keys())
        settable = ", ".join(sorted(k for k in keys if not k.startswith("chaoskit_")))
        for key in entry.variables:
            if key not in keys:
                raise InvalidConfig(
                    suite.path,
                    f"experiments[{i}].vars.{key}",
                    f"{entry.file.name} has no configuration key {key!r} (keys: {settable})",
                )
        validate_slos(suite.path, f"experiments[{i}].slos", entry.slos)
    validate_slos(suite.path, "slos", suite.slos)
    if suite.load is not None:
        try:
            find_profile(suite.load.profile)
        except ChaoskitError as e:
            raise InvalidConfig(suite.path, "load.profile", str(e)) from e
    if suite.system is None:
        find_topology(suite.topology)


@dataclass(frozen=True)
class Prepared:
    access: ClusterAccess
    control_planes: int
    workers: int
    fresh: bool
    ingress: str
    """Where the load goes: the shop's ingress, or a system's ``load.target`` URL."""
    prometheus: str | None
    """chaoskit's Prometheus (deployed with the shop; None for a system of one's own)."""
    agent_installed: bool = False
    """True when the suite installed the node agent (``finish`` removes it again)."""
    published: dict[str, str] = field(default_factory=dict)
    """A system's published URLs by publish name (empty for the shop)."""


def prepare(settings: Settings, suite: Suite, *, mode: str, progress: Progress) -> Prepared:
    """The suite's cluster with its topology (or system) serving; made (or remade) as
    ``mode`` says (``chaoskit.provision``): a topology or system found serving is kept."""
    config = load_config(suite.cluster_config)
    cluster = provision.provide_cluster(
        settings,
        config,
        name=suite.cluster_name,
        mode=provision.FRESH if mode == FRESH else provision.REUSE,
        progress=progress,
    )
    cluster_access = access(settings, cluster.name)
    target = suite.system if suite.system is not None else find_topology(suite.topology)
    on = provision.provide_deployment(
        settings,
        cluster_access,
        target,
        mode=provision.DEPLOY if cluster.made else provision.KEEP,
        progress=progress,
    )
    # Once for the whole suite (faults below the API act through it), not per trial.
    agent_installed = not agent_install.installed(api_client(cluster_access.kubeconfig))
    if agent_installed:
        with progress.task("installing the node agent"):
            agent_install.install(settings, cluster_access, progress=progress)
    return Prepared(
        access=cluster_access,
        control_planes=cluster.info.control_planes,
        workers=cluster.info.workers,
        fresh=cluster.made,
        ingress=on.ingress,
        prometheus=on.prometheus,
        agent_installed=agent_installed,
        published=dict(on.published) if on.is_system else {},
    )


def finish(settings: Settings, prepared: Prepared, progress: Progress) -> None:
    """Leaves the cluster as the suite found it: removes the agent if the suite installed
    it (the topology stays deployed, for the next run)."""
    if not prepared.agent_installed:
        return
    try:
        with progress.task("removing the node agent the suite installed"):
            agent_install.remove(settings, prepared.access, progress=progress)
    except ChaoskitError as e:
        logger.error("the node agent was not removed (%s): run 'chaoskit agent remove'", e)


@dataclass
class SuiteRun:
    suite: Suite
    run_id: str
    out_dir: Path
    records: list[TrialRecord] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    report: dict[str, Path] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def passed(self) -> bool:
        return bool(self.records) and all(r.status == PASSED for r in self.records)


def _write_run_json(run: SuiteRun, prepared: Prepared, started: float, ended: float | None) -> None:
    doc: dict[str, Any] = {
        "run_id": run.run_id,
        "suite": run.suite.to_dict(),
        "cluster": {
            "name": prepared.access.name,
            "fresh": prepared.fresh,
            "control_planes": prepared.control_planes,
            "workers": prepared.workers,
        },
        "started_at": started,
        "ended_at": ended,
        "slos": list(run.suite.slos),
        "experiments": [e.name for e in run.suite.experiments],
        "skipped": [{"experiment": n, "reason": why} for n, why in run.skipped],
        "interrupted": run.interrupted,
    }
    run.out_dir.mkdir(parents=True, exist_ok=True)
    (run.out_dir / "run.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def run_suite(
    suite: Suite,
    prepared: Prepared,
    out_dir: Path,
    *,
    run_id: str,
    progress: Progress,
    on_trial: Callable[[int, int, TrialRecord], None] | None = None,
    check_serving: ServingCheck | None = None,
) -> SuiteRun:
    """Every experiment x trial, in order; the report is written whatever happens.

    After each trial the system must serve end to end again within the suite's
    ``serving_deadline``; if it does not, that trial failed, and the trials after it are
    skipped (on a broken system they would measure nothing)."""
    run = SuiteRun(suite, run_id, out_dir)
    started = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "suite.yaml").write_text(suite.path.read_text(), encoding="utf-8")
    _write_run_json(run, prepared, started, None)
    target = TrialTarget(
        suite=suite,
        access=prepared.access,
        shop_namespace=(
            suite.system.namespaces[0]
            if suite.system is not None
            else find_topology(suite.topology).namespace
        ),
        ingress=prepared.ingress,
        prometheus=prepared.prometheus,
        run_id=run_id,
        published=prepared.published,
    )
    if check_serving is None:
        check_serving = _deploy_check(target, progress)
    try:
        _run_trials(run, target, prepared, progress, on_trial, check_serving=check_serving)
    except KeyboardInterrupt:
        run.interrupted = True
        raise
    finally:
        _write_run_json(run, prepared, started, time.time())
        with progress.task("writing the report"):
            try:
                run.report = render(out_dir)
            except ChaoskitError as e:
                logger.error("report: %s", e)
    return run


def _run_trials(
    run: SuiteRun,
    target: TrialTarget,
    prepared: Prepared,
    progress: Progress,
    on_trial: Callable[[int, int, TrialRecord], None] | None,
    *,
    check_serving: ServingCheck,
) -> None:
    total = run.suite.trial_count
    done = 0
    broken: str | None = None
    with remembering_stops() as stop:
        for entry in run.suite.experiments:
            if broken is not None:
                run.skipped.append((entry.name, broken))
                progress.note(f"{entry.name}: skipped ({broken})")
                continue
            why = entry.requires.unmet(prepared.control_planes, prepared.workers)
            if why is not None:
                run.skipped.append((entry.name, why))
                progress.note(f"{entry.name}: skipped ({why})")
                done += entry.trials
                continue
            for number in range(1, entry.trials + 1):
                if broken is not None:
                    run.skipped.append((entry.name, f"trials {number}-{entry.trials} {broken}"))
                    break
                done += 1
                _respread(target, progress)
                trial_dir = run.out_dir / "trials" / entry.name / str(number)
                with progress.task(f"[{done}/{total}] {entry.name} trial {number}/{entry.trials}"):
                    record = run_trial(target, entry, number, trial_dir, evaluate_trial)
                if stop.requested:  # chaoslib swallowed the Ctrl-C: stop the suite here
                    run.records.append(record)
                    raise KeyboardInterrupt
                deadline = run.suite.serving_deadline
                with progress.task(f"checking the system serves again (within {deadline:g} s)"):
                    serving = judge_serving(record, trial_dir, check_serving, deadline)
                if not serving:
                    broken = (
                        f"not run: the system did not come back after {entry.name} trial {number}"
                    )
                run.records.append(record)
                if on_trial is not None:
                    on_trial(done, total, record)


def judge_serving(
    record: TrialRecord, trial_dir: Path, check: ServingCheck, deadline: float
) -> bool:
    """Whether the system serves end to end within ``deadline`` after the trial; if not,
    the trial broke it: it failed, with that reason (``trial.json`` is rewritten)."""
    try:
        check(deadline)
    except (ChaoskitError, client.ApiException, OSError) as e:
        why = f"the system did not come back: not serving end to end within {deadline:g} s "
        why += f"after the trial ({e})"
        logger.error("%s trial %d: %s", record.experiment, record.trial, why)
        record.system_recovered = False
        record.system_check = why
        record.status = FAILED
        record.reasons = [why, *record.reasons]
        write_record(trial_dir, record)
        return False
    record.system_recovered = True
    write_record(trial_dir, record)
    return True


def _deploy_check(target: TrialTarget, progress: Progress) -> ServingCheck:
    system = target.suite.system
    if system is not None:

        def check_system(deadline: float) -> None:
            system_deploy.check_system(target.access, system, progress=progress, timeout=deadline)

        return check_system
    topo = find_topology(target.suite.topology)

    def check(deadline: float) -> None:
        deploy.check(target.access, topo, progress=progress, timeout=deadline)

    return check


def _respread(target: TrialTarget, progress: Progress) -> None:
    """Each trial starts with the replicas of the shop's namespace (a system's first)
    spread over the workers (topology.spread)."""
    api = api_client(target.access.kubeconfig)
    try:
        if not spread.piled_up(api, target.shop_namespace):
            return
        with progress.task("spreading replicas that an earlier fault left on one node"):
            piles = spread.respread(api, target.shop_namespace)
        progress.note("respread: " + ", ".join(f"{p.name} (all on {p.node})" for p in piles))
    except (ChaoskitError, client.ApiException, OSError) as e:
        # The trial's own checks see a cluster that is not whole; this must not end the suite.
        logger.warning("respreading the replicas: %s", e)
    finally:
        api.close()


def trial_line(record: TrialRecord) -> str:
    """One line per trial for the console."""
    parts = [f"{record.experiment} trial {record.trial}: {record.status}"]
    recovery = record.fault.recovery_s
    if recovery is not None:
        parts.append(f"recovered in {recovery:.1f} s")
    if record.load:
        requests = record.load.get("requests") or 0
        failed = record.load.get("failures") or 0
        parts.append(f"{requests} requests, {failed} failed")
    if record.ledger is not None:
        lost = len(record.ledger.get("lost_orders") or [])
        dup = len(record.ledger.get("duplicated") or [])
        parts.append(f"ledger {record.ledger.get('acknowledged')} acked, {lost} lost, {dup} dup")
    line = ", ".join(parts)
    if record.status != PASSED and record.reasons:
        line += "\n" + "\n".join(f"    - {r}" for r in record.reasons[:6])
    return line


__all__ = [
    "ERRORED",
    "FAILED",
    "FRESH",
    "PASSED",
    "REUSE",
    "Prepared",
    "ServingCheck",
    "SuiteRun",
    "check_suite",
    "judge_serving",
    "new_run_id",
    "prepare",
    "run_suite",
    "trial_line",
]
