"""The transactional outbox relay of the order service.

An order's event is written to the ``outbox`` table in the order's own transaction, so
there is never an event without a committed order nor a committed order without an event.
This relay publishes unsent rows to Kafka in id order and sets ``sent_at`` only for the
rows whose delivery the broker acknowledged; the rest stay unsent and are published again
in the next round. After a crash or restart the relay resumes from the table, so events
may be published twice but never lost; the notification consumer absorbs duplicates.

Only one replica relays at a time: the one holding the MySQL lock ``shop_outbox_relay``
(``GET_LOCK`` belongs to a connection, so it is released when its holder dies or, if the
holder is cut off, when the server drops the idle connection after ``wait_timeout``).

Fault switch for tests: with the ``drop_events`` flag on (``POST /admin/drop-events``),
the relay marks rows sent (and ``dropped``) without publishing them — a silent event loss
the integrity ledger must catch.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import pymysql
from confluent_kafka import KafkaError, Message, Producer

from . import kafka, metrics
from .config import Settings
from .db import Database, DbConnection

log = logging.getLogger(__name__)

RELAY_LOCK = "shop_outbox_relay"
BATCH_SIZE = 200
FLUSH_TIMEOUT_S = kafka.DELIVERY_TIMEOUT_MS / 1000 + 5
"""Longer than the producer's delivery timeout, so that every event of a batch is settled."""
LEADER_WAIT_TIMEOUT_S = 60
"""Session wait_timeout of the lock holder's connection: how soon a cut-off leader's lock
is freed. Must exceed the longest pause between its queries (a batch flush)."""
STALLED_ROUNDS = 2
"""Rounds in a row in which the broker acknowledged none of the events sent before the relay
throws its producer away and makes a new one. A librdkafka producer can stay wedged after
its broker's node restarts (every event timing out, hours later, while a new client is
served at once); a fresh one has fresh connections, metadata and producer id. Events it
may have written anyway are published again, which the notification consumer absorbs."""
IDLE_PAUSE_S = 0.1
FOLLOWER_PAUSE_S = 2.0
PENDING_GAUGE_EVERY_S = 5.0


@dataclass(frozen=True)
class OutboxRow:
    id: int
    order_id: str
    topic: str
    payload: str


def event_payload(order_id: str, product_id: str, quantity: int, amount: int, key: str) -> str:
    """The ``order_created`` event as published to the orders topic."""
    return json.dumps(
        {
            "type": "order_created",
            "order_id": order_id,
            "product_id": product_id,
            "quantity": quantity,
            "amount": amount,
            "idempotency_key": key,
            "created_at": time.time(),
        },
        separators=(",", ":"),
    )


@dataclass
class Deliveries:
    """Collects the broker's answers for one batch (delivery callbacks run in flush/poll)."""

    acked: set[int] = field(default_factory=set)
    failed: dict[int, str] = field(default_factory=dict)
    fatal: bool = False

    def callback(self, row_id: int) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                self.acked.add(row_id)
                return
            self.failed[row_id] = str(err)
            if err.fatal():
                self.fatal = True

        return on_delivery


def rows_to_mark(batch: Sequence[OutboxRow], acked: set[int]) -> list[int]:
    """Ids to mark sent after a round: the acknowledged rows of the batch, in id order.

    Unacknowledged rows are not marked and come back, oldest first, in the next batch.
    Each event is keyed by its order id, so publishing a failed row after a later one
    reorders only events of different orders, which nothing downstream depends on.
    """
    return sorted(row.id for row in batch if row.id in acked)


def in_publish_order(rows: Sequence[OutboxRow]) -> list[OutboxRow]:
    return sorted(rows, key=lambda row: row.id)


