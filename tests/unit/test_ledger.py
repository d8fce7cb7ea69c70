from __future__ import annotations

from chaoskit.topology.ledger import Ack, StoredOrder, reconcile


def test_a_clean_run_reconciles() -> None:
    acks = [Ack("k1", "o1"), Ack("k2", "o2")]
    orders = [StoredOrder("o1", "k1"), StoredOrder("o2", "k2")]
    report = reconcile(acks, orders, ["o1", "o2"])
    assert report.ok
    assert (report.acknowledged, report.stored, report.notified) == (2, 2, 2)
    assert report.summary().startswith("2 acknowledged, 2 stored, 2 notified: 0 lost")


def test_an_acknowledged_order_missing_from_the_database_is_lost() -> None:
    report = reconcile([Ack("k1", "o1"), Ack("k2", "o2")], [StoredOrder("o1", "k1")], ["o1"])
    assert not report.ok
    assert report.lost_orders == ("o2",)


def test_a_stored_order_without_notification_is_a_lost_event() -> None:
    report = reconcile([Ack("k1", "o1")], [StoredOrder("o1", "k1")], [])
    assert not report.ok
    assert report.lost_events == ("o1",)


def test_duplicates_by_key_and_by_notification() -> None:
    orders = [StoredOrder("o1", "k1"), StoredOrder("o9", "k1")]
    report = reconcile([Ack("k1", "o1")], orders, ["o1", "o9", "o9"])
    assert not report.ok
    assert report.duplicated == ("k1", "o9")


def test_orphans_are_reported_but_are_no_loss() -> None:
    report = reconcile(
        [Ack("k1", "o1")], [StoredOrder("o1", "k1"), StoredOrder("o2", "k2")], ["o1", "o2"]
    )
    assert report.ok
    assert report.orphaned == ("o2",)


def test_an_ack_whose_key_is_stored_under_another_id_is_a_mismatch() -> None:
    report = reconcile([Ack("k1", "o1")], [StoredOrder("o7", "k1")], ["o7"])
    assert not report.ok
    assert report.mismatched == ("o1",)
    assert report.lost_orders == ()
