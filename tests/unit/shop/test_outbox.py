"""The outbox relay's rules, against a fake database connection and a fake producer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from chaoskit.topology.shop import outbox
from chaoskit.topology.shop.config import Settings
from chaoskit.topology.shop.outbox import Deliveries, OutboxRelay, OutboxRow, rows_to_mark


@dataclass
class FakeError:
    text: str
    is_fatal: bool = False

    def fatal(self) -> bool:
        return self.is_fatal

    def __str__(self) -> str:
        return self.text


@dataclass
class Table:
    """The outbox and the flags table, as the relay's SQL sees them."""

    rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    drop_events: bool = False
    lock_free: bool = True

    def add(self, row_id: int, order_id: str) -> None:
        self.rows[row_id] = {"id": row_id, "order_id": order_id, "topic": "orders",
                             "payload": f'{{"order_id":"{order_id}"}}', "sent": False,
                             "dropped": False}  # fmt: skip

    def unsent(self) -> list[int]:
        return sorted(i for i, r in self.rows.items() if not r["sent"])


class FakeCursor:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.result: list[dict[str, Any]] = []

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        t = self.table
        if "GET_LOCK" in sql:
            self.result = [{"locked": 1 if t.lock_free else 0}]
        elif "FROM shop_flags" in sql:
            self.result = [{"enabled": int(t.drop_events)}]
        elif "COUNT(*)" in sql:
            self.result = [{"n": len(t.unsent())}]
        elif "FROM outbox WHERE sent_at IS NULL" in sql:
            self.result = [t.rows[i] for i in t.unsent()[: args[0]]]
        elif sql.startswith("UPDATE outbox"):
            dropped, *ids = args
            for i in ids:
                t.rows[i]["sent"] = True
                t.rows[i]["dropped"] = bool(dropped)
            return len(ids)
        return 0

    def fetchone(self) -> dict[str, Any] | None:
        return self.result[0] if self.result else None

    def fetchall(self) -> list[dict[str, Any]]:
        return self.result


class FakeConnection:
    def __init__(self, table: Table) -> None:
        self.table = table

    def autocommit(self, _: bool) -> None:
        pass

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.table)

    def close(self) -> None:
        pass


class FakeDatabase:
    def __init__(self, table: Table) -> None:
        self.table = table

    def connect(self) -> FakeConnection:
        return FakeConnection(self.table)


