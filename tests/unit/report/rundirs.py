"""Builds run directories shaped like the suite runner's, from chaoskit's own writers.

The load's files come from the real ``write_outputs`` (per-second records merged by
``read_seconds``), recovery from the real ``chaoskit.probes.timeline.recovery`` over watch
events, the ledger from the real ``reconcile``. Only the numbers are made up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaoskit.load.runner import LoadResult, LoadSpec, write_outputs
from chaoskit.load.timeseries import read_seconds
from chaoskit.probes.timeline import Event, recovery
from chaoskit.topology.client import OrderRun
from chaoskit.topology.ledger import Ack, StoredOrder, reconcile

T0 = 1_700_000_000
LOAD_SECONDS = 60
INJECT_AFTER = 20.3
PROFILE = Path(__file__).resolve().parents[3] / "loadprofiles" / "flash_sale.py"

DEFAULT_SLOS: list[dict[str, Any]] = [
    {"name": "error-rate", "kind": "error_rate", "threshold": 5},
    {"name": "p99", "kind": "p99_ms", "threshold": 1500},
    {"name": "recovery", "kind": "recovery_s", "threshold": 30},
    {"name": "no-lost-orders", "kind": "lost_orders"},
]


@dataclass
class TrialSpec:
    experiment: str = "pod-kill"
    trial: int = 1
    status: str = "passed"
    reasons: list[str] = field(default_factory=list)
    fault: str = "pod"
    """pod: a gateway pod deleted and replaced; node: a worker stopped and back."""
    recovery_s: float | None = 4.0
    """None: the desired state never came back."""
    error_seconds: int = 3
    failures_per_s: int = 2
    rps: int = 50
    p99_ms: int = 40
    p99_fault_ms: int = 900
    lost_orders: int = 0
    load: bool = True
    ledger: bool = True
    result: bool = True
    injected: bool = True
    prometheus_url: str | None = None
    slos: list[dict[str, Any]] | None = None
    """What the runner stored in trial.json; None leaves the key out."""
    offset: float = 0.0
    """Seconds this trial starts after T0 (trials run one after another)."""
    invariants: list[dict[str, Any]] | None = None
    """A system's invariant checks as trial.json holds them; None leaves the key out."""


def _seconds_records(spec: TrialSpec, start: float, injected: float) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for second in range(int(start), int(start) + LOAD_SECONDS):
        in_fault = (
            spec.injected
            and injected <= second + 1
            and second < injected + (spec.recovery_s or LOAD_SECONDS)
        )
        failing = (
            spec.injected and injected <= second + 1 and second < injected + spec.error_seconds
        )
        failures = spec.failures_per_s if failing else 0
        slow = spec.p99_fault_ms if in_fault else spec.p99_ms
        products = spec.rps - 10
        records += [
            {"t": second, "users": 30},
            {"t": second, "type": "GET", "name": "/products", "count": products,
             "failures": failures, "times": {"12": products - 1, str(slow): 1}},
            {"t": second, "type": "POST", "name": "/orders", "count": 10,
             "failures": 0, "times": {"30": 9, str(slow): 1}},
        ]  # fmt: skip
    return records


def _events(spec: TrialSpec, injected: float) -> tuple[list[Event], list[dict[str, str]]]:
    done = injected + (spec.recovery_s or 0)
    if spec.fault == "node":
        victims = [{"kind": "node", "name": "chaoskit-worker"}]
        events = [Event(injected + 20.5, "node-not-ready", "node/chaoskit-worker")]
        if spec.recovery_s is not None:
            events.append(Event(done - 0.5, "node-ready", "node/chaoskit-worker"))
        return events, victims
    old, new = "pod/shop/gateway-7d9f-abcde", "pod/shop/gateway-7d9f-fghij"
    owner = {"owner": "replicaset/gateway-7d9f", "owner_uid": "rs-1"}
    victims = [
        {"kind": "pod", "name": "gateway-7d9f-abcde", "namespace": "shop", "node": "w1",
         "uid": "uid-old", "owner_uid": "rs-1"}
    ]  # fmt: skip
    events = [Event(injected + 0.02, "pod-deleting", old, {"uid": "uid-old", **owner})]
    if spec.recovery_s is not None:
        events += [
            Event(injected + 0.08, "pod-created", new, {"uid": "uid-new", **owner}),
            Event(injected + 0.11, "pod-bound", new, {"uid": "uid-new", **owner, "node": "w2"}),
            Event(injected + 1.2, "container-started", new, {"uid": "uid-new", **owner}),
            Event(done - 0.3, "pod-ready", new, {"uid": "uid-new", **owner}),
            Event(done - 0.1, "endpoint-ready", new, {"service": "gateway"}),
        ]
    return events, victims


