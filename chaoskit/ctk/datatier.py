"""Chaos Toolkit actions for the replicated data tier (topology ``ecommerce-ha``).

Faults pick their victims by label selector; these actions put the labels where the data
tier's roles are, for the roles that the data tier does not label by itself (the Galera
writer is labelled by its own elector, ``chaoskit.io/galera-role=writer``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["mark_kafka_controller_leader"]


def mark_kafka_controller_leader(
    *, namespace: str = "shop", configuration: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Labels the pod of the active Kafka controller ``chaoskit.io/kafka-role=
    controller-leader`` (asked of the KRaft quorum), so that a fault can select it or
    its node (``holding: shop/chaoskit.io/kafka-role=controller-leader``)."""
    from chaoskit.ctk import context  # noqa: PLC0415 - heavy: only when running
    from chaoskit.topology import datatier  # noqa: PLC0415 - heavy: only when running

    ctx = context.get(configuration)
    ctx.target.check_namespace(namespace)
    leader = datatier.label_kafka_controller_leader(ctx.target.api(), namespace)
    return {
        "controller_leader": f"{namespace}/{leader}",
        "selector": datatier.KAFKA_LEADER_SELECTOR,
    }
