"""Faults on a cluster chaoskit did not make: a plain ``kind create cluster`` (from the node
image the session's cluster uses), reached only through its kubeconfig file and an
allowed context, not in chaoskit's state. Faults below the API pass through the agent,
which the run installs and removes; node power faults are refused before anything
changes.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from chaoskit.cluster.lifecycle import recorded
from chaoskit.images.factory import kind_binary
from chaoskit.settings import Settings
from tests.e2e.harness import Cluster, chaoskit

NAME = "ck-foreign"
CONTEXT = f"kind-{NAME}"
KIND_CONFIG = """\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  apiServerAddress: "127.0.0.1"
nodes:
  - role: control-plane
  - role: worker
"""


def _action(name: str, func: str, **arguments: object) -> dict[str, object]:
    provider = {"type": "python", "module": "chaoskit.ctk.actions", "func": func}
    return {"type": "action", "name": name, "provider": {**provider, "arguments": arguments}}


EXPERIMENT: dict[str, object] = {
    "version": "1.0.0",
    "title": "Below-API faults on a cluster chaoskit did not make",
    "description": "kubelet stopped, containerd killed, the scheduler held down.",
    "tags": ["chaoskit", "agent"],
    "controls": [
        {"name": "chaoskit", "provider": {"type": "python", "module": "chaoskit.ctk.control"}}
    ],
    "method": [
        _action("stop-kubelet", "stop_kubelet", role="worker", duration=5),
        _action("kill-containerd", "kill_containerd", role="worker"),
        _action("hold-scheduler", "stop_control_plane", component="kube-scheduler", duration=5),
    ],
}


def wait_nodes_ready(kubeconfig: Path, *, timeout: float) -> None:
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    deadline = time.monotonic() + timeout
    while True:
        nodes = core.list_node().items
        ready = [
            any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
            for n in nodes
        ]
        if len(ready) == 2 and all(ready):
            return
        assert time.monotonic() < deadline, f"{NAME}'s nodes not Ready after {timeout:.0f} s"
        time.sleep(2)


@pytest.fixture(scope="module")
def foreign(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 1+1 kind cluster made with kind itself; its kubeconfig file."""
    settings = Settings.from_env()
    info = recorded(settings, cluster.name)
    assert info is not None
    work = tmp_path_factory.mktemp("foreign")
    (work / "kind.yaml").write_text(KIND_CONFIG)
    kubeconfig = work / "kubeconfig"
    kind = str(kind_binary(settings))
    subprocess.run([kind, "delete", "cluster", "--name", NAME], capture_output=True, check=False)
    started = time.monotonic()
    made = subprocess.run(
        [kind, "create", "cluster", "--name", NAME, "--image", info.image,
         "--config", str(work / "kind.yaml"), "--kubeconfig", str(kubeconfig), "--wait", "300s"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    print(f"kind create cluster {NAME}: {time.monotonic() - started:.1f} s")
    try:
        assert made.returncode == 0, made.stderr[-3000:]
        # kind's --wait covers the control plane only: the worker must be Ready too.
        wait_nodes_ready(kubeconfig, timeout=300)
        print(f"{NAME} Ready: {time.monotonic() - started:.1f} s")
        yield kubeconfig
    finally:
        subprocess.run(
            [kind, "delete", "cluster", "--name", NAME],
            capture_output=True,
            timeout=300,
            check=False,
        )


def _run(
    experiment: dict[str, object], kubeconfig: Path, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment))
    return chaoskit(
        "run", str(path), "--kubeconfig", str(kubeconfig), "--allow-context", CONTEXT,
        "--namespace", "default", "--output", str(tmp_path / "result.json"), timeout=1200,
    )  # fmt: skip


def test_below_api_faults_pass_through_the_agent_the_run_installs(
    foreign: Path, tmp_path: Path
) -> None:
    proc = _run(EXPERIMENT, foreign, tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((tmp_path / "result.json").read_text())
    steps = {step["activity"]["name"]: step for step in doc["journal"]["run"]}
    assert all(s["status"] == "succeeded" for s in steps.values()), steps
    assert steps["stop-kubelet"]["output"]["details"][0]["agent"] == {"unit": "kubelet"}
    assert steps["kill-containerd"]["output"]["details"][0]["restarted_after_s"] < 30
    held = steps["hold-scheduler"]["output"]["details"][0]
    assert held["held"] == "kube-scheduler.yaml" and held["stopped_after_s"] is not None
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(foreign)))
    with pytest.raises(client.ApiException) as gone:
        core.read_namespace("chaoskit-system")
    assert gone.value.status == 404, "the run that installed the agent removes it"
    wait_nodes_ready(foreign, timeout=180)


def test_node_power_faults_are_refused_off_chaoskits_clusters(
    foreign: Path, tmp_path: Path
) -> None:
    experiment = {**EXPERIMENT, "method": [_action("stop-node", "stop_nodes", role="worker")]}
    proc = _run(experiment, foreign, tmp_path)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("chaoskit: error:")]
    assert "node-stop is a power fault" in error and f"not on context '{CONTEXT}'" in error
    state = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Status}}", f"{NAME}-worker"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    assert state == "running"
