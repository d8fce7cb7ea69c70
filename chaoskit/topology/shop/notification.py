"""The notification service: records each order's event exactly once.

A Kafka consumer in group ``notification`` reads the orders topic in batches, inserts one
``notifications`` row per order (PRIMARY KEY order_id + INSERT IGNORE: a redelivered event
changes nothing), commits the database transaction, and only then commits the offsets.
A crash between the two redelivers the batch, which the key absorbs. When the database
write fails, the consumer seeks back to the batch's first offsets and tries again later,
so no event is skipped.

HTTP: GET /notifications/{order_id}; GET /admin/consumer (this replica's consumer state).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import pymysql
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from fastapi import FastAPI, Path

from . import kafka, metrics
from .background import Loop
from .config import Settings
from .db import Database
from .schema import SchemaSetup
from .web import ApiError, create_app

log = logging.getLogger(__name__)

GROUP = "notification"
BATCH_SIZE = 200
POLL_TIMEOUT_S = 0.5

OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


@dataclass(frozen=True)
class Record:
    """Where an event came from, and the order it names (None: unreadable, skipped)."""

    topic: str
    partition: int
    offset: int
    order_id: str | None


def parse_order_id(value: bytes | None) -> str | None:
    """The order id of an ``order_created`` event, or None for anything else."""
    if not value:
        return None
    try:
        event = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    order_id = event.get("order_id") if isinstance(event, dict) else None
    if isinstance(order_id, str) and 0 < len(order_id) <= 64:
        return order_id
    return None


def next_offsets(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    """The offsets to commit after a batch: per partition, one past the highest offset."""
    result: dict[tuple[str, int], int] = {}
    for r in records:
        result[(r.topic, r.partition)] = max(result.get((r.topic, r.partition), 0), r.offset + 1)
    return result


def rewind_points(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    """Where to seek after a failed batch: per partition, its lowest offset in the batch."""
    result: dict[tuple[str, int], int] = {}
    for r in records:
        key = (r.topic, r.partition)
        result[key] = min(result.get(key, r.offset), r.offset)
    return result


class NotificationConsumer:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        consumer_factory: Callable[[Settings, str], Consumer] = kafka.make_consumer,
    ) -> None:
        self.settings = settings
        self.db = db
        self._factory = consumer_factory
        self._consumer: Consumer | None = None
        self.assigned: list[str] = []
        self.last_error = ""
        self.recorded = 0

    def status(self) -> dict[str, Any]:
        return {
            "subscribed": self._consumer is not None,
            "assigned": self.assigned,
            "recorded": self.recorded,
            "last_error": self.last_error,
        }

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _on_assign(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned = sorted(f"{p.topic}-{p.partition}" for p in partitions)
        log.info("assigned %s", ", ".join(self.assigned) or "nothing")

    def _on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("revoked %d partitions", len(partitions))
        self.assigned = []

    def _subscribe(self) -> Consumer:
        kafka.ensure_topic(self.settings)
        consumer = self._factory(self.settings, GROUP)
        consumer.subscribe(
            [self.settings.orders_topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        log.info("subscribed to %s as group %s", self.settings.orders_topic, GROUP)
        return consumer

    def step(self, _stopping: threading.Event) -> float:
        if self._consumer is None:
            self._consumer = self._subscribe()
        consumer = self._consumer
        messages = consumer.consume(num_messages=BATCH_SIZE, timeout=POLL_TIMEOUT_S)
        records = self._records(messages)
        if not records:
            return 0.0
        try:
            self._write(records)
        except (ApiError, pymysql.err.MySQLError) as exc:
            metrics.CONSUMER_ERRORS.inc()
            self.last_error = f"database: {exc}"
            self._rewind(consumer, records)
            raise
        self.last_error = ""
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets(records).items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # The rows are written; a redelivery after this is absorbed by the primary key.
            metrics.CONSUMER_ERRORS.inc()
            self.last_error = f"offset commit: {exc}"
            log.warning("offset commit failed (events will be redelivered): %s", exc)
        return 0.0

    def _records(self, messages: Sequence[Message]) -> list[Record]:
        records = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    log.info("consumer: %s", err)
                    self.last_error = f"kafka: {err}"
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            if topic is None or partition is None or offset is None:
                continue
            order_id = parse_order_id(msg.value())
            if order_id is None:
                metrics.NOTIFICATIONS.labels("invalid").inc()
                log.warning("skipping unreadable event at %s-%d@%d", topic, partition, offset)
            records.append(Record(topic, partition, offset, order_id))
        return records

    def _write(self, records: Sequence[Record]) -> None:
        rows = [(r.order_id, r.partition, r.offset) for r in records if r.order_id is not None]
        if not rows:
            return
        with self.db.transaction() as cursor:
            inserted = cursor.executemany(
                "INSERT IGNORE INTO notifications (order_id, kafka_partition, kafka_offset) "
                "VALUES (%s, %s, %s)",
                rows,
            )
        new = int(inserted or 0)
        self.recorded += new
        metrics.NOTIFICATIONS.labels("recorded").inc(new)
        metrics.NOTIFICATIONS.labels("duplicate").inc(len(rows) - new)

    def _rewind(self, consumer: Consumer, records: Sequence[Record]) -> None:
        for (topic, partition), offset in rewind_points(records).items():
            try:
                consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:  # no longer assigned: its new owner starts there
                log.info("seek %s-%d: %s", topic, partition, exc)


def create(settings: Settings) -> FastAPI:
    db = Database(settings)
    schema = SchemaSetup(settings, db)
    consumer = NotificationConsumer(settings, db)
    consumer_loop = Loop(
        "notification-consumer",
        lambda stopping: consumer.step(stopping) if schema.done else 0.5,
        on_stop=consumer.close,
    )

    def ready() -> dict[str, bool]:
        return {"schema": schema.done, "mysql": db.ping()}

    app = create_app("notification", ready, [schema.loop, consumer_loop])

    @app.get("/notifications/{order_id}")
    def get_notification(order_id: OrderId) -> dict[str, Any]:
        with db.transaction() as cursor:
            cursor.execute(
                "SELECT order_id, kafka_partition, kafka_offset, created_at FROM notifications "
                "WHERE order_id = %s",
                (order_id,),
            )
            row = cursor.fetchone()
        if row is None:
            raise ApiError(404, "not_notified", f"no notification for order {order_id!r}")
        return {**row, "created_at": row["created_at"].isoformat()}

    @app.get("/admin/consumer")
    def consumer_status() -> dict[str, Any]:
        return {**consumer.status(), "loop_failures": consumer_loop.failures}

    return app
