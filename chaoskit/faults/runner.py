"""Injecting faults and rolling them back, always.

A :class:`FaultSession` is one run (an experiment): it picks victims with a seeded random
generator per injection, injects, holds a fault for its ``duration`` if it has one and
rolls it back, and rolls back whatever is still pending when the run closes, on errors,
on Ctrl-C and on SIGTERM. What needs undoing is in the state file before it takes effect,
so :func:`recover` can undo it from another process after the harness was killed.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaoskit.faults import registry, undo
from chaoskit.faults.agentnodes import Hands
from chaoskit.faults.base import Fault, FaultEnv, Victim
from chaoskit.faults.errors import FaultFailed, InvalidParam
from chaoskit.faults.nodes import NodeOps
from chaoskit.faults.state import Change, StateFile, Undo, pid_alive
from chaoskit.settings import Settings

if TYPE_CHECKING:
    from chaoskit.agent.client import Orders
    from chaoskit.faults.target import Target

logger = logging.getLogger(__name__)


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def fault_log(settings: Settings, cluster: str) -> Path:
    return settings.log_dir / "faults" / f"{cluster}.log"


def fault_env(settings: Settings, target: Target, *, run_id: str, **extra: Any) -> FaultEnv:
    """What faults act through on ``target``: its nodes, its state file, this run's id."""
    return FaultEnv(
        target=target,
        nodes=NodeOps(target.cluster, fault_log(settings, target.key)),
        state=StateFile.of(settings, target.key),
        run_id=run_id,
        settings=settings,
        **extra,
    )


@dataclass
class Injection:
    """One fault injected during a run: what, on whom, when."""

    id: str
    fault: str
    arguments: dict[str, Any]
    seed: str
    victims: list[Victim]
    injected_at: float
    """time.time() right before the first victim was hit."""
    effective_at: float | None = None
    """time.time() when every victim had been hit."""
    rolled_back_at: float | None = None
    details: list[dict[str, Any]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fault": self.fault,
            "arguments": self.arguments,
            "seed": self.seed,
            "victims": [v.to_dict() for v in self.victims],
            "injected_at": self.injected_at,
            "effective_at": self.effective_at,
            "rolled_back_at": self.rolled_back_at,
            "details": self.details,
            "undo": [c.undo.description for c in self.changes],
        }


def victim_rng(seed: str, fault: str, ordinal: int) -> random.Random:
    """The generator of one injection: the same seed, fault and position, the same draw."""
    return random.Random(f"{seed}:{fault}:{ordinal}")  # noqa: S311 - not for secrets


def plan(
    env: FaultEnv,
    name: str,
    arguments: Mapping[str, Any],
    *,
    seed: str,
    ordinal: int = 1,
    where: str = "",
) -> tuple[Fault[Any], list[Victim]]:
    """Fault ``name`` with checked arguments, and the victims it would hit."""
    fault = registry.build(name, arguments, where=where)
    if getattr(fault.params, "duration", None) is not None and not fault.holds:
        raise InvalidParam(
            f"{where}.duration" if where else "duration",
            f"{name} only kills; there is nothing to hold (drop duration)",
        )
    fault.check_target(env.target)
    fault.check(env)
    return fault, fault.select(env, victim_rng(seed, name, ordinal))


