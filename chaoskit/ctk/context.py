"""The state of one Chaos Toolkit run inside chaoskit's extension.

Chaos Toolkit calls actions, probes and controls as plain functions, one after the other,
in one process. They share one :class:`RunContext`, made on first use from the
experiment's configuration: the target cluster (with chaoskit's safety checks), a fault
session with its seed and state-file run, the informers and the timeline, the desired
state once recorded, and the oracle's verdicts. :func:`finish` rolls back whatever is
still pending, stops the watches and returns what chaoskit adds to the journal.

Configuration keys (each also read from the environment variable in brackets):
``chaoskit_cluster`` [CHAOSKIT_CLUSTER], ``chaoskit_namespaces`` [CHAOSKIT_NAMESPACES,
comma-separated], ``chaoskit_seed`` [CHAOSKIT_SEED], ``chaoskit_system`` (also check nodes
and kube-system, default true). ``chaoskit_kubeconfig`` [CHAOSKIT_KUBECONFIG],
``chaoskit_context`` [CHAOSKIT_CONTEXT] and ``chaoskit_allow_context``
[CHAOSKIT_ALLOW_CONTEXT] come from the command line or the environment only
(:mod:`chaoskit.ctk.operator`).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from chaoskit.ctk import operator
from chaoskit.errors import OperationFailed
from chaoskit.faults.base import FaultEnv
from chaoskit.faults.params import coerce
from chaoskit.faults.runner import FaultSession, Injection, fault_env, new_run_id
from chaoskit.faults.target import Target, resolve_target
from chaoskit.probes import oracle
from chaoskit.probes.oracle import DesiredState, Verdict
from chaoskit.probes.timeline import API_PROBE_TIMEOUT, Timeline, recovery
from chaoskit.probes.watch import Informers
from chaoskit.results import InjectionResult, RecoveryResult, RunResults, VerdictResult
from chaoskit.settings import Settings

logger = logging.getLogger(__name__)

KEYS = {
    "chaoskit_cluster": "CHAOSKIT_CLUSTER",
    "chaoskit_namespaces": "CHAOSKIT_NAMESPACES",
    "chaoskit_seed": "CHAOSKIT_SEED",
    "chaoskit_allow_context": "CHAOSKIT_ALLOW_CONTEXT",
    "chaoskit_kubeconfig": "CHAOSKIT_KUBECONFIG",
    "chaoskit_context": "CHAOSKIT_CONTEXT",
    "chaoskit_system": "CHAOSKIT_SYSTEM",
}


def setting(configuration: Mapping[str, Any] | None, key: str) -> Any:
    """A chaoskit key from the experiment's configuration, else from the environment.

    Keys that widen the target come from the person running chaoskit only (see
    :mod:`chaoskit.ctk.operator`); a configuration's value for them is ignored.
    """
    if key in operator.OPERATOR_KEYS:
        if (configuration or {}).get(key) not in (None, ""):
            logger.warning("ignoring configuration key %s: %s", key, operator.refusal(key))
        return operator.value(key)
    value = (configuration or {}).get(key)
    if value in (None, ""):
        value = os.environ.get(KEYS[key]) or None
    return value


@dataclass
class VerdictRecord:
    name: str
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.verdict.to_dict()}


@dataclass
class RunContext:
    settings: Settings
    target: Target
    session: FaultSession
    informers: Informers
    timeline: Timeline
    seed: str
    system: bool
    what: str
    desired: DesiredState | None = None
    verdicts: list[VerdictRecord] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    finished: dict[str, Any] | None = None

    @property
    def env(self) -> FaultEnv:
        return self.session.env

    def record_desired(self) -> DesiredState:
        if self.desired is None:
            desired = oracle.record(self.informers, self.target.namespaces, system=self.system)
            empty = [
                ns
                for ns in self.target.namespaces
                if not any(d.namespace == ns for d in desired.objects)
            ]
            if empty:
                # An empty namespace would make every hypothesis pass without proving anything.
                raise OperationFailed(
                    f"namespace(s) {', '.join(empty)} hold nothing to check (do they exist?): "
                    "set the allowlist with --namespace or chaoskit_namespaces"
                )
            self.desired = desired
            self.timeline.mark(
                "desired-state-recorded", "oracle", {"objects": len(self.desired.objects)}
            )
        return self.desired

    def converge(self, name: str, timeout: float, stable_for: float = 0.0) -> Verdict:
        desired = self.record_desired()
        verdict = oracle.wait_converged(self.informers, desired, timeout, stable_for=stable_for)
        self.verdicts.append(VerdictRecord(name, verdict))
        self.timeline.mark(
            "oracle-verdict", name, {"ok": verdict.ok, "problems": len(verdict.problems)}
        )
        return verdict


_lock = threading.RLock()
_current: RunContext | None = None
_configuration: dict[str, Any] = {}
_what = ""


def configure(configuration: Mapping[str, Any] | None, what: str = "") -> None:
    """Remembers the configuration a later :func:`get` builds the context from."""
    global _configuration, _what  # noqa: PLW0603 - one run per process, as in chaoslib
    with _lock:
        _configuration = dict(configuration or {})
        _what = what


def current() -> RunContext | None:
    return _current


def resolve(configuration: Mapping[str, Any] | None, settings: Settings | None = None) -> Target:
    """The run's target, checked (InvalidInput for an unsafe one), without touching it."""
    settings = settings or Settings.from_env()
    kubeconfig = setting(configuration, "chaoskit_kubeconfig")
    return resolve_target(
        settings,
        cluster=setting(configuration, "chaoskit_cluster"),
        kubeconfig=Path(kubeconfig).expanduser() if kubeconfig else None,
        context=setting(configuration, "chaoskit_context"),
        allow_context=setting(configuration, "chaoskit_allow_context"),
        namespaces=setting(configuration, "chaoskit_namespaces"),
    )