def _result(spec: TrialSpec, start: float, injected: float) -> dict[str, Any]:
    events, victims = _events(spec, injected)
    injection = {
        "id": f"{spec.experiment}-1",
        "fault": "pod-kill" if spec.fault == "pod" else "node-stop",
        "arguments": {"namespace": "shop", "selector": "app=gateway"},
        "seed": "7",
        "victims": victims,
        "injected_at": injected,
        "effective_at": injected + 0.01,
        "rolled_back_at": injected + 15 if spec.fault == "node" else None,
        "details": [],
        "undo": [],
    }
    rec = recovery(events, injection, namespaces=["shop"])
    if spec.recovery_s is not None:
        rec["recovered_after_s"] = spec.recovery_s
    chaoskit = {
        "run_id": f"20261124T120000-{spec.trial:06d}",
        "cluster": "ck-report",
        "context": "kind-ck-report",
        "namespaces": ["shop"],
        "seed": "7",
        "started_at": start,
        "desired_state": None,
        "injections": [injection] if spec.injected else [],
        "recovery": [rec] if spec.injected else [],
        "verdicts": [{"name": "after", "ok": spec.recovery_s is not None, "problems": []}],
        "timeline": [e.to_dict() for e in events],
        "rollback_error": "",
    }
    return {
        "experiment": f"experiments/{spec.experiment}.yaml",
        "started_at": start,
        "status": "completed",
        "deviated": spec.recovery_s is None,
        "chaoskit": chaoskit,
        "journal": {"status": "completed", "deviated": spec.recovery_s is None, "run": []},
    }


def _load(spec: TrialSpec, folder: Path, start: float, injected: float) -> dict[str, Any]:
    # The profile's own records stay in load/, as in a real run (the p99 is taken from them).
    (folder / "load").mkdir(parents=True)
    records = folder / "load" / "seconds-host-1.jsonl"
    records.write_text(
        "".join(json.dumps(r) + "\n" for r in _seconds_records(spec, start, injected))
    )
    run_id = f"run-{spec.experiment}-{spec.trial}"
    acks = [Ack(f"{run_id}-{n}", f"order-{spec.trial}-{n}") for n in range(40)]
    result = LoadResult(
        spec=LoadSpec(profile=PROFILE, host="http://127.0.0.1:8080", duration=LOAD_SECONDS,
                      out_dir=folder / "load", users=30, run_id=run_id),
        stats=read_seconds([records]),
        orders=OrderRun(run_id=run_id, acks=acks),
        ack_times=tuple(start + n for n in range(40)),
        started_at=start,
        ended_at=start + LOAD_SECONDS,
    )  # fmt: skip
    write_outputs(result)
    return result.summary()


def _ledger(spec: TrialSpec) -> dict[str, Any]:
    run_id = f"run-{spec.experiment}-{spec.trial}"
    acks = [Ack(f"{run_id}-{n}", f"order-{spec.trial}-{n}") for n in range(40)]
    stored = [StoredOrder(a.order_id, a.idempotency_key) for a in acks[spec.lost_orders :]]
    return reconcile(acks, stored, [s.order_id for s in stored]).to_dict()


