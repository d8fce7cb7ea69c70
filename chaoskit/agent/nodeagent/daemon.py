"""The agent's loop: undo what expired, read this node's orders, act, report.

Every tick first undoes what the local file says has expired, before any API call: an
API server that does not answer delays nothing. Then it lists the node's orders (a short
timeout), decides with ``orders.reconcile`` and acts. Nothing that goes wrong in a tick
ends the loop: while kubelet is stopped, nothing would restart a dead agent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from . import (
    network,  # noqa: F401 - registers the network faults
    resources,  # noqa: F401 - registers the resource faults
)
from . import orders as o
from .host import (
    ENDED,
    FAULTS,
    FaultRefused,
    Host,
    HostFailed,
    arm_backstop,
    disarm_backstop,
)
from .kube import Api, ApiUnavailable
from .store import Store

logger = logging.getLogger(__name__)

TICK = 1.0
"""Seconds between ticks: the latency from an order to its effect, and of an undo."""


class Agent:
    def __init__(self, host: Host, api: Api, store: Store, heartbeat: Path | None = None) -> None:
        self.host = host
        self.api = api
        self.store = store
        self.heartbeat = heartbeat
        self.entries: dict[str, o.Entry] = {}
        self.arms = 0

    # -------------------------------------------------------------- start

    def start(self) -> None:
        """Reads the local file and settles it (see ``orders.recover``)."""
        self.entries = self.store.load()
        plan = o.recover(self.entries, time.time())
        for entry in plan.undo:
            logger.info("order %s expired while the agent was away: undoing", entry.name)
            self.undo(entry, "expired while the agent was not running")
        for entry in plan.reapply:
            if entry.undo.get(ENDED):
                continue  # its active part ended by itself (see watch): only the undo is left
            logger.info("order %s is still in force: applying it again", entry.name)
            fault = FAULTS.get(entry.fault)
            if fault is not None:
                try:
                    fault.apply(self.host, entry.params)
                except (FaultRefused, HostFailed, OSError) as e:
                    logger.error("re-applying %s failed: %s", entry.name, e)
        self.save()

    # -------------------------------------------------------------- loop

    def run_forever(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # the loop must outlive any one failure
                logger.exception("tick failed")
            time.sleep(max(0.0, TICK - (time.monotonic() - started)))

    def tick(self) -> None:
        self.expire_locally()
        try:
            remote = self.remote_orders()
        except ApiUnavailable as e:
            logger.warning("API unavailable: %s", e)
            remote = None
        for step in o.reconcile(self.entries, remote, time.time(), frozenset(FAULTS)):
            self.act(step)
        if remote is not None:
            self.watch()
        self.save()
        if self.heartbeat is not None:
            self.heartbeat.touch()

    def expire_locally(self) -> None:
        now = time.time()
        for entry in list(self.entries.values()):
            if entry.phase == "Applied" and entry.expires_at <= now:
                self.undo(entry, "expired")

    def watch(self) -> None:
        """Gives each applied order whose fault watches (see ``NodeFault.watch``) a look."""
        for entry in list(self.entries.values()):
            fault = FAULTS.get(entry.fault)
            if entry.phase != "Applied" or fault is None or fault.watch is None:
                continue
            if entry.undo.get(ENDED):
                continue
            try:
                info = fault.watch(self.host, self.api, entry.params, entry.undo)
            except (ApiUnavailable, FaultRefused, HostFailed, OSError) as e:
                logger.warning("watching %s: %s", entry.name, e)
                continue
            if info is None:
                continue
            message = entry.message
            if info.get(ENDED):
                message = f"{message}; ended by itself {info[ENDED]}"
                logger.info("order %s: %s ended by itself %s", entry.name, entry.fault, info[ENDED])
            seen = replace(entry, undo={**info, **_kept(entry.undo)}, message=message)
            self.entries[seen.uid] = seen
            self.save()
            self.report(seen)

    def remote_orders(self) -> list[o.Order]:
        result = []
        for obj in self.api.list_orders(self.host.node):
            try:
                order = o.parse_order(obj)
            except o.OrderInvalid as e:
                logger.error("ignoring an order: %s", e)
                continue
            if order.node == self.host.node:
                result.append(order)
        return result

    # -------------------------------------------------------------- steps

    def act(self, step: o.Step) -> None:
        if isinstance(step, o.Apply):
            self.apply(step.order)
        elif isinstance(step, o.Undo):
            self.undo(step.entry, step.reason)
        elif isinstance(step, o.Extend):
            self.extend(step.entry, step.expires_at)
        elif isinstance(step, o.Report):
            self.report(step.entry)
        elif isinstance(step, o.Refuse):
            self.write_status(step.order.name, step.phase, step.message)
        else:
            self.entries.pop(step.entry.uid, None)

    def apply(self, order: o.Order) -> None:
        fault = FAULTS[order.fault]
        entry = o.Entry(
            uid=order.uid,
            name=order.name,
            fault=order.fault,
            params=o.applied_params(order),
            expires_at=order.expires_at,
            phase="Applied",
        )
        # Recorded before the change: a crash in between still leaves the undo to do.
        self.entries[order.uid] = entry
        self.save()
        started = time.monotonic()
        try:
            info = fault.apply(self.host, entry.params)
        except (FaultRefused, HostFailed, OSError) as e:
            logger.error("order %s (%s) failed: %s", order.name, order.fault, e)
            self.entries[order.uid] = replace(entry, phase="Failed", message=str(e))
            try:
                fault.undo(self.host, entry.params, {})
            except (FaultRefused, HostFailed, OSError) as undo_error:
                logger.error("undoing the failed %s: %s", order.name, undo_error)
            self.report(self.entries[order.uid])
            return
        took = time.monotonic() - started
        if took > 1.0:
            # A long apply (waiting for kubelet to stop a static pod): the harness may have
            # renewed the order meanwhile; the local timer must not end it on the old expiry.
            entry = replace(entry, expires_at=self.current_expiry(order))
        message = f"applied in {took:.2f} s" + "".join(f"; {k}={v}" for k, v in info.items())
        if fault.one_shot:
            entry = replace(entry, phase="Undone", undo=info, message=message + "; nothing to undo")
        else:
            entry = replace(entry, undo=info, message=message)
            entry = self.arm(entry, entry.expires_at)
        self.entries[order.uid] = entry
        logger.info("order %s: %s %s", order.name, order.fault, message)
        self.report(entry)

    def current_expiry(self, order: o.Order) -> float:
        """The order's expiry as the API holds it now (the one it had, if it does not answer)."""
        try:
            return max(order.expires_at, o.parse_order(self.api.read_order(order.name)).expires_at)
        except (ApiUnavailable, o.OrderInvalid) as e:
            logger.warning("order %s: expiry not re-read after applying (%s)", order.name, e)
            return order.expires_at

    def arm(self, entry: o.Entry, expires_at: float) -> o.Entry:
        fault = FAULTS[entry.fault]
        if fault.backstop is None:
            return entry
        old = entry.undo.get("backstop")
        if old:
            disarm_backstop(self.host, old)
        self.arms += 1
        unit = f"chaoskit-undo-{entry.uid[:8]}-{int(time.time())}-{self.arms}"
        try:
            arm_backstop(self.host, unit, fault.backstop(entry.undo), expires_at - time.time())
        except HostFailed as e:
            logger.error("no backstop timer for %s: %s", entry.name, e)
            return entry
        return replace(entry, undo={**entry.undo, "backstop": unit})

    def extend(self, entry: o.Entry, expires_at: float) -> None:
        entry = self.arm(replace(entry, expires_at=expires_at), expires_at)
        self.entries[entry.uid] = entry

    def undo(self, entry: o.Entry, reason: str) -> None:
        fault = FAULTS.get(entry.fault)
        late = time.time() - entry.expires_at
        try:
            if fault is not None:
                fault.undo(self.host, entry.params, entry.undo)
            if entry.undo.get("backstop"):
                disarm_backstop(self.host, entry.undo["backstop"])
        except (FaultRefused, HostFailed, OSError) as e:
            # Stays Applied: the next tick tries again.
            logger.error("undoing %s failed (%s): %s", entry.name, reason, e)
            return
        message = f"undone: {reason}" + (f", {late:.2f} s after the expiry" if late >= 0 else "")
        logger.info("order %s %s", entry.name, message)
        done = replace(entry, phase="Undone", message=message, reported=False)
        self.entries[entry.uid] = done
        self.save()
        self.report(done)

    def report(self, entry: o.Entry) -> None:
        info = {k: v for k, v in entry.undo.items() if k != "backstop"}
        if self.write_status(entry.name, entry.phase, entry.message, entry.expires_at, info):
            self.entries[entry.uid] = replace(entry, reported=True)

    def write_status(
        self,
        name: str,
        phase: str,
        message: str,
        expires_at: float | None = None,
        info: dict[str, str] | None = None,
    ) -> bool:
        status: dict[str, object] = {
            "phase": phase,
            "message": message,
            "updated": o.format_time(time.time()),
        }
        if expires_at is not None:
            status["observedExpiresAt"] = o.format_time(expires_at)
        if info:
            status["info"] = info
        try:
            self.api.write_status(name, status)
        except ApiUnavailable as e:
            logger.warning("status of %s not written (kept for later): %s", name, e)
            return False
        return True

    def save(self) -> None:
        self.store.save(self.entries)


def _kept(info: Mapping[str, str]) -> dict[str, str]:
    """What of an entry's info is the agent's own, not the fault's (its backstop timer)."""
    return {k: v for k, v in info.items() if k == "backstop"}