class OutboxRelay:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        producer_factory: Callable[[Settings], Producer] = kafka.make_producer,
    ) -> None:
        self.settings = settings
        self.db = db
        self._producer_factory = producer_factory
        self._producer: Producer | None = None
        self._conn: DbConnection | None = None
        self._topic_ready = False
        self._last_gauge = 0.0
        self._stalled_rounds = 0
        self.producers_made = 0
        self.leader = False
        self.last_error = ""

    # -- the loop -------------------------------------------------------------------------

    def step(self, stopping: threading.Event) -> float:
        try:
            return self._step(stopping)
        except (pymysql.err.MySQLError, OSError) as exc:
            self._lose_connection()
            self.last_error = f"database: {exc}"
            raise

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)
        self.leader = False  # giving the lock up on purpose: no warning
        self._lose_connection()

    def status(self) -> dict[str, Any]:
        return {
            "leader": self.leader,
            "topic_ready": self._topic_ready,
            "last_error": self.last_error,
            "stalled_rounds": self._stalled_rounds,
            "producers_made": self.producers_made,
        }

    def _step(self, stopping: threading.Event) -> float:
        conn = self._leader_connection()
        if conn is None:
            return FOLLOWER_PAUSE_S
        if not self._topic_ready:
            kafka.ensure_topic(self.settings)
            self._topic_ready = True
        with conn.cursor() as cursor:
            cursor.execute("SELECT enabled FROM shop_flags WHERE name = 'drop_events'")
            flag = cursor.fetchone()
            drop = bool(flag and flag["enabled"])
            metrics.DROP_EVENTS.set(1 if drop else 0)
            cursor.execute(
                "SELECT id, order_id, topic, payload FROM outbox WHERE sent_at IS NULL "
                "ORDER BY id LIMIT %s",
                (BATCH_SIZE,),
            )
            rows = [
                OutboxRow(int(r["id"]), str(r["order_id"]), str(r["topic"]), str(r["payload"]))
                for r in cursor.fetchall()
            ]
        self._update_pending_gauge(conn)
        if not rows:
            return IDLE_PAUSE_S
        if drop:
            self._mark(conn, [row.id for row in rows], dropped=True)
            metrics.OUTBOX_EVENTS.labels("dropped").inc(len(rows))
            log.warning("drop-events fault: marked %d events sent without publishing", len(rows))
            return 0.0
        acked = self._publish(in_publish_order(rows), stopping)
        marked = rows_to_mark(rows, acked)
        self._mark(conn, marked, dropped=False)
        if len(marked) < len(rows):
            return 1.0  # the broker is struggling: let it breathe
        return 0.0 if len(rows) == BATCH_SIZE else IDLE_PAUSE_S

    # -- leadership -----------------------------------------------------------------------

    def _leader_connection(self) -> DbConnection | None:
        if self._conn is None:
            conn = self.db.connect()
            conn.autocommit(True)  # every read sees the newest committed rows
            with conn.cursor() as cursor:
                cursor.execute("SET SESSION wait_timeout = %s", (LEADER_WAIT_TIMEOUT_S,))
            self._conn = conn
            self.last_error = ""
        if not self.leader:
            with self._conn.cursor() as cursor:
                cursor.execute("SELECT GET_LOCK(%s, 0) AS locked", (RELAY_LOCK,))
                row = cursor.fetchone()
            if not row or row["locked"] != 1:
                return None
            self.leader = True
            metrics.RELAY_LEADER.set(1)
            log.info("outbox relay: this replica is the leader")
        return self._conn

    def _lose_connection(self) -> None:
        if self.leader:
            log.warning("outbox relay: lost the leader connection")
        self.leader = False
        metrics.RELAY_LEADER.set(0)
        if self._conn is not None:
            with suppress(pymysql.err.MySQLError, OSError):
                self._conn.close()
            self._conn = None

    # -- publishing -----------------------------------------------------------------------

    def _publish(self, rows: Sequence[OutboxRow], stopping: threading.Event) -> set[int]:
        if self._producer is None:
            self._producer = self._producer_factory(self.settings)
            self.producers_made += 1
        producer = self._producer
        deliveries = Deliveries()
        for row in rows:
            while True:
                try:
                    producer.produce(
                        row.topic,
                        key=row.order_id.encode(),
                        value=row.payload.encode(),
                        on_delivery=deliveries.callback(row.id),
                    )
                    break
                except BufferError:
                    producer.poll(0.1)
                    if stopping.is_set():
                        break
        left = producer.flush(FLUSH_TIMEOUT_S)
        if deliveries.failed:
            first = next(iter(deliveries.failed.values()))
            self.last_error = f"kafka: {first}"
            log.warning(
                "outbox relay: %d of %d events not acknowledged (%s)",
                len(deliveries.failed) + left,
                len(rows),
                first,
            )
            metrics.OUTBOX_EVENTS.labels("failed").inc(len(deliveries.failed))
        else:
            self.last_error = ""
        metrics.OUTBOX_EVENTS.labels("published").inc(len(deliveries.acked))
        self._stalled_rounds = 0 if deliveries.acked else self._stalled_rounds + 1
        if deliveries.fatal:
            log.error("outbox relay: fatal producer error, creating a new producer")
            self._discard_producer()
        elif self._stalled_rounds >= STALLED_ROUNDS:
            log.warning(
                "outbox relay: no event acknowledged in %d rounds in a row, creating a new "
                "producer",
                self._stalled_rounds,
            )
            metrics.RELAY_PRODUCER_RESETS.inc()
            self._discard_producer()
        return deliveries.acked

    def _discard_producer(self) -> None:
        """Drops the producer and whatever it still holds (those rows stay unsent)."""
        producer, self._producer = self._producer, None
        self._stalled_rounds = 0
        if producer is not None:
            with suppress(Exception):  # a wedged client must not stop the relay
                producer.purge()
                producer.flush(0)

    def _mark(self, conn: DbConnection, ids: Sequence[int], dropped: bool) -> None:
        if not ids:
            return
        placeholders = ", ".join(["%s"] * len(ids))
        with conn.cursor() as cursor:
            cursor.execute(
                f"UPDATE outbox SET sent_at = CURRENT_TIMESTAMP(6), dropped = %s "  # noqa: S608 - placeholders only
                f"WHERE id IN ({placeholders})",
                (1 if dropped else 0, *ids),
            )

    def _update_pending_gauge(self, conn: DbConnection) -> None:
        now = time.monotonic()
        if now - self._last_gauge < PENDING_GAUGE_EVERY_S:
            return
        self._last_gauge = now
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")
            row = cursor.fetchone()
        metrics.OUTBOX_PENDING.set(int(row["n"]) if row else 0)