class FaultSession:
    """The faults of one run, and their rollback."""

    def __init__(self, env: FaultEnv, *, seed: int | str, what: str = "") -> None:
        self.env = env
        self.seed = str(seed)
        self.injections: list[Injection] = []
        env.state.begin_run(env.run_id, what)

    def plan(
        self, name: str, arguments: Mapping[str, Any], *, where: str = ""
    ) -> tuple[Fault[Any], list[Victim]]:
        """Checks the arguments and chooses the victims, without touching anything."""
        return plan(
            self.env, name, arguments, seed=self.seed, ordinal=len(self.injections) + 1, where=where
        )

    def inject(self, name: str, arguments: Mapping[str, Any], *, where: str = "") -> Injection:
        """Injects fault ``name``; with a ``duration``, holds it and rolls it back."""
        fault, victims = self.plan(name, arguments, where=where)
        injection = Injection(
            id=f"{self.env.run_id}-{len(self.injections) + 1}",
            fault=name,
            arguments=dict(arguments),
            seed=self.seed,
            victims=victims,
            injected_at=time.time(),
        )
        self.injections.append(injection)
        labels = [v.label for v in victims]
        logger.info("injecting %s: %s", name, ", ".join(labels))
        injection.injected_at = time.time()
        self.env.mark("fault-injected", name, {"injection": injection.id, "victims": labels})
        try:
            for victim in victims:

                def record(change_undo: Undo, victim: Victim = victim) -> Change:
                    change = self.env.state.record(self.env.run_id, name, victim.label, change_undo)
                    injection.changes.append(change)
                    return change

                injection.details.append(fault.inject(self.env, victim, record))
            injection.effective_at = time.time()
            self.env.mark("fault-effective", name, {"injection": injection.id})
            duration = getattr(fault.params, "duration", None)
            if not fault.holds and injection.changes:
                # A fault that comes back by itself (a restart) leaves nothing to hold.
                self.rollback(injection)
            elif duration is not None and injection.changes:
                logger.info("holding %s for %.0f s", name, duration)
                time.sleep(duration)
                self.rollback(injection)
        except BaseException:
            # Whatever went wrong (a failed step, Ctrl-C, SIGTERM), nothing stays broken.
            self._rollback_quietly(injection)
            raise
        return injection

    def rollback(self, injection: Injection | None = None) -> list[Change]:
        """Undoes the pending changes of one injection (or of the whole run), newest first."""
        ids = {c.id for c in injection.changes} if injection is not None else None
        pending = [c for c in self.env.state.pending(self.env.run_id) if ids is None or c.id in ids]
        failures = undo_changes(self.env.state, self.env.hands(), pending)
        now = time.time()
        undone = {c.id for c in pending}
        for inj in [injection] if injection is not None else self.injections:
            if any(c.id in undone for c in inj.changes) and inj.rolled_back_at is None:
                inj.rolled_back_at = now
                self.env.mark("fault-rolled-back", inj.fault, {"injection": inj.id})
        if failures:
            raise FaultFailed(
                f"rollback left {len(failures)} change(s) in place: "
                + "; ".join(f"{c.undo.description}: {c.error}" for c in failures)
                + " (run 'chaoskit recover' to retry)",
                log=self.env.nodes.log,
            )
        return pending

    def _rollback_quietly(self, injection: Injection) -> None:
        try:
            self.rollback(injection)
        except FaultFailed as e:
            logger.error("%s", e)

    def close(self) -> None:
        """Rolls back everything still pending of this run and forgets the run."""
        try:
            self.rollback()
        finally:
            self.env.state.end_run(self.env.run_id)
            self.env.close()


def undo_changes(state: StateFile, hands: Hands, changes: list[Change]) -> list[Change]:
    """Applies each change's undo, marks it in the state file; returns the ones that failed."""
    failed = []
    for change in changes:
        try:
            undo.apply(hands, change.undo)
        except (FaultFailed, OSError) as e:
            logger.error("could not undo %s: %s", change.undo.description, e)
            state.mark(change, "failed", str(e))
            failed.append(Change(**{**change.__dict__, "status": "failed", "error": str(e)}))
        else:
            state.mark(change, "undone")
    return failed


@dataclass(frozen=True)
class RecoverReport:
    undone: list[Change]
    failed: list[Change]
    skipped_runs: list[str]
    """Runs whose harness is still alive (use force to undo them anyway)."""


def recover(
    settings: Settings,
    cluster: str,
    *,
    force: bool = False,
    key: str | None = None,
    orders: Callable[[], Orders] | None = None,
) -> RecoverReport:
    """Undoes every change left pending on ``cluster``, newest first; ``key`` names its
    state file when that is not the cluster's name (a target's
    :attr:`~chaoskit.faults.target.Target.key`); ``orders``: the agents' orders of the
    cluster (agent orders are released through them)."""
    state = StateFile.of(settings, key or cluster)
    nodes = NodeOps(cluster, fault_log(settings, key or cluster))
    hands = Hands.of(nodes, orders or _no_orders(cluster))
    undone: list[Change] = []
    failed: list[Change] = []
    skipped = []
    for run in state.runs():
        if not run.pending:
            state.end_run(run.id)
            continue
        if pid_alive(run.pid) and not force:
            skipped.append(f"{run.id} (pid {run.pid}, {run.what or 'unknown'})")
            continue
        pending = sorted(run.pending, key=lambda c: c.recorded_at, reverse=True)
        run_failed = undo_changes(state, hands, pending)
        failed += run_failed
        failed_ids = {c.id for c in run_failed}
        undone += [c for c in pending if c.id not in failed_ids]
        state.end_run(run.id)
    return RecoverReport(undone, failed, skipped)


def _no_orders(cluster: str) -> Callable[[], Orders]:
    def fail() -> Orders:
        raise FaultFailed(f"no way to reach the node agents of cluster {cluster!r}")

    return fail
