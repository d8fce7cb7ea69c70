from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaoskit.cluster.config import load_config
from chaoskit.errors import InvalidConfig

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kind.yaml"
    path.write_text(text)
    return path


def test_default_config_has_three_etcd_members_and_two_workers() -> None:
    config = load_config(REPO / "kind-config.yaml")
    assert (config.control_planes, config.workers) == (3, 2)
    assert config.document["networking"]["apiServerAddress"] == "127.0.0.1"


def test_quick_config_is_valid() -> None:
    config = load_config(REPO / "kind-config.quick.yaml")
    assert config.control_planes == 1


def test_port_mappings_default_to_loopback(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      - containerPort: 80
        hostPort: 8080
""",
    )
    rendered = yaml.safe_load(load_config(path).render())
    mapping = rendered["nodes"][0]["extraPortMappings"][0]
    assert mapping["listenAddress"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("kind: Cluster\napiVersion: v1\n", "apiVersion", "must be"),
        ("kind: Pod\napiVersion: kind.x-k8s.io/v1alpha4\n", "kind", "must be 'Cluster'"),
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: master\n",
            "nodes[0].role",
            "must be one of",
        ),
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: worker\n",
            "nodes",
            "at least one control-plane",
        ),
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodez: []\n",
            "nodez",
            "unknown field",
        ),
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
            "networking:\n  apiServerAddress: 0.0.0.0\n",
            "networking.apiServerAddress",
            "127.0.0.1",
        ),
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n"
            "    extraPortMappings:\n      - containerPort: 80\n        listenAddress: 0.0.0.0\n",
            "nodes[0].extraPortMappings[0].listenAddress",
            "loopback",
        ),
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n  - role: control-plane\n"
            "    extraPortMappings:\n      - containerPort: 99999\n",
            "nodes[0].extraPortMappings[0].containerPort",
            "port number",
        ),
        ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: Bad_Name\n", "name", "lower"),
        ("[1, 2", "line", "not valid YAML"),
        ("- a\n- b\n", "", "must be a mapping"),
    ],
)
def test_bad_configs_name_file_field_and_reason(
    tmp_path: Path, text: str, field: str, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InvalidConfig) as exc:
        load_config(path)
    assert exc.value.file == str(path)
    assert exc.value.field.startswith(field)
    assert reason in exc.value.reason
    assert exc.value.exit_code == 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="no such file"):
        load_config(tmp_path / "absent.yaml")


def test_the_node_with_port_mappings_is_labelled_as_the_one_that_publishes_them(
    tmp_path: Path,
) -> None:
    # The ingress and Prometheus are placed by this label, and node faults spare its node.
    path = write(
        tmp_path,
        """
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
    labels: {tier: edge}
    extraPortMappings:
      - containerPort: 30080
  - role: worker
""",
    )
    nodes = load_config(path).document["nodes"]
    assert "labels" not in nodes[0] and "labels" not in nodes[2]
    assert nodes[1]["labels"] == {"tier": "edge", "chaoskit.io/publishes-ports": "true"}
