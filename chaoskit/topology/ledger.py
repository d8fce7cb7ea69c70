"""The integrity ledger: every order a client was told succeeded must exist exactly once.

Clients (the load generator, tests) record each acknowledged order: the idempotency key
they sent and the order id the shop answered with. The ledger reconciles that record with
what the shop's database holds, the orders and the notifications written by the consumer
of the order events, and names every discrepancy:

- lost order: acknowledged to a client, not in the database;
- lost event: in the database, but no notification was ever recorded for it (the event
  never reached Kafka, or its consumer dropped it);
- duplicated: one idempotency key stored as more than one order, or one order notified
  more than once;
- orphaned: stored but never acknowledged (the client timed out after the commit). These
  are expected under faults and reported, but they are no loss.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Ack:
    """What a client was told: its idempotency key was accepted as ``order_id``."""

    idempotency_key: str
    order_id: str


@dataclass(frozen=True)
class StoredOrder:
    order_id: str
    idempotency_key: str


@dataclass(frozen=True)
class LedgerReport:
    acknowledged: int
    stored: int
    notified: int
    lost_orders: tuple[str, ...] = field(default=())
    lost_events: tuple[str, ...] = field(default=())
    duplicated: tuple[str, ...] = field(default=())
    orphaned: tuple[str, ...] = field(default=())
    mismatched: tuple[str, ...] = field(default=())
    """Acknowledged ids whose key is stored under another order id."""

    @property
    def ok(self) -> bool:
        return not (self.lost_orders or self.lost_events or self.duplicated or self.mismatched)

    def summary(self) -> str:
        return (
            f"{self.acknowledged} acknowledged, {self.stored} stored, {self.notified} notified: "
            f"{len(self.lost_orders)} lost, {len(self.lost_events)} lost events, "
            f"{len(self.duplicated)} duplicated, {len(self.orphaned)} orphaned"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def reconcile(
    acks: Iterable[Ack], orders: Iterable[StoredOrder], notified_order_ids: Iterable[str]
) -> LedgerReport:
    """Compares what clients were told with what the shop stored and notified."""
    ack_list = list(acks)
    order_list = list(orders)
    notifications = Counter(notified_order_ids)

    by_key: dict[str, list[str]] = {}
    for order in order_list:
        by_key.setdefault(order.idempotency_key, []).append(order.order_id)
    stored_ids = {o.order_id for o in order_list}
    acked_ids = {a.order_id for a in ack_list}

    lost_orders, mismatched = [], []
    for ack in ack_list:
        if ack.order_id in stored_ids:
            continue
        if ack.idempotency_key in by_key:
            mismatched.append(ack.order_id)
        else:
            lost_orders.append(ack.order_id)
    duplicated = [key for key, ids in by_key.items() if len(ids) > 1]
    duplicated += [oid for oid, count in notifications.items() if count > 1]
    lost_events = [oid for oid in sorted(stored_ids) if notifications[oid] == 0]
    orphaned = [oid for oid in sorted(stored_ids) if oid not in acked_ids]
    return LedgerReport(
        acknowledged=len(ack_list),
        stored=len(order_list),
        notified=sum(1 for oid in notifications if oid in stored_ids),
        lost_orders=tuple(sorted(lost_orders)),
        lost_events=tuple(lost_events),
        duplicated=tuple(sorted(duplicated)),
        orphaned=tuple(orphaned),
        mismatched=tuple(sorted(mismatched)),
    )
