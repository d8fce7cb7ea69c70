"""Bringing kind clusters up and down, and saying what they look like.

``up`` checks the config before anything is created, makes sure the engine and the node
image are there, lets kind create the cluster, then waits until every node and every
kube-system pod is Ready. If anything fails or the user interrupts, the half-made cluster is
deleted again. Each cluster chaoskit made has a folder in the cache with its kubeconfig,
the config kind was given and the logs.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chaoskit.cluster.config import DEFAULT_NAME, ClusterConfig, valid_name
from chaoskit.cluster.health import ClusterHealth, api_client, read_health, wait_ready
from chaoskit.cluster.kind import Kind
from chaoskit.engine.docker import apply_host_sysctls
from chaoskit.errors import ClusterFailed, InvalidInput
from chaoskit.progress import Progress
from chaoskit.settings import Settings

logger = logging.getLogger(__name__)

STATE_FILE = "cluster.json"


@dataclass(frozen=True)
class ClusterDir:
    """The cache folder of one cluster."""

    root: Path

    @classmethod
    def of(cls, settings: Settings, name: str) -> ClusterDir:
        return cls(settings.cache_dir / "clusters" / name)

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def kind_config(self) -> Path:
        return self.root / "kind-config.yaml"

    @property
    def state(self) -> Path:
        return self.root / STATE_FILE

    def log(self, what: str) -> Path:
        """Outside the cluster's folder: a failed ``up`` deletes the folder, its log stays
        where the error message points (``<cache>/logs/clusters/<name>-<what>.log``)."""
        return self.root.parent.parent / "logs" / "clusters" / f"{self.root.name}-{what}.log"


@dataclass(frozen=True)
class ClusterInfo:
    """What chaoskit recorded when it created a cluster."""

    name: str
    config: str
    image: str
    control_planes: int
    workers: int
    created: str
    kubeconfig: str
    create_seconds: float


class ClusterExists(InvalidInput):
    """A kind cluster of the name to make is there already."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"a kind cluster named {name!r} exists already: "
            f"use it, or remove it with 'chaoskit cluster down --name {name}'"
        )


def check_name(name: str) -> str:
    if not valid_name(name):
        raise InvalidInput(
            f"--name {name!r}: cluster names are lower-case letters, digits and '-' (max 50)"
        )
    return name


def resolve_name(name: str | None, config: ClusterConfig) -> str:
    return check_name(name or config.name or DEFAULT_NAME)


def up(
    settings: Settings,
    kind: Kind,
    config: ClusterConfig,
    *,
    name: str,
    image: str,
    progress: Progress,
    timeout: float = 600,
) -> tuple[ClusterInfo, ClusterHealth]:
    """Creates cluster ``name`` from ``config`` and waits until it is Ready; ClusterExists
    if a kind cluster of that name is there already."""
    if name in kind.clusters():
        raise ClusterExists(name)
    cdir = ClusterDir.of(settings, name)
    if cdir.root.exists():
        shutil.rmtree(cdir.root)  # left from a cluster deleted behind chaoskit's back
    cdir.root.mkdir(parents=True)
    document = dict(config.document)
    document.pop("name", None)  # --name decides
    cdir.kind_config.write_text(ClusterConfig(config.path, document, 0, 0).render())

    # Only a cluster needs them (inotify for its nodes, forwarding to its network); never
    # lowered, and not touched by commands that make no cluster.
    apply_host_sysctls()
    started = time.monotonic()
    try:
        with progress.task(
            f"creating kind cluster {name!r} "
            f"({config.control_planes} control plane(s), {config.workers} worker(s))"
        ):
            kind.create(
                name,
                config=cdir.kind_config,
                image=image,
                kubeconfig=cdir.kubeconfig,
                log=cdir.log("create"),
            )
        with progress.task("waiting for every node and kube-system pod to be Ready"):
            health = wait_ready(
                api_client(cdir.kubeconfig),
                expected_nodes=config.control_planes + config.workers,
                timeout=timeout,
            )
    except BaseException:
        logger.warning("cluster %r did not come up; deleting what was made", name)
        _delete_quietly(kind, name, cdir)
        raise
    info = ClusterInfo(
        name=name,
        config=str(config.path),
        image=image,
        control_planes=config.control_planes,
        workers=config.workers,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        kubeconfig=str(cdir.kubeconfig),
        create_seconds=round(time.monotonic() - started, 1),
    )
    cdir.state.write_text(json.dumps(asdict(info), indent=2) + "\n")
    return info, health


def _delete_quietly(kind: Kind, name: str, cdir: ClusterDir) -> None:
    try:
        kind.delete(name, kubeconfig=cdir.kubeconfig, log=cdir.log("delete"))
    except ClusterFailed as e:
        logger.error("could not delete the half-made cluster %r: %s", name, e)
        return
    shutil.rmtree(cdir.root, ignore_errors=True)


def down(settings: Settings, kind: Kind, name: str, *, force: bool = False) -> bool:
    """Deletes cluster ``name`` and its folder; False if there was nothing to delete.

    Only a cluster chaoskit made (it has a folder in chaoskit's cache) is deleted unless
    ``force``: a kind cluster someone else made is not chaoskit's to remove.
    """
    cdir = ClusterDir.of(settings, name)
    existed = name in kind.clusters()
    if existed and not force and not cdir.root.is_dir():
        raise InvalidInput(
            f"--name {name}: kind cluster {name!r} was not made by chaoskit (nothing in "
            f"{cdir.root.parent}): not deleting it; pass --force to delete it anyway"
        )
    if existed:
        log = settings.log_dir / "clusters" / f"{name}-delete.log"
        kubeconfig = cdir.kubeconfig if cdir.kubeconfig.exists() else None
        kind.delete(name, kubeconfig=kubeconfig, log=log)
    had_dir = cdir.root.exists()
    shutil.rmtree(cdir.root, ignore_errors=True)
    return existed or had_dir


def recorded(settings: Settings, name: str) -> ClusterInfo | None:
    state = ClusterDir.of(settings, name).state
    if not state.is_file():
        return None
    return ClusterInfo(**json.loads(state.read_text()))


def status(settings: Settings, kind: Kind, name: str) -> dict[str, Any]:
    """A machine-readable description of cluster ``name``."""
    exists = name in kind.clusters()
    info = recorded(settings, name)
    result: dict[str, Any] = {
        "name": name,
        "exists": exists,
        "managed_by_chaoskit": info is not None,
        "containers": kind.nodes(name) if exists else [],
    }
    if info is not None:
        result.update(asdict(info))
    if not exists or info is None:
        return result
    try:
        health = read_health(api_client(Path(info.kubeconfig)))
    except Exception as e:  # noqa: BLE001 - a status report must describe a broken API, not die
        result["api"] = f"unreachable: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        result["ready"] = False
        return result
    result["api"] = "ok"
    result.update(health.to_dict())
    return result


def list_clusters(settings: Settings, kind: Kind) -> list[dict[str, Any]]:
    return [
        {"name": name, "managed_by_chaoskit": recorded(settings, name) is not None}
        for name in kind.clusters()
    ]
