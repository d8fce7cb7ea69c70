"""Reaching a cluster chaoskit made: its kubeconfig, kubectl, and host ports of NodePorts.

kind publishes NodePorts listed under a node's ``extraPortMappings`` on 127.0.0.1 of the host;
with ``hostPort`` left out kind picks a free port, so several clusters can coexist. chaoskit
asks Docker which host port that became.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chaoskit.cluster.lifecycle import ClusterDir, recorded
from chaoskit.errors import ClusterFailed, InvalidInput
from chaoskit.images import catalog
from chaoskit.images.factory import build_env
from chaoskit.proc import capture
from chaoskit.settings import Settings


@dataclass(frozen=True)
class ClusterAccess:
    name: str
    kubeconfig: Path
    kubectl: Path
    context: str = ""
    """The kube context to use (empty: the kubeconfig's current one)."""

    def kubectl_cmd(self, *args: str) -> list[str]:
        context = ["--context", self.context] if self.context else []
        return [str(self.kubectl), "--kubeconfig", str(self.kubeconfig), *context, *args]

    def host_port(self, node_port: int) -> int:
        """The 127.0.0.1 port on the host that reaches ``node_port`` of the cluster."""
        for node in self.port_nodes():
            proc = capture(["docker", "port", node, f"{node_port}/tcp"], timeout=30)
            for line in proc.stdout.splitlines():
                address, _, port = line.strip().rpartition(":")
                if address == "127.0.0.1" and port.isdigit():
                    return int(port)
        raise ClusterFailed(
            f"cluster {self.name!r} publishes no host port for NodePort {node_port}: "
            "add it to a node's extraPortMappings in the kind config"
        )

    def port_nodes(self) -> list[str]:
        proc = capture(
            [
                "docker",
                "ps",
                "--filter",
                f"label=io.x-k8s.kind.cluster={self.name}",
                "--format",
                "{{.Names}}",
            ],
            timeout=30,
        )
        return sorted(proc.stdout.split())


def kubectl_path(settings: Settings) -> Path:
    kubectl = catalog.KUBECTL.out_dir(build_env(settings)) / "kubectl"
    if not kubectl.is_file():
        raise ClusterFailed(f"kubectl is not built ({kubectl}): run 'chaoskit images build'")
    return kubectl


def access(settings: Settings, name: str) -> ClusterAccess:
    """Everything needed to talk to chaoskit's cluster ``name``; exit 2 if there is none."""
    info = recorded(settings, name)
    if info is None or not Path(info.kubeconfig).is_file():
        raise InvalidInput(
            f"no chaoskit cluster named {name!r}: "
            f"create it with 'chaoskit cluster up --name {name}'"
        )
    return ClusterAccess(
        name=name,
        kubeconfig=ClusterDir.of(settings, name).kubeconfig,
        kubectl=kubectl_path(settings),
    )