def write_trial(run_dir: Path, spec: TrialSpec) -> Path:
    folder = run_dir / "trials" / spec.experiment / str(spec.trial)
    folder.mkdir(parents=True)
    start = T0 + spec.offset
    injected = start + INJECT_AFTER
    if spec.result:
        (folder / "result.json").write_text(json.dumps(_result(spec, start, injected), indent=2))
    load = _load(spec, folder, start, injected) if spec.load else None
    recovered = injected + spec.recovery_s if spec.recovery_s is not None else None
    trial: dict[str, Any] = {
        "experiment": spec.experiment,
        "file": f"experiments/{spec.experiment}.yaml",
        "trial": spec.trial,
        "seed": "7",
        "status": spec.status,
        "reasons": spec.reasons,
        "started_at": start,
        "ended_at": start + LOAD_SECONDS + 5,
        "fault": {
            "injected_at": injected if spec.injected else None,
            "recovered_at": recovered if spec.injected else None,
            "recovery_s": spec.recovery_s if spec.injected else None,
        },
        "load": load,
        "load_error": None if spec.load else "Locust crashed (exit 1)",
        "ledger": _ledger(spec) if spec.ledger else None,
        "ledger_error": None if spec.ledger else "MySQL unreachable",
        "prometheus_url": spec.prometheus_url,
    }
    if spec.slos is not None:
        trial["slos"] = spec.slos
    if spec.invariants is not None:
        trial["invariants"] = spec.invariants
    (folder / "trial.json").write_text(json.dumps(trial, indent=2))
    return folder


def write_run(
    run_dir: Path,
    trials: Sequence[TrialSpec],
    *,
    slos: list[dict[str, Any]] | None = None,
    suite: str = "flash-sale",
) -> Path:
    """A run directory with ``trials``; SLO results evaluated as the runner would."""
    from chaoskit.report.slo import evaluate_trial, load_slos  # noqa: PLC0415

    run_dir.mkdir(parents=True, exist_ok=True)
    raw_slos = DEFAULT_SLOS if slos is None else slos
    experiments = list(dict.fromkeys(t.experiment for t in trials))
    run = {
        "run_id": run_dir.name,
        "suite": {"name": suite, "file": f"experiments/suites/{suite}.yaml", "seed": "7",
                  "trials": max((t.trial for t in trials), default=0), "profile": "flash_sale",
                  "topology": "ecommerce", "cluster_config": "kind-config.quick.yaml"},
        "cluster": {"name": "ck-report", "fresh": True},
        "started_at": T0 - 30,
        "ended_at": T0 + max((t.offset for t in trials), default=0) + LOAD_SECONDS + 30,
        "slos": raw_slos,
        "experiments": experiments,
    }  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(run, indent=2))
    (run_dir / "suite.yaml").write_text(f"name: {suite}\n")
    parsed = load_slos(run_dir / "suite.yaml", raw_slos)
    for spec in trials:
        folder = write_trial(run_dir, spec)
        if spec.slos is None:
            trial = json.loads((folder / "trial.json").read_text())
            trial["slos"] = evaluate_trial(folder, parsed, spec.prometheus_url)
            (folder / "trial.json").write_text(json.dumps(trial, indent=2))
    return run_dir


SUITE_SLOS: list[dict[str, Any]] = [
    *DEFAULT_SLOS[:2],
    {"name": "recovery", "kind": "recovery_s", "threshold": 60},
    DEFAULT_SLOS[3],
]


def standard_specs(**changes: Any) -> list[TrialSpec]:
    """Two experiments (a pod killed, a node stopped), two trials each, all passing."""
    specs = []
    for n, (experiment, fault) in enumerate((("pod-kill", "pod"), ("node-stop", "node"))):
        for trial in (1, 2):
            fields: dict[str, Any] = {
                "experiment": experiment,
                "trial": trial,
                "fault": fault,
                "recovery_s": (4.0 if fault == "pod" else 40.0) + trial * 0.5,
                "offset": (2 * n + trial - 1) * 100.0,
            }
            fields.update(changes)
            specs.append(TrialSpec(**fields))
    return specs


def standard_run(run_dir: Path, **changes: Any) -> Path:
    return write_run(run_dir, standard_specs(**changes), slos=SUITE_SLOS)
