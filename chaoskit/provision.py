"""Provisioning, in one place: a kind cluster made, reused or made anew, and a topology or a
system folder deployed on it, checked, or kept when it already serves.

``chaoskit cluster up`` and ``chaoskit deploy``, ``chaoskit suite run`` (its prepare step)
and the pytest plugin's session all go through :func:`provide_cluster` and
:func:`provide_deployment`; what differs between them is only the mode they ask for::

    made = provide_cluster(settings, load_config(path), name="dev", mode=REUSE, progress=p)
    on = provide_deployment(settings, access(settings, "dev"), target, mode=KEEP, progress=p)
    on.ingress, on.published

Only chaoskit's own kind clusters are provisioned here (images are loaded with kind, URLs are
kind's host ports); reaching a cluster of another kubeconfig is :mod:`chaoskit.faults.target`'s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from kubernetes import client

from chaoskit.cluster import lifecycle
from chaoskit.cluster.access import ClusterAccess
from chaoskit.cluster.config import ClusterConfig
from chaoskit.cluster.health import ClusterHealth
from chaoskit.cluster.kind import Kind
from chaoskit.engine.docker import ensure_engine
from chaoskit.errors import ChaoskitError, ClusterFailed
from chaoskit.images.factory import Source, build_all, kind_binary
from chaoskit.progress import Progress
from chaoskit.settings import Settings
from chaoskit.system.spec import SystemSpec
from chaoskit.topology import deploy, system_deploy
from chaoskit.topology.catalog import Topology

logger = logging.getLogger(__name__)

ClusterMode = Literal["new", "reuse", "fresh"]
NEW: ClusterMode = "new"
"""Make the cluster; one of that name existing already is refused (``ClusterExists``)."""
REUSE: ClusterMode = "reuse"
"""Use chaoskit's cluster of that name when there is one, else make it."""
FRESH: ClusterMode = "fresh"
"""Delete chaoskit's cluster of that name if there is one, then make it."""

DeployMode = Literal["deploy", "check", "keep", "reach"]
DEPLOY: DeployMode = "deploy"
"""Build, load, apply and wait (again, if it is there already)."""
CHECK: DeployMode = "check"
"""Change nothing: wait until it is Ready and serving, fail if it does not."""
KEEP: DeployMode = "keep"
"""Keep it when it is Ready and serving within :data:`KEEP_CHECK_S`, else deploy it."""
REACH: DeployMode = "reach"
"""Change nothing, wait for nothing: it is there already; only its URLs."""

KEEP_CHECK_S = 90.0
"""Seconds something already deployed has to show it serves before it is deployed again."""
DEFAULT_TIMEOUT_S = 600.0
"""Seconds a cluster's creation, and a topology's deploy or check, may take by default."""


@dataclass(frozen=True)
class ProvidedCluster:
    info: lifecycle.ClusterInfo
    """What chaoskit recorded when it made the cluster (its kubeconfig, its nodes)."""
    made: bool
    """True if it was made now (mode new or fresh, or reuse with none there)."""
    health: ClusterHealth | None = None
    """Its nodes and kube-system pods when it was made now; None when reused."""

    @property
    def name(self) -> str:
        return self.info.name


def provide_cluster(
    settings: Settings,
    config: ClusterConfig,
    *,
    name: str,
    mode: ClusterMode,
    progress: Progress,
    source: Source = "auto",
    timeout: float = DEFAULT_TIMEOUT_S,
) -> ProvidedCluster:
    """chaoskit's kind cluster ``name`` from ``config`` (checked already), as ``mode`` says:
    the Docker engine running and the images built first, then the cluster made (and
    waited for until Ready), reused or made anew.

    Raises ``lifecycle.ClusterExists`` when a kind cluster of that name is there that
    ``mode`` may not use (any, for NEW; one chaoskit did not make, for REUSE and FRESH)."""
    with progress.task("Docker engine"):
        ensure_engine(settings.log_dir / "engine")
    images = build_all(settings, source=source, progress=progress)
    kind = Kind.find(kind_binary(settings))
    exists = (
        mode != NEW and name in kind.clusters() and lifecycle.recorded(settings, name) is not None
    )
    if exists and mode == FRESH:
        with progress.task(f"deleting cluster {name!r} (--fresh-cluster)"):
            lifecycle.down(settings, kind, name)
        exists = False
    health: ClusterHealth | None = None
    if not exists:
        _, health = lifecycle.up(
            settings,
            kind,
            config,
            name=name,
            image=images.node,
            progress=progress,
            timeout=timeout,
        )
    info = lifecycle.recorded(settings, name)
    if info is None:  # up records it; only a cluster deleted meanwhile has none
        raise ClusterFailed(f"cluster {name!r}: chaoskit has no record of it")
    return ProvidedCluster(info, made=not exists, health=health)


