"""The notification consumer: exactly-once recording and offsets committed after the write."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from chaoskit.topology.shop.config import Settings
from chaoskit.topology.shop.notification import (
    NotificationConsumer,
    Record,
    next_offsets,
    parse_order_id,
    rewind_points,
)
from chaoskit.topology.shop.web import ApiError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b'{"type":"order_created","order_id":"o1"}', "o1"),
        (b'{"order_id": ""}', None),
        (b'{"order_id": 7}', None),
        (b'{"order_id": "' + b"x" * 65 + b'"}', None),
        (b"[1, 2]", None),
        (b"not json", None),
        (b"\xff\xfe", None),
        (None, None),
    ],
)
def test_parse_order_id(value: bytes | None, expected: str | None) -> None:
    assert parse_order_id(value) == expected


def test_offsets_to_commit_and_to_rewind_to_are_per_partition() -> None:
    records = [
        Record("orders", 0, 10, "a"),
        Record("orders", 1, 4, "b"),
        Record("orders", 0, 12, "c"),
        Record("orders", 0, 11, None),
    ]
    assert next_offsets(records) == {("orders", 0): 13, ("orders", 1): 5}
    assert rewind_points(records) == {("orders", 0): 10, ("orders", 1): 4}


class FakeMessage:
    def __init__(self, partition: int, offset: int, value: bytes) -> None:
        self._partition, self._offset, self._value = partition, offset, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "orders"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value


class FakeConsumer:
    def __init__(self, batches: list[list[FakeMessage]]) -> None:
        self.batches = batches
        self.commits: list[list[tuple[str, int, int]]] = []
        self.seeks: list[tuple[str, int, int]] = []

    def subscribe(self, topics: list[str], **_: Any) -> None:
        pass

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        return self.batches.pop(0) if self.batches else []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool = True) -> None:
        assert not asynchronous
        self.commits.append(sorted((o.topic, o.partition, o.offset) for o in offsets))

    def seek(self, partition: TopicPartition) -> None:
        self.seeks.append((partition.topic, partition.partition, partition.offset))


class FakeDatabase:
    """A notifications table with a primary key; ``down`` makes every write fail."""

    def __init__(self) -> None:
        self.notifications: dict[str, tuple[int, int]] = {}
        self.down = False

    @contextmanager
    def transaction(self) -> Iterator[FakeDatabase]:
        if self.down:
            raise ApiError(503, "database_unavailable")
        yield self

    def executemany(self, sql: str, rows: list[tuple[str, int, int]]) -> int:
        assert sql.startswith("INSERT IGNORE")
        inserted = 0
        for order_id, partition, offset in rows:
            if order_id not in self.notifications:
                self.notifications[order_id] = (partition, offset)
                inserted += 1
        return inserted


def event(order_id: str) -> bytes:
    return f'{{"type":"order_created","order_id":"{order_id}"}}'.encode()


def make(
    batches: list[list[FakeMessage]],
) -> tuple[NotificationConsumer, FakeConsumer, FakeDatabase]:
    fake_consumer = FakeConsumer(batches)
    db = FakeDatabase()
    consumer = NotificationConsumer(
        Settings.from_env("notification", env={}),
        db,  # type: ignore[arg-type]
        consumer_factory=lambda settings, group: fake_consumer,  # type: ignore[arg-type,return-value]
    )
    consumer._subscribe = lambda: fake_consumer  # type: ignore[method-assign,assignment,return-value]
    return consumer, fake_consumer, db


def test_each_order_is_recorded_once_and_offsets_committed_after_the_write() -> None:
    batch = [FakeMessage(0, 0, event("o1")), FakeMessage(1, 0, event("o2"))]
    redelivered = [FakeMessage(0, 0, event("o1")), FakeMessage(0, 1, event("o3"))]
    consumer, kafka, db = make([batch, redelivered])
    consumer.step(threading.Event())
    consumer.step(threading.Event())
    assert set(db.notifications) == {"o1", "o2", "o3"}
    assert consumer.recorded == 3
    assert kafka.commits == [[("orders", 0, 1), ("orders", 1, 1)], [("orders", 0, 2)]]


def test_a_failed_write_rewinds_and_commits_nothing() -> None:
    batch = [FakeMessage(0, 7, event("o1")), FakeMessage(0, 8, event("o2"))]
    consumer, kafka, db = make([batch])
    db.down = True
    with pytest.raises(ApiError):
        consumer.step(threading.Event())
    assert kafka.seeks == [("orders", 0, 7)]
    assert kafka.commits == []
    assert db.notifications == {}


def test_an_unreadable_event_is_skipped_but_its_offset_committed() -> None:
    consumer, kafka, db = make([[FakeMessage(2, 5, b"garbage")]])
    consumer.step(threading.Event())
    assert db.notifications == {}
    assert kafka.commits == [[("orders", 2, 6)]]