class FakeProducer:
    """Acknowledges every event except those of ``failing`` order ids."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.published: list[str] = []
        self._queued: list[tuple[str, Callable[[Any, Any], None]]] = []

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: Any) -> None:
        self._queued.append((key.decode(), on_delivery))

    def flush(self, timeout: float = -1) -> int:
        for order_id, callback in self._queued:
            if order_id in self.failing:
                callback(FakeError("Local: Message timed out"), None)
            else:
                self.published.append(order_id)
                callback(None, None)
        self._queued = []
        return 0


@pytest.fixture
def relay_parts(monkeypatch: pytest.MonkeyPatch) -> tuple[OutboxRelay, Table, FakeProducer]:
    monkeypatch.setattr(outbox.kafka, "ensure_topic", lambda settings: None)
    table = Table()
    producer = FakeProducer()
    relay = OutboxRelay(
        Settings.from_env("order", env={}),
        FakeDatabase(table),  # type: ignore[arg-type]
        producer_factory=lambda settings: producer,  # type: ignore[arg-type,return-value]
    )
    return relay, table, producer


def test_rows_to_mark_are_the_acknowledged_ones_in_id_order() -> None:
    batch = [OutboxRow(i, f"o{i}", "orders", "{}") for i in (3, 1, 2, 4)]
    assert rows_to_mark(batch, {4, 1, 3, 99}) == [1, 3, 4]
    assert rows_to_mark(batch, set()) == []


def test_deliveries_sort_acknowledged_failed_and_fatal() -> None:
    deliveries = Deliveries()
    deliveries.callback(1)(None, None)  # type: ignore[arg-type]
    deliveries.callback(2)(FakeError("timed out"), None)  # type: ignore[arg-type]
    assert deliveries.acked == {1}
    assert deliveries.failed == {2: "timed out"}
    assert not deliveries.fatal
    deliveries.callback(3)(FakeError("fenced", is_fatal=True), None)  # type: ignore[arg-type]
    assert deliveries.fatal


def test_unsent_rows_are_published_in_id_order_and_marked_sent(
    relay_parts: tuple[OutboxRelay, Table, FakeProducer],
) -> None:
    relay, table, producer = relay_parts
    for row_id in (5, 2, 9):
        table.add(row_id, f"o{row_id}")
    relay.step(threading.Event())
    assert producer.published == ["o2", "o5", "o9"]
    assert table.unsent() == []
    assert relay.leader


def test_an_unacknowledged_event_stays_unsent_and_goes_first_next_round(
    relay_parts: tuple[OutboxRelay, Table, FakeProducer],
) -> None:
    relay, table, producer = relay_parts
    for row_id in (1, 2, 3):
        table.add(row_id, f"o{row_id}")
    producer.failing = {"o2"}
    relay.step(threading.Event())
    assert table.unsent() == [2]
    assert "Message timed out" in relay.last_error

    table.add(4, "o4")
    producer.failing = set()
    producer.published = []
    relay.step(threading.Event())
    assert producer.published == ["o2", "o4"]
    assert table.unsent() == []


def test_a_replica_without_the_lock_publishes_nothing(
    relay_parts: tuple[OutboxRelay, Table, FakeProducer],
) -> None:
    relay, table, producer = relay_parts
    table.add(1, "o1")
    table.lock_free = False
    assert relay.step(threading.Event()) == outbox.FOLLOWER_PAUSE_S
    assert producer.published == []
    assert table.unsent() == [1]
    assert not relay.leader


def test_the_drop_events_fault_marks_events_sent_without_publishing(
    relay_parts: tuple[OutboxRelay, Table, FakeProducer],
) -> None:
    relay, table, producer = relay_parts
    table.add(1, "o1")
    table.add(2, "o2")
    table.drop_events = True
    relay.step(threading.Event())
    assert producer.published == []
    assert table.unsent() == []
    assert all(row["dropped"] for row in table.rows.values())


class WedgedProducer(FakeProducer):
    """A producer whose broker never answers again: every event times out."""

    def __init__(self) -> None:
        super().__init__()
        self.purged = False

    def flush(self, timeout: float = -1) -> int:
        for _, callback in self._queued:
            callback(FakeError("Local: Message timed out"), None)
        self._queued = []
        return 0

    def purge(self) -> None:
        self.purged = True


def test_a_producer_that_gets_nothing_acknowledged_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After its broker's node restarted, a producer once timed out every event for hours
    while a new client was served at once: the relay makes a new producer after
    STALLED_ROUNDS rounds without one acknowledgement, and the events go out through it."""
    monkeypatch.setattr(outbox.kafka, "ensure_topic", lambda settings: None)
    table = Table()
    wedged, healthy = WedgedProducer(), FakeProducer()
    made: list[FakeProducer] = []

    def factory(_: Settings) -> FakeProducer:
        producer = wedged if not made else healthy
        made.append(producer)
        return producer

    relay = OutboxRelay(
        Settings.from_env("order", env={}),
        FakeDatabase(table),  # type: ignore[arg-type]
        producer_factory=factory,  # type: ignore[arg-type]
    )
    table.add(1, "o1")
    for _ in range(outbox.STALLED_ROUNDS):
        relay.step(threading.Event())
        assert table.unsent() == [1]
    assert wedged.purged
    assert relay.status()["producers_made"] == 1

    relay.step(threading.Event())
    assert made == [wedged, healthy]
    assert healthy.published == ["o1"]
    assert table.unsent() == []
    assert relay.status()["stalled_rounds"] == 0


def test_a_round_with_one_acknowledgement_keeps_the_producer(
    relay_parts: tuple[OutboxRelay, Table, FakeProducer],
) -> None:
    relay, table, producer = relay_parts
    for round_ in range(outbox.STALLED_ROUNDS + 2):
        table.add(2 * round_ + 1, f"ok{round_}")
        table.add(2 * round_ + 2, f"bad{round_}")
        producer.failing.add(f"bad{round_}")
        relay.step(threading.Event())
    assert relay.status()["producers_made"] == 1
    assert relay.status()["stalled_rounds"] == 0
