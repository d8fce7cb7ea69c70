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

TOPOLOGIES = {t.name: t for t in (ECOMMERCE,)}


def find_topology(name: str) -> Topology:
    try:
        return TOPOLOGIES[name]
    except KeyError:
        valid = ", ".join(sorted(TOPOLOGIES))
        raise InvalidInput(f"--topology {name!r}: unknown topology (valid: {valid})") from None
