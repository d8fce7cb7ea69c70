"""Kafka clients of the shop: the order events' producer, consumer and topic.

The producer is idempotent with ``acks=all``: the broker acknowledges an event only once
every in-sync replica has it, and a retried send never writes it twice. The consumer
commits offsets by hand, after the events' effects are in the database.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from .config import Settings

log = logging.getLogger(__name__)
librdkafka_log = logging.getLogger(__name__ + ".librdkafka")

DELIVERY_TIMEOUT_MS = 15_000
"""How long the producer keeps trying to deliver one event before reporting a failure."""


def _log_error(err: KafkaError) -> None:
    # librdkafka's own log (below) already says when a broker is unreachable.
    if err.fatal():
        log.error("kafka fatal error: %s", err)
    else:
        log.debug("kafka: %s", err)


def _common(settings: Settings) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        "client.id": f"shop-{settings.service}",
        "socket.keepalive.enable": True,
        "reconnect.backoff.max.ms": 2000,
        # A restarted broker comes back under a new pod address; a connection attempt that
        # went to the old one must give up quickly rather than after librdkafka's 30 s.
        "socket.connection.setup.timeout.ms": 5000,
        "error_cb": _log_error,
        "logger": librdkafka_log,
    }


def make_producer(settings: Settings) -> Producer:
    return Producer(
        {
            **_common(settings),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": DELIVERY_TIMEOUT_MS,
            "request.timeout.ms": 5000,
        }
    )


def make_consumer(settings: Settings, group: str) -> Consumer:
    return Consumer(
        {
            **_common(settings),
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 2_000,
            "max.poll.interval.ms": 120_000,
            "topic.metadata.refresh.interval.ms": 10_000,
        }
    )


def min_insync_replicas(replication_factor: int) -> int:
    """2 of 3 replicas must have an event before it counts; a single broker has to do alone."""
    return 2 if replication_factor >= 3 else 1


def ensure_topic(settings: Settings, timeout_s: float = 10.0) -> None:
    """Creates the orders topic unless it exists (KafkaException: the broker does not answer)."""
    admin = AdminClient({**_common(settings), "client.id": f"shop-{settings.service}-admin"})
    metadata = admin.list_topics(timeout=timeout_s)
    if settings.orders_topic in metadata.topics:
        return
    topic = NewTopic(
        settings.orders_topic,
        num_partitions=settings.orders_partitions,
        replication_factor=settings.kafka_replication_factor,
        config={"min.insync.replicas": str(min_insync_replicas(settings.kafka_replication_factor))},
    )
    futures = admin.create_topics([topic], request_timeout=timeout_s)
    try:
        futures[settings.orders_topic].result(timeout=timeout_s)
        log.info(
            "created topic %s (%d partitions, replication factor %d)",
            settings.orders_topic,
            settings.orders_partitions,
            settings.kafka_replication_factor,
        )
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return
        raise
