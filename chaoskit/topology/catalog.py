"""The topologies chaoskit can deploy, by name."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from chaoskit.errors import InvalidInput


@dataclass(frozen=True)
class Topology:
    name: str
    description: str
    manifests: str
    """Folder under chaoskit/topology/manifests with a kustomization.yaml."""
    namespace: str
    ingress_node_port: int
    prometheus_node_port: int
    images: tuple[str, ...] | None = None
    """Image build steps it needs (chaoskit.images.factory.TOPOLOGY_IMAGES); None: the
    e-commerce topology's."""
    on_control_planes: bool = False
    """Whether its data tier tolerates the control planes' taint (so every node needs its
    images); otherwise only schedulable nodes and the port-publishing node get them."""

    @property
    def manifests_dir(self) -> Path:
        return Path(str(resources.files("chaoskit.topology") / "manifests" / self.manifests))


ECOMMERCE = Topology(
    name="ecommerce",
    description="ingress -> gateway -> product, order, payment, notification -> Kafka -> MySQL",
    manifests="ecommerce",
    namespace="shop",
    ingress_node_port=30080,
    prometheus_node_port=30090,
)

ECOMMERCE_HA = Topology(
    name="ecommerce-ha",
    description=(
        "the e-commerce shop on a replicated data tier: 3-member Galera (MariaDB), "
        "3-broker Kafka with replication factor 3"
    ),
    manifests="ecommerce-ha",
    namespace="shop",
    on_control_planes=True,  # Galera members and Kafka brokers, one per node
    ingress_node_port=30080,
    prometheus_node_port=30090,
    images=(
        "image:shop",
        "image:kafka",
        "image:mariadb-galera",
        "image:prometheus",
        "image:traefik",
        "image:kube-state-metrics",
    ),
)

TOPOLOGIES = {t.name: t for t in (ECOMMERCE, ECOMMERCE_HA)}


def find_topology(name: str) -> Topology:
    try:
        return TOPOLOGIES[name]
    except KeyError:
        valid = ", ".join(sorted(TOPOLOGIES))
        raise InvalidInput(f"--topology {name!r}: unknown topology (valid: {valid})") from None
