"""Reading and checking a kind cluster config before kind sees it.

kind reports a bad config with a Go error after it has started work; chaoskit checks the
fields it depends on first, so a mistake gets one line naming the file, the field and the
reason, and nothing is created. The checked config is then rendered with chaoskit's
defaults: the API server and every port mapping bound to 127.0.0.1 only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chaoskit.documents import read_document
from chaoskit.errors import InvalidConfig

DEFAULT_NAME = "chaoskit"
API_VERSION = "kind.x-k8s.io/v1alpha4"
LOOPBACK = "127.0.0.1"
PUBLISHES_PORTS_LABEL = "chaoskit.io/publishes-ports"
ROLES = ("control-plane", "worker")
CLUSTER_FIELDS = frozenset(
    {
        "kind",
        "apiVersion",
        "name",
        "nodes",
        "networking",
        "featureGates",
        "runtimeConfig",
        "kubeadmConfigPatches",
        "kubeadmConfigPatchesJSON6902",
        "containerdConfigPatches",
        "containerdConfigPatchesJSON6902",
    }
)
NODE_FIELDS = frozenset(
    {
        "role",
        "image",
        "labels",
        "extraMounts",
        "extraPortMappings",
        "kubeadmConfigPatches",
        "kubeadmConfigPatchesJSON6902",
    }
)
NETWORKING_FIELDS = frozenset(
    {
        "ipFamily",
        "apiServerAddress",
        "apiServerPort",
        "podSubnet",
        "serviceSubnet",
        "disableDefaultCNI",
        "kubeProxyMode",
        "dnsSearch",
    }
)


@dataclass(frozen=True)
class ClusterConfig:
    """A checked kind config: the document to hand to kind, and what chaoskit needs of it."""

    path: Path
    document: dict[str, Any]
    control_planes: int
    workers: int

    @property
    def name(self) -> str | None:
        value = self.document.get("name")
        return str(value) if value else None

    def render(self) -> str:
        return yaml.safe_dump(self.document, sort_keys=False)


def _mapping(file: Path, field: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidConfig(file, field, f"must be a mapping, not {type(value).__name__}")
    return value


def _unknown(file: Path, prefix: str, value: dict[str, Any], known: frozenset[str]) -> None:
    for key in value:
        if key not in known:
            where = f"{prefix}.{key}" if prefix else str(key)
            raise InvalidConfig(file, where, f"unknown field (known: {', '.join(sorted(known))})")


def load_config(path: Path) -> ClusterConfig:
    """Reads and checks ``path``; raises :class:`InvalidConfig` naming the bad field."""
    raw = read_document(path)
    return check_config(path, raw)


def check_config(path: Path, raw: object) -> ClusterConfig:
    doc = _mapping(path, "", raw)
    _unknown(path, "", doc, CLUSTER_FIELDS)
    if doc.get("kind") != "Cluster":
        raise InvalidConfig(path, "kind", f"must be 'Cluster', not {doc.get('kind')!r}")
    if doc.get("apiVersion") != API_VERSION:
        raise InvalidConfig(
            path, "apiVersion", f"must be {API_VERSION!r}, not {doc.get('apiVersion')!r}"
        )
    name = doc.get("name")
    if name is not None and not (isinstance(name, str) and valid_name(name)):
        raise InvalidConfig(path, "name", "must be lower-case letters, digits and '-'")

    networking = _mapping(path, "networking", doc.get("networking") or {})
    _unknown(path, "networking", networking, NETWORKING_FIELDS)
    address = networking.get("apiServerAddress", LOOPBACK)
    if address != LOOPBACK:
        raise InvalidConfig(
            path,
            "networking.apiServerAddress",
            f"must be {LOOPBACK} (chaoskit publishes the API on loopback only), not {address!r}",
        )
    networking["apiServerAddress"] = LOOPBACK
    doc["networking"] = networking

    nodes = doc.get("nodes") or [{"role": "control-plane"}]
    if not isinstance(nodes, list) or not nodes:
        raise InvalidConfig(path, "nodes", "must be a non-empty list of nodes")
    control_planes = workers = 0
    for i, node_raw in enumerate(nodes):
        field = f"nodes[{i}]"
        node = _mapping(path, field, node_raw)
        _unknown(path, field, node, NODE_FIELDS)
        role = node.get("role", "control-plane")
        if role not in ROLES:
            raise InvalidConfig(path, f"{field}.role", f"must be one of {', '.join(ROLES)}")
        control_planes += role == "control-plane"
        workers += role == "worker"
        if _check_ports(path, field, node):
            # The ingress runs where the host's ports arrive (a worker lost then takes no
            # connection with it), and faults spare that node: one label says which it is.
            labels = _mapping(path, f"{field}.labels", node.setdefault("labels", {}) or {})
            labels[PUBLISHES_PORTS_LABEL] = "true"
            node["labels"] = labels
    if control_planes == 0:
        raise InvalidConfig(path, "nodes", "needs at least one control-plane node")
    doc["nodes"] = nodes
    return ClusterConfig(path, doc, control_planes, workers)


def _check_ports(path: Path, field: str, node: dict[str, Any]) -> bool:
    """Checks a node's port mappings; True if it has any."""
    mappings = node.get("extraPortMappings") or []
    if not isinstance(mappings, list):
        raise InvalidConfig(path, f"{field}.extraPortMappings", "must be a list")
    for j, mapping_raw in enumerate(mappings):
        where = f"{field}.extraPortMappings[{j}]"
        mapping = _mapping(path, where, mapping_raw)
        for port in ("containerPort", "hostPort"):
            value = mapping.get(port)
            if port == "containerPort" and value is None:
                raise InvalidConfig(path, f"{where}.{port}", "is required")
            if value is not None and not (isinstance(value, int) and 0 < value < 65536):
                raise InvalidConfig(path, f"{where}.{port}", "must be a port number 1-65535")
        listen = mapping.setdefault("listenAddress", LOOPBACK)
        if listen != LOOPBACK:
            raise InvalidConfig(
                path, f"{where}.listenAddress", f"must be {LOOPBACK} (host ports stay on loopback)"
            )
    return bool(mappings)


def valid_name(name: str) -> bool:
    """kind cluster names become container and DNS names: keep them simple."""
    return (
        0 < len(name) <= 50
        and name[0].isalnum()
        and all(c.islower() or c.isdigit() or c == "-" for c in name)
    )
