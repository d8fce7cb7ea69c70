"""The node containers of a kind cluster, and what faults do inside them.

Every kind node is a Docker container named after the node. Faults that act below the
Kubernetes API (stopping a node, killing kubelet, etcd or a control-plane process, moving a
static pod's manifest) run ``docker`` on the host and ``docker exec`` in the node, where
systemd, crictl and the static pod manifests are. These work while the API is down, which
is exactly when they are needed. Every command and its output are appended to one log.
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


# Kills the main process of every running container that matches; prints "id pid" per kill.
_KILL_CONTAINERS = r"""
set -eu
ns="$1"; container="$2"; pod="$3"; sig="$4"
set -- --state running --label "io.kubernetes.pod.namespace=$ns" \
  --label "io.kubernetes.container.name=$container"
[ -n "$pod" ] && set -- "$@" --label "io.kubernetes.pod.name=$pod"
ids=$(crictl ps -q "$@")
[ -n "$ids" ] || { echo "no running container $container in $ns${pod:+/$pod}" >&2; exit 3; }
for id in $ids; do
  pid=$(crictl inspect -o go-template --template '{{.info.pid}}' "$id")
  kill -s "$sig" "$pid"
  echo "$id $pid"
done
"""


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

    def kill_containers(
        self, node: str, namespace: str, container: str, *, pod: str = "", signal: str = "KILL"
    ) -> list[tuple[str, int]]:
        """Sends ``signal`` to the main process of matching containers; returns (id, pid)."""
        proc = self.sh(
            node,
            _KILL_CONTAINERS,
            namespace,
            container,
            pod,
            signal,
            what=f"killing container {container} on {node}",
        )
        kills = []
        for line in proc.stdout.split("\n"):
            cid, _, pid = line.partition(" ")
            if cid and pid.isdigit():
                kills.append((cid, int(pid)))
        return kills

    def container_pid(self, node: str, namespace: str, container: str) -> int | None:
        """The host-visible pid of a running container's main process, if there is one."""
        proc = self.sh(
            node,
            'id=$(crictl ps -q --state running --label "io.kubernetes.pod.namespace=$1" '
            '--label "io.kubernetes.container.name=$2" | head -n1); '
            '[ -n "$id" ] && crictl inspect -o go-template --template "{{.info.pid}}" "$id"',
            namespace,
            container,
            what=f"finding container {container} on {node}",
            check=False,
        )
        text = proc.stdout.strip()
        return int(text) if proc.returncode == 0 and text.isdigit() else None

    def running_container_count(self, node: str, namespace: str, container: str) -> int:
        proc = self.exec(
            node,
            [
                "crictl",
                "ps",
                "-q",
                "--state",
                "running",
                "--label",
                f"io.kubernetes.pod.namespace={namespace}",
                "--label",
                f"io.kubernetes.container.name={container}",
            ],
            what=f"listing {container} containers on {node}",
        )
        return len(proc.stdout.split())

    def hold_manifest(self, node: str, manifest: str) -> None:
        """Moves a static pod manifest out of kubelet's folder: kubelet stops the pod."""
        self.sh(
            node,
            'mkdir -p "$3"; if [ -f "$1/$2" ]; then mv "$1/$2" "$3/$2"; '
            'elif [ ! -f "$3/$2" ]; then echo "no manifest $1/$2" >&2; exit 3; fi',
            MANIFESTS,
            manifest,
            HELD_MANIFESTS,
            what=f"holding down {manifest} on {node}",
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