def delete_cluster(settings: Settings, name: str, *, progress: Progress) -> bool:
    """Deletes chaoskit's cluster ``name`` (False: there was none)."""
    with progress.task(f"deleting cluster {name!r}"):
        return lifecycle.down(settings, Kind.find(kind_binary(settings)), name)


@dataclass(frozen=True)
class Deployment:
    """A topology or a system on a cluster, serving, and how it is reached."""

    target: Topology | SystemSpec
    applied: bool
    """True if it was deployed now; False if it was found serving (or only reached)."""
    seconds: float
    published: dict[str, str]
    """A system's URLs on 127.0.0.1 by publish name; the shop's ingress and Prometheus
    under ``ingress`` and ``prometheus``."""
    order_id: str | None = None
    """The shop's end-to-end order that proved it serves (None for a system, or reached)."""

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def namespaces(self) -> tuple[str, ...]:
        target = self.target
        return (target.namespace,) if isinstance(target, Topology) else target.namespaces

    @property
    def is_system(self) -> bool:
        return isinstance(self.target, SystemSpec)

    @property
    def ingress(self) -> str:
        """Where the load goes: the shop's ingress, or a system's ``load.target`` URL (its
        first published URL without a load; empty when it publishes nothing)."""
        target = self.target
        if isinstance(target, Topology):
            return self.published["ingress"]
        if target.load is not None:
            return self.published[target.load.target]
        return next(iter(self.published.values()), "")

    @property
    def prometheus(self) -> str | None:
        """chaoskit's Prometheus (deployed with the shop; None for a system)."""
        return self.published["prometheus"] if isinstance(self.target, Topology) else None


def provide_deployment(
    settings: Settings,
    access: ClusterAccess,
    target: Topology | SystemSpec,
    *,
    mode: DeployMode,
    progress: Progress,
    timeout: float | None = None,
) -> Deployment:
    """``target`` on the cluster as ``mode`` says. ``timeout``: seconds the deploy (or the
    check) may wait; None: a topology's :data:`DEFAULT_TIMEOUT_S`, a system's own
    ``wait.timeout``. Raises DeployFailed (or the API's error) naming what does not serve."""
    if mode == KEEP:
        try:
            return _deploy(settings, access, target, check=True, progress=progress,
                           timeout=KEEP_CHECK_S)  # fmt: skip
        except (ChaoskitError, client.ApiException, OSError) as e:
            logger.info("%s not serving on %r (%s): deploying it", _what(target), access.name, e)
        return _deploy(settings, access, target, check=False, progress=progress, timeout=timeout)
    if mode == REACH:
        return _reach(access, target)
    return _deploy(
        settings, access, target, check=mode == CHECK, progress=progress, timeout=timeout
    )


def _what(target: Topology | SystemSpec) -> str:
    return f"{'topology' if isinstance(target, Topology) else 'system'} {target.name!r}"


def _deploy(
    settings: Settings,
    access: ClusterAccess,
    target: Topology | SystemSpec,
    *,
    check: bool,
    progress: Progress,
    timeout: float | None,
) -> Deployment:
    if isinstance(target, Topology):
        wait = DEFAULT_TIMEOUT_S if timeout is None else timeout
        if check:
            result = deploy.check(access, target, progress=progress, timeout=wait)
        else:
            result = deploy.deploy(settings, access, target, progress=progress, timeout=wait)
        urls = {"ingress": result.endpoints.ingress, "prometheus": result.endpoints.prometheus}
        return Deployment(target, not check, result.seconds, urls, result.order_id)
    if check:
        wait = target.wait.timeout if timeout is None else timeout
        found = system_deploy.check_system(access, target, progress=progress, timeout=wait)
    else:
        found = system_deploy.deploy_system(
            settings, access, target, progress=progress, timeout=timeout
        )
    return Deployment(target, not check, found.seconds, found.published)


def _reach(access: ClusterAccess, target: Topology | SystemSpec) -> Deployment:
    if isinstance(target, Topology):
        urls = deploy.endpoints(access, target)
        published = {"ingress": urls.ingress, "prometheus": urls.prometheus}
    else:
        published = system_deploy.published_urls(access, target)
    return Deployment(target, applied=False, seconds=0.0, published=published)


__all__ = [
    "CHECK",
    "DEPLOY",
    "FRESH",
    "KEEP",
    "NEW",
    "REACH",
    "REUSE",
    "ClusterMode",
    "DeployMode",
    "Deployment",
    "ProvidedCluster",
    "delete_cluster",
    "provide_cluster",
    "provide_deployment",
]
