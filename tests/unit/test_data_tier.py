"""The replicated data tier's pieces that need no cluster: the topology entry, its
manifests (an overlay of the default topology), the Kafka quorum's answer, the images."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoskit.errors import InvalidInput
from chaoskit.images.factory import (
    DEFAULT_TOPOLOGY_STEPS,
    GALERA_IMAGE,
    TOPOLOGY_IMAGES,
    contexts_dir,
)
from chaoskit.suite.spec import load_suite
from chaoskit.topology.catalog import ECOMMERCE, ECOMMERCE_HA, find_topology
from chaoskit.topology.datatier import parse_leader_id

QUORUM_STATUS = """ClusterId:              12I4ZJVjQ7aKOC4tx_IDzA
LeaderId:               2
LeaderEpoch:            3
HighWatermark:          1530
MaxFollowerLag:         0
MaxFollowerLagTimeMs:   0
CurrentVoters:          [{"id": 0}, {"id": 1}, {"id": 2}]
CurrentObservers:       []
"""


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _patch(kind: str, name: str) -> dict[str, Any]:
    folder = ECOMMERCE_HA.manifests_dir
    for file in ("galera.yaml", "kafka.yaml"):
        for doc in _documents(folder / file):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no patch for {kind}/{name}")


def test_the_ha_topology_is_found_by_name_next_to_the_default() -> None:
    assert find_topology("ecommerce-ha") is ECOMMERCE_HA
    assert find_topology("ecommerce") is ECOMMERCE
    with pytest.raises(InvalidInput, match="ecommerce-ha"):
        find_topology("nope")


def test_the_ha_topology_builds_galera_instead_of_the_single_server() -> None:
    assert ECOMMERCE_HA.images is not None
    assert "image:mariadb-galera" in ECOMMERCE_HA.images
    assert "image:mariadb" not in ECOMMERCE_HA.images
    assert set(ECOMMERCE_HA.images) <= set(TOPOLOGY_IMAGES)
    # The default topology does not pay for the Galera image.
    assert "image:mariadb-galera" not in DEFAULT_TOPOLOGY_STEPS
    assert TOPOLOGY_IMAGES["image:mariadb-galera"] == GALERA_IMAGE
    context = contexts_dir() / "mariadb-galera"
    for script in ("galera-entrypoint", "galera-ready", "galera-writer", "galera-lib"):
        assert (context / script).is_file()


def test_the_overlay_builds_on_the_default_topology() -> None:
    kustomization = yaml.safe_load((ECOMMERCE_HA.manifests_dir / "kustomization.yaml").read_text())
    assert "../ecommerce" in kustomization["resources"]
    literals = kustomization["configMapGenerator"][0]["literals"]
    assert "KAFKA_REPLICATION_FACTOR=3" in literals


def test_three_members_spread_one_per_node_and_a_writer_service() -> None:
    for name, variable in (("mysql", "GALERA_REPLICAS"), ("kafka", "KAFKA_REPLICAS")):
        sts = _patch("StatefulSet", name)
        assert sts["spec"]["replicas"] == 3
        pod = sts["spec"]["template"]["spec"]
        spread = [c for c in pod["topologySpreadConstraints"] if "maxSkew" in c]
        assert spread[0]["topologyKey"] == "kubernetes.io/hostname"
        assert spread[0]["whenUnsatisfiable"] == "DoNotSchedule"
        assert any(t["key"] == "node-role.kubernetes.io/control-plane" for t in pod["tolerations"])
        main = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in main.get("env", [])}
        assert env[variable] == "3"
    service = _patch("Service", "mysql")
    assert service["spec"]["selector"] == {"chaoskit.io/galera-role": "writer"}
    mysql = _patch("StatefulSet", "mysql")["spec"]["template"]["spec"]["containers"][0]
    assert mysql["readinessProbe"]["exec"]["command"] == ["galera-ready"]


@pytest.mark.parametrize(
    ("status", "leader"),
    [(QUORUM_STATUS, 2), ("LeaderId: -1\n", None), ("Error: timed out\n", None)],
)
def test_the_controller_leader_is_read_from_the_quorum_status(
    status: str, leader: int | None
) -> None:
    assert parse_leader_id(status) == leader


WRITER_SCRIPT = contexts_dir() / "mariadb-galera" / "galera-writer"


def _decide(members: list[dict[str, Any]], me: str, healthy: bool, component: list[str]) -> str:
    """Runs the elector's own jq program (from galera-writer) on a view of the cluster."""
    text = WRITER_SCRIPT.read_text()
    program = text[text.index("DECIDE='") + len("DECIDE='") :]
    program = program[: program.index("'\n")]
    addresses = ",".join(f"{ip}:3306" for ip in component)
    argv = ["jq", "-r", "--arg", "me", me, "--arg", "addrs", f",{addresses},"]
    argv += ["--argjson", "healthy", json.dumps(healthy), program]
    proc = subprocess.run(
        argv,
        input=json.dumps(members),
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def _member(ordinal: int, role: str = "", ready: bool = True) -> dict[str, Any]:
    return {
        "name": f"mysql-{ordinal}",
        "ordinal": ordinal,
        "ip": f"10.0.0.{ordinal + 1}",
        "ready": ready,
        "terminating": False,
        "role": role,
        "state": "started",
    }


ALL = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
WITHOUT_0 = ["10.0.0.2", "10.0.0.3"]


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
@pytest.mark.parametrize(
    ("roles", "me", "healthy", "component", "changes"),
    [
        # A healthy writer keeps it; an unlabelled member becomes reader.
        (("writer", "reader", ""), "mysql-0", True, ALL, ""),
        (("writer", "reader", ""), "mysql-2", True, ALL, "mysql-2 reader"),
        # The writer left the component (its node is lost): the lowest member left claims.
        (("writer", "reader", "reader"), "mysql-1", True, WITHOUT_0, "mysql-1 writer"),
        (("writer", "reader", "reader"), "mysql-2", True, WITHOUT_0, ""),
        # ...and then strips the stale label of the lost member.
        (("writer", "writer", "reader"), "mysql-1", True, WITHOUT_0, "mysql-0 reader"),
        # Two claimed at once: the higher ordinal steps down.
        (("writer", "writer", "reader"), "mysql-1", True, ALL, "mysql-1 reader"),
        # A writer that is not Synced/Primary gives the label up.
        (("writer", "reader", "reader"), "mysql-0", False, [], "mysql-0 reader"),
    ],
)
def test_the_writer_elector_keeps_one_writer_in_the_primary_component(
    roles: tuple[str, str, str], me: str, healthy: bool, component: list[str], changes: str
) -> None:
    members = [_member(i, role) for i, role in enumerate(roles)]
    assert _decide(members, me, healthy, component) == changes


def test_the_data_tier_suites_run_every_data_tier_experiment_on_ecommerce_ha() -> None:
    """Kills and node stops in suites/data-tier.yaml, partitions in suites/partitions-ha.yaml."""
    repo = Path(__file__).resolve().parents[2]
    suite = load_suite(repo / "experiments" / "suites" / "data-tier.yaml")
    partitions = load_suite(repo / "experiments" / "suites" / "partitions-ha.yaml")
    assert suite.topology == partitions.topology == ECOMMERCE_HA.name
    tags = {
        p.resolve(): set(yaml.safe_load(p.read_text()).get("tags") or [])
        for p in (repo / "experiments").glob("*.yaml")
    }
    data_tier = {p for p, t in tags.items() if "data-tier" in t and "partition" not in t}
    partition = {p for p, t in tags.items() if "data-tier" in t and "partition" in t}
    assert len(data_tier) == 4 and len(partition) == 2
    assert {e.file.resolve() for e in suite.experiments} == data_tier
    assert {e.file.resolve() for e in partitions.experiments} == partition
