"""Fault orders: what the harness asks a node's agent to do, and until when.

An order is a ``FaultOrder`` object (``faultorders.chaoskit.io``) in namespace
``chaoskit-system``: the node, the fault, its parameters (strings) and an absolute expiry.
The harness renews the expiry while it lives; the agent undoes the fault at the expiry by
itself. This module is shared by the harness and the agent (which runs it in its own image),
so it uses the standard library only.

The agent keeps what it applied in a local file, so that what it decides does not depend
on the API answering: ``reconcile`` (each tick) and ``recover`` (at start) are pure
functions of that file's entries, the orders the API returned (``None``: it did not
answer) and the time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

GROUP = "chaoskit.io"
VERSION = "v1alpha1"
PLURAL = "faultorders"
KIND = "FaultOrder"
NAMESPACE = "chaoskit-system"
NODE_LABEL = "chaoskit.io/node"
"""Set on every order: the agent lists only its node's orders (a label selector works on
every Kubernetes version; CRD field selectors need 1.32)."""

RUN_LABEL = "chaoskit.io/run"
"""The chaoskit run that ordered it (``chaoskit recover`` finds a dead run's orders)."""
HARNESS_ANNOTATION = "chaoskit.io/harness"
"""host:pid of the harness process that renews it."""
ORDER_PARAM = "chaoskit.io/order"
"""Added by the agent to the parameters it applies and undoes an order with: the order's
name, which a fault puts on what it changes (an iptables comment) to find it again."""

Phase = Literal["Pending", "Applied", "Undone", "Failed", "Expired"]
TERMINAL: tuple[str, ...] = ("Undone", "Failed", "Expired")
"""Phases after which the agent never touches the order again."""


class OrderInvalid(ValueError):
    """An order object that cannot be acted on; the message names the field."""


def parse_time(value: str) -> float:
    """RFC 3339 (what the API stores for a date-time) -> seconds since the epoch."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError as e:
        raise OrderInvalid(f"not an RFC 3339 time: {value!r}") from e
    if parsed.tzinfo is None:
        raise OrderInvalid(f"time without a zone: {value!r}")
    return parsed.timestamp()


def format_time(epoch: float) -> str:
    """Seconds since the epoch -> RFC 3339 in UTC with milliseconds."""
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Order:
    """One FaultOrder as the API holds it."""

    name: str
    uid: str
    node: str
    fault: str
    params: Mapping[str, str]
    expires_at: float
    phase: str = "Pending"
    """The agent's last written status phase ("Pending" before it wrote one)."""
    message: str = ""
    info: Mapping[str, str] = field(default_factory=dict)
    """What the agent reported of the fault (victim pids, how long a stop took, ...)."""
    run: str = ""
    harness: str = ""

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL


def parse_order(obj: Mapping[str, Any]) -> Order:
    """A FaultOrder object from the API -> Order (OrderInvalid names the bad field)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    name = str(meta.get("name") or "")
    uid = str(meta.get("uid") or "")
    if not name or not uid:
        raise OrderInvalid("metadata.name and metadata.uid are required")
    for key in ("node", "fault", "expiresAt"):
        if not isinstance(spec.get(key), str) or not spec[key]:
            raise OrderInvalid(f"{name}: spec.{key} is required (a string)")
    raw_params = spec.get("params") or {}
    if not isinstance(raw_params, Mapping):
        raise OrderInvalid(f"{name}: spec.params must be a map of strings")
    params = {str(k): str(v) for k, v in raw_params.items()}
    try:
        expires_at = parse_time(spec["expiresAt"])
    except OrderInvalid as e:
        raise OrderInvalid(f"{name}: spec.expiresAt: {e}") from e
    return Order(
        name=name,
        uid=uid,
        node=spec["node"],
        fault=spec["fault"],
        params=params,
        expires_at=expires_at,
        phase=str(status.get("phase") or "Pending"),
        message=str(status.get("message") or ""),
        info={str(k): str(v) for k, v in dict(status.get("info") or {}).items()},
        run=str((meta.get("labels") or {}).get(RUN_LABEL) or ""),
        harness=str((meta.get("annotations") or {}).get(HARNESS_ANNOTATION) or ""),
    )


def order_object(
    name: str,
    node: str,
    fault: str,
    params: Mapping[str, str],
    expires_at: float,
    *,
    run: str = "",
    harness: str = "",
) -> dict[str, Any]:
    """The FaultOrder object the harness creates."""
    labels = {NODE_LABEL: node, **({RUN_LABEL: run} if run else {})}
    annotations = {HARNESS_ANNOTATION: harness} if harness else {}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "node": node,
            "fault": fault,
            "params": dict(params),
            "expiresAt": format_time(expires_at),
        },
    }


def applied_params(order: Order) -> dict[str, str]:
    """The parameters the agent applies ``order`` with: its own and its name."""
    return {**order.params, ORDER_PARAM: order.name}


# ---------------------------------------------------------------------------- local file


@dataclass(frozen=True)
class Entry:
    """What the agent's local file holds about one order it acted on."""

    uid: str
    name: str
    fault: str
    params: Mapping[str, str]
    expires_at: float
    phase: Phase
    message: str = ""
    undo: Mapping[str, str] = field(default_factory=dict)
    """What the fault's apply returned and its undo needs (e.g. where a manifest went)."""
    reported: bool = False
    """True once the API holds this phase in the order's status."""

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "name": self.name,
            "fault": self.fault,
            "params": dict(self.params),
            "expiresAt": format_time(self.expires_at),
            "phase": self.phase,
            "message": self.message,
            "undo": dict(self.undo),
            "reported": self.reported,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        phase = str(data["phase"])
        if phase not in ("Pending", "Applied", *TERMINAL):
            raise OrderInvalid(f"entry {data.get('name')!r}: unknown phase {phase!r}")
        return cls(
            uid=str(data["uid"]),
            name=str(data["name"]),
            fault=str(data["fault"]),
            params={str(k): str(v) for k, v in dict(data.get("params") or {}).items()},
            expires_at=parse_time(str(data["expiresAt"])),
            phase=phase,  # type: ignore[arg-type]
            message=str(data.get("message") or ""),
            undo={str(k): str(v) for k, v in dict(data.get("undo") or {}).items()},
            reported=bool(data.get("reported")),
        )


# ---------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Apply:
    order: Order


@dataclass(frozen=True)
class Undo:
    entry: Entry
    reason: str


@dataclass(frozen=True)
class Extend:
    """The harness renewed the order: the local timer moves to the new expiry."""

    entry: Entry
    expires_at: float


@dataclass(frozen=True)
class Report:
    """Write the entry's phase to the order's status (the API answered)."""

    entry: Entry


@dataclass(frozen=True)
class Refuse:
    """Mark an order that was never applied (expired already, unknown fault)."""

    order: Order
    phase: Phase
    message: str


@dataclass(frozen=True)
class Forget:
    """Drop an entry from the local file: nothing is left to do or to report."""

    entry: Entry


Step = Apply | Undo | Extend | Report | Refuse | Forget


def reconcile(
    entries: Mapping[str, Entry],
    remote: list[Order] | None,
    now: float,
    known_faults: frozenset[str],
) -> list[Step]:
    """What to do this tick. ``entries``: the local file by uid; ``remote``: this node's
    orders from the API, or None when it did not answer (then only local expiries act)."""
    by_uid = {o.uid: o for o in remote} if remote is not None else None
    steps = [step for uid, e in entries.items() for step in _settle(uid, e, by_uid, now)]
    for order in remote or []:
        if order.uid in entries or order.terminal or order.phase == "Applied":
            # "Applied" without a local entry: the file was lost; the status says it was
            # applied, so it cannot be re-applied blindly. recover() handles a kept file.
            continue
        if order.expires_at <= now:
            steps.append(Refuse(order, "Expired", "expired before the agent applied it"))
        elif order.fault not in known_faults:
            known = ", ".join(sorted(known_faults))
            steps.append(Refuse(order, "Failed", f"unknown fault {order.fault!r} ({known})"))
        else:
            steps.append(Apply(order))
    return steps


def _settle(uid: str, entry: Entry, by_uid: dict[str, Order] | None, now: float) -> list[Step]:
    """What one local entry needs this tick."""
    if entry.phase != "Applied":
        # Terminal locally: report it once the API answers; forget it once reported (the
        # order's status then keeps the agent from acting on it again).
        if by_uid is None:
            return []
        return [Forget(entry)] if uid not in by_uid or entry.reported else [Report(entry)]
    if by_uid is None:
        return [Undo(entry, "expired")] if entry.expires_at <= now else []
    order = by_uid.get(uid)
    if order is None:
        return [Undo(entry, "its order was deleted")]
    steps: list[Step] = []
    expires_at = entry.expires_at
    if order.expires_at != entry.expires_at:
        expires_at = order.expires_at
        steps.append(Extend(entry, expires_at))
    if expires_at <= now:
        steps.append(Undo(replace(entry, expires_at=expires_at), "expired"))
    elif order.phase != "Applied":
        # Applied here, but the status write failed (an API server whose own etcd member
        # the fault just stopped): say so now, or the harness waits for it until the end.
        steps.append(Report(entry))
    return steps


@dataclass(frozen=True)
class Recovery:
    undo: list[Entry]
    """Applied entries whose expiry has passed: undone at once."""
    reapply: list[Entry]
    """Applied entries still within their expiry: applied again (idempotent) and kept."""


def recover(entries: Mapping[str, Entry], now: float) -> Recovery:
    """What an agent that (re)starts does with the applied entries of its local file.

    Unexpired orders are re-applied, not undone: the harness still holds them (it renews
    them), and an agent restart must not end a fault early; re-applying also repairs a
    fault that came partly undone meanwhile (a unit restarted). Expired ones are undone:
    nobody renewed them, so the harness is gone or has released them.
    """
    applied = [e for e in entries.values() if e.phase == "Applied"]
    return Recovery(
        undo=[e for e in applied if e.expires_at <= now],
        reapply=[e for e in applied if e.expires_at > now],
    )
