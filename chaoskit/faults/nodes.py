"""The node containers of a kind cluster, and the power faults' Docker commands.

Every kind node is a Docker container named after the node. The power faults (stop,
kill, pause, restart a node) run ``docker`` on the host; every other fault below the API
is an order to the node agent (:mod:`chaoskit.faults.agentnodes`). What is left of
``docker exec`` here undoes changes that older chaoskit versions recorded (a manifest
moved, a unit stopped) for ``chaoskit recover``. Every command and its output are
appended to one log.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from chaoskit.faults.errors import FaultFailed
from chaoskit.proc import capture

logger = logging.getLogger(__name__)

CLUSTER_LABEL = "io.x-k8s.kind.cluster"
ROLE_LABEL = "io.x-k8s.kind.role"
MANIFESTS = "/etc/kubernetes/manifests"
HELD_MANIFESTS = "/etc/kubernetes/chaoskit-held"
"""Where a held-down static pod's manifest waits; outside the folder kubelet reads."""


@dataclass(frozen=True)
class NodeContainer:
    name: str
    role: str
    """control-plane, worker or external-load-balancer."""
    state: str
    """Docker's state: running, paused, exited, ..."""
    publishes_ports: bool
    """True for the node that publishes the topology's NodePorts on the host."""


API_SERVER_PORT = "6443/tcp"
"""kind publishes it on every control plane of a multi-control-plane cluster."""


def publishes_topology_ports(ports: str) -> bool:
    """True when ``docker ps``'s Ports column maps a port other than the API server's: the
    node that publishes the topology's NodePorts (kind-config.yaml's extraPortMappings)."""
    for mapping in ports.split(","):
        _, arrow, container_port = mapping.strip().partition("->")
        if arrow and container_port != API_SERVER_PORT:
            return True
    return False


class NodeOps:
    """Docker-level operations on the nodes of one kind cluster."""

    def __init__(self, cluster: str, log: Path) -> None:
        self.cluster = cluster
        self.log = log
        self._lock = threading.Lock()

    def _record(self, argv: list[str], proc: subprocess.CompletedProcess[str], took: float) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.log.open("a") as out:
            out.write(f"\n[{time.strftime('%H:%M:%S')}] $ {shlex.join(argv)}\n")
            if proc.stdout.strip():
                out.write(proc.stdout if proc.stdout.endswith("\n") else proc.stdout + "\n")
            if proc.stderr.strip():
                out.write(proc.stderr if proc.stderr.endswith("\n") else proc.stderr + "\n")
            out.write(f"# exit {proc.returncode} after {took:.2f} s\n")

    def run(
        self, argv: list[str], *, what: str, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = capture(argv, timeout=timeout)
        self._record(argv, proc, time.monotonic() - started)
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            reason = detail[-1] if detail else f"exit {proc.returncode}"
            raise FaultFailed(f"{what} failed: {reason}", log=self.log)
        return proc

    def containers(self) -> list[NodeContainer]:
        """Every container of the cluster (nodes and load balancer), running or not."""
        proc = self.run(
            [
                "docker",
                "ps",
                "-a",
                "--filter",
                f"label={CLUSTER_LABEL}={self.cluster}",
                "--format",
                '{{.Names}}\t{{.Label "' + ROLE_LABEL + '"}}\t{{.State}}\t{{.Ports}}',
            ],
            what="listing the cluster's node containers",
            timeout=30,
        )
        result = []
        for line in proc.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            name, role, state = parts[:3]
            ports = parts[3] if len(parts) > 3 else ""
            result.append(NodeContainer(name, role, state, publishes_topology_ports(ports)))
        return sorted(result, key=lambda n: n.name)

    def nodes(self) -> list[NodeContainer]:
        """The Kubernetes nodes (not the load balancer)."""
        return [c for c in self.containers() if c.role in ("control-plane", "worker")]

    def docker(self, verb: str, node: str, *extra: str, timeout: float = 90) -> None:
        self.run(["docker", verb, *extra, node], what=f"docker {verb} {node}", timeout=timeout)

    def state(self, node: str) -> str:
        proc = self.run(
            ["docker", "inspect", "-f", "{{.State.Status}}", node],
            what=f"docker inspect {node}",
            check=False,
            timeout=30,
        )
        return proc.stdout.strip() if proc.returncode == 0 else "missing"

    def exec(
        self, node: str, argv: list[str], *, what: str, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run(["docker", "exec", node, *argv], what=what, timeout=timeout, check=check)

    def sh(
        self, node: str, script: str, *args: str, what: str, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.exec(
            node, ["sh", "-c", script, "sh", *args], what=what, timeout=timeout, check=check
        )

    def release_manifest(self, node: str, manifest: str) -> bool:
        """Moves a held manifest back; False if it was not held (nothing to do)."""
        proc = self.sh(
            node,
            'if [ -f "$3/$2" ]; then mv "$3/$2" "$1/$2"; echo moved; fi',
            MANIFESTS,
            manifest,
            HELD_MANIFESTS,
            what=f"putting {manifest} back on {node}",
        )
        return "moved" in proc.stdout

    def systemctl(self, node: str, *args: str, timeout: float = 60) -> None:
        self.exec(
            node,
            ["systemctl", *args],
            what=f"systemctl {' '.join(args)} on {node}",
            timeout=timeout,
        )