def get(configuration: Mapping[str, Any] | None = None) -> RunContext:
    """The run's context, built on first use; raises InvalidInput for an unsafe target."""
    global _current  # noqa: PLW0603 - one run per process, as in chaoslib
    with _lock:
        if _current is not None and _current.finished is None:
            return _current
        config = {**_configuration, **(configuration or {})}
        settings = Settings.from_env()
        target = resolve(config, settings)
        seed = setting(config, "chaoskit_seed")
        seed = str(seed) if seed is not None else str(secrets.randbelow(2**31))
        system_value = setting(config, "chaoskit_system")
        system = True if system_value is None else coerce(system_value, bool, "chaoskit_system")
        api = target.api()
        watch_api = target.api(retries=False)
        informers = Informers(watch_api)
        core = client.CoreV1Api(watch_api)
        timeline = Timeline(
            informers,
            target.namespaces,
            system=True,
            api_read=lambda: core.list_namespace(limit=1, _request_timeout=API_PROBE_TIMEOUT),
        ).start()
        run_id = new_run_id()
        env = fault_env(settings, target, run_id=run_id, mark=timeline.mark, _api=api)
        session = FaultSession(env, seed=seed, what=_what)
        _current = RunContext(settings, target, session, informers, timeline, seed, system, _what)
        logger.info(
            "chaoskit run %s on cluster %r (namespaces %s, seed %s)",
            run_id,
            target.cluster,
            ", ".join(target.namespaces),
            seed,
        )
        return _current


def _injection_window(injections: list[Injection], index: int) -> float:
    if index + 1 < len(injections):
        return injections[index + 1].injected_at
    return float("inf")


def results(ctx: RunContext, rollback_error: str = "") -> RunResults:
    """What chaoskit adds to the journal: target, victims, timeline, recovery, verdicts."""
    events = ctx.timeline.events()
    injections = ctx.session.injections
    per_injection = []
    for index, injection in enumerate(injections):
        summary = recovery(
            events,
            injection.to_dict(),
            namespaces=ctx.target.namespaces,
            until=_injection_window(injections, index),
        )
        recovered_after: float | None = None
        after_rollback: float | None = None
        after = [
            v.verdict
            for v in ctx.verdicts
            if v.verdict.judged_at >= injection.injected_at and v.verdict.ok
        ]
        if after:
            # The state held again with the last change before the verdict, or when the
            # API could be read again; if nothing changed at all, it never stopped holding.
            back = max(
                after[0].checked_at,
                injection.injected_at,
                *(
                    e.at
                    for e in events
                    if e.kind in ("api-available", "watch-restored")
                    and injection.injected_at <= e.at <= after[0].judged_at
                ),
            )
            recovered_after = round(back - injection.injected_at, 3)
            if injection.rolled_back_at is not None:
                after_rollback = round(max(back - injection.rolled_back_at, 0.0), 3)
        per_injection.append(RecoveryResult(recovered_after, after_rollback, summary))
    still_changed: tuple[str, ...] = ()
    if rollback_error:
        try:
            pending = ctx.env.state.pending(ctx.env.run_id)
            still_changed = tuple(f"{c.victim}: {c.undo.description}" for c in pending)
        except OSError as e:  # the results still name the rollback error
            logger.error("reading what is still changed: %s", e)
    return RunResults(
        run_id=ctx.env.run_id,
        cluster=ctx.target.cluster,
        context=ctx.target.context,
        namespaces=tuple(ctx.target.namespaces),
        seed=ctx.seed,
        started_at=ctx.started_at,
        desired_state=ctx.desired.to_dict() if ctx.desired else None,
        injections=tuple(InjectionResult.from_dict(i.to_dict()) for i in injections),
        recovery=tuple(per_injection),
        verdicts=tuple(VerdictResult.from_dict(v.to_dict()) for v in ctx.verdicts),
        timeline=tuple(e.to_dict() for e in events),
        rollback_error=rollback_error,
        still_changed=still_changed,
    )


def finish() -> dict[str, Any] | None:
    """Rolls back what is pending, stops watching; returns the run's results (once)."""
    with _lock:
        ctx = _current
        if ctx is None:
            return None
        if ctx.finished is not None:
            return ctx.finished
        rollback_error = ""
        try:
            ctx.session.close()
        except Exception as e:  # noqa: BLE001 - reported in the results, and recover can retry
            rollback_error = str(e) or type(e).__name__
            logger.error("rollback at the end of the run: %s", e)
        ctx.timeline.mark("run-finished", "chaoskit", {})
        result = results(ctx, rollback_error).to_dict()
        ctx.timeline.stop()
        ctx.informers.stop()
        ctx.finished = result
        return result


def reset() -> None:
    """Forgets a finished context, so that the next run in this process starts afresh."""
    global _current, _configuration  # noqa: PLW0603 - one run per process, as in chaoslib
    with _lock:
        finish()
        _current = None
        _configuration = {}
