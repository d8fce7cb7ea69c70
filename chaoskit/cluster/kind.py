"""The real kind CLI, driven as a subprocess (chaoskit does not reimplement kind)."""

from __future__ import annotations

import shutil
from pathlib import Path

from chaoskit.errors import ClusterFailed
from chaoskit.proc import capture, run_logged


class Kind:
    """A kind binary: the one chaoskit built, or one found on PATH."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    @classmethod
    def find(cls, built: Path) -> Kind:
        if built.is_file():
            return cls(built)
        found = shutil.which("kind")
        if found is None:
            raise ClusterFailed(f"kind is not built yet ({built}) and not on PATH")
        return cls(Path(found))

    def clusters(self) -> list[str]:
        proc = capture([self.binary, "get", "clusters"], timeout=60)
        if proc.returncode != 0:
            raise ClusterFailed(f"kind get clusters failed: {proc.stderr.strip()}")
        return [line.strip() for line in proc.stdout.splitlines() if line.strip()]

    def nodes(self, name: str) -> list[str]:
        proc = capture([self.binary, "get", "nodes", "--name", name], timeout=60)
        if proc.returncode != 0:
            return []
        return sorted(line.strip() for line in proc.stdout.splitlines() if line.strip())

    def create(self, name: str, *, config: Path, image: str, kubeconfig: Path, log: Path) -> None:
        run_logged(
            [
                self.binary,
                "create",
                "cluster",
                "--name",
                name,
                "--config",
                config,
                "--image",
                image,
                "--kubeconfig",
                kubeconfig,
                "--wait",
                "0s",
            ],
            log=log,
            what=f"kind create cluster {name}",
            error=ClusterFailed,
            timeout=1200,
        )

    def delete(self, name: str, *, kubeconfig: Path | None, log: Path) -> None:
        cmd: list[str | Path] = [self.binary, "delete", "cluster", "--name", name]
        if kubeconfig is not None:
            cmd += ["--kubeconfig", kubeconfig]
        run_logged(
            cmd, log=log, what=f"kind delete cluster {name}", error=ClusterFailed, timeout=600
        )
