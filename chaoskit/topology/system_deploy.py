"""Deploying a system of the user's own (a folder with ``chaoskit-system.yaml``).

Everything the file names is checked before anything changes (its published NodePorts
mapped by the cluster, a deploy method chaoskit can run); then its images are built from
their Dockerfiles and loaded onto the nodes, its namespaces made, its manifests applied,
and its workloads waited for. What it publishes comes back as URLs on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from chaoskit.cluster.access import ClusterAccess
from chaoskit.cluster.kubeclient import new_client
from chaoskit.errors import ChaoskitError, InvalidConfig
from chaoskit.images.factory import kind_binary
from chaoskit.proc import run_logged
from chaoskit.progress import Progress
from chaoskit.settings import Settings
from chaoskit.system.spec import (
    HelmDeploy,
    KustomizeDeploy,
    ManifestsDeploy,
    SystemSpec,
    Workload,
)
from chaoskit.topology.deploy import (
    TOPOLOGY_LABEL,
    DeployFailed,
    image_nodes,
    why_not_ready,
    workload_ready,
)

LOG_TAIL_LINES = 5
DIGEST_ANNOTATION = "chaoskit.io/system-digest"
"""On each of a system's namespaces once it is deployed and Ready: the digest of its system
file and of the manifests applied (:func:`system_digest`). A check keeps a deployed system
only when it is the same one: another system of the same namespaces (an unsafe variant,
say), or the same one from changed manifests, is deployed again."""


@dataclass(frozen=True)
class DeployedSystem:
    name: str
    published: dict[str, str]
    """publish name -> http://127.0.0.1:PORT."""
    seconds: float


def deploy_system(
    settings: Settings,
    access: ClusterAccess,
    spec: SystemSpec,
    *,
    progress: Progress,
    timeout: float | None = None,
) -> DeployedSystem:
    """Builds, loads, applies and waits; raises DeployFailed naming what did not work."""
    started = time.monotonic()
    log = settings.log_dir / "deploy" / f"{access.name}-system-{spec.name}.log"
    if isinstance(spec.deploy, HelmDeploy):
        raise InvalidConfig(
            spec.path,
            "deploy.helm",
            "Helm charts cannot be deployed yet: use kustomize or manifests",
        )
    published = published_urls(access, spec)  # every port mapped, before anything changes
    if spec.images:
        build_images(spec, log=log, progress=progress)
        nodes = image_nodes(new_client(access.kubeconfig, context=access.context or None))
        with progress.task(f"loading {len(spec.images)} image(s) into cluster {access.name!r}"):
            run_logged(
                [kind_binary(settings), "load", "docker-image",
                 *(i.tag for i in spec.images), "--name", access.name, "--nodes", ",".join(nodes)],
                log=log, what="kind load docker-image", error=DeployFailed, timeout=1200,
            )  # fmt: skip
    api = new_client(access.kubeconfig, context=access.context or None)
    make_namespaces(api, spec)
    with progress.task(f"applying system {spec.name!r}"):
        run_logged(
            access.kubectl_cmd("apply", "--server-side", "--force-conflicts", *apply_args(spec)),
            log=log,
            what="kubectl apply",
            error=DeployFailed,
            timeout=300,
        )
    wait = timeout if timeout is not None else spec.wait.timeout
    with progress.task(f"waiting for system {spec.name!r} to be Ready"):
        wait_workloads(api, spec, wait)
    annotate_namespaces(api, spec, system_digest(access, spec))
    return DeployedSystem(spec.name, published, time.monotonic() - started)


def check_system(
    access: ClusterAccess, spec: SystemSpec, *, progress: Progress, timeout: float
) -> DeployedSystem:
    """Whether the system is deployed and serving, changing nothing: its workloads Ready and
    each published URL taking a TCP connection, within ``timeout`` seconds; raises
    DeployFailed naming what is not (what ``chaoskit deploy PATH --check`` does), at once
    when one of its namespaces does not exist or holds another deployment than this system
    from these files (:data:`DIGEST_ANNOTATION`)."""
    started = time.monotonic()
    published = published_urls(access, spec)
    api = new_client(access.kubeconfig, context=access.context or None)
    missing = missing_namespaces(api, spec)
    if missing:  # nothing to wait for
        raise DeployFailed(f"namespace {missing[0]!r} does not exist: nothing is deployed")
    other = other_deployment(api, spec, system_digest(access, spec))
    if other:
        raise DeployFailed(other)
    with progress.task(f"checking system {spec.name!r} is Ready"):
        wait_workloads(api, spec, timeout, absent_fails=True)
        left = max(1.0, timeout - (time.monotonic() - started))
        wait_published(published, left)
    return DeployedSystem(spec.name, published, time.monotonic() - started)


def wait_published(published: dict[str, str], timeout: float, poll: float = 1.0) -> None:
    """Until each URL takes a TCP connection (a NodePort mapped through kind answers only
    once a Ready pod is behind its Service); DeployFailed naming the first that does not."""
    deadline = time.monotonic() + timeout
    for name, url in published.items():
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        while True:
            try:
                with socket.create_connection((host, port), timeout=min(5.0, timeout)):
                    break
            except OSError as e:
                if time.monotonic() > deadline:
                    raise DeployFailed(
                        f"published {name!r} ({url}) takes no connection after "
                        f"{timeout:.0f} s: {e.strerror or e}"
                    ) from None
                time.sleep(poll)


def published_urls(access: ClusterAccess, spec: SystemSpec) -> dict[str, str]:
    """publish name -> URL on 127.0.0.1; a NodePort the cluster does not map is bad input
    (the system file names it; the kind config must map it)."""
    urls: dict[str, str] = {}
    for index, item in enumerate(spec.publish):
        try:
            urls[item.name] = f"http://127.0.0.1:{access.host_port(item.node_port)}"
        except ChaoskitError as e:
            raise InvalidConfig(spec.path, f"publish[{index}].node_port", str(e)) from None
    return urls


def build_images(spec: SystemSpec, *, log: Path, progress: Progress) -> None:
    for image in spec.images:
        with progress.task(f"building {image.tag} from {image.context.name}/"):
            try:
                run_logged(
                    ["docker", "build", "-t", image.tag, "-f", image.dockerfile, image.context],
                    log=log,
                    what=f"building image {image.tag}",
                    error=DeployFailed,
                    timeout=1800,
                    env={"DOCKER_BUILDKIT": os.environ.get("DOCKER_BUILDKIT", "0")},
                )
            except DeployFailed as e:
                raise DeployFailed(f"{e.message}: {log_tail(log)}") from None


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines a command wrote (the build's error), on one line."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    kept = [line.strip() for line in text if line.strip() and not line.startswith("# exit")]
    return " | ".join(kept[-lines:])


def missing_namespaces(api: client.ApiClient, spec: SystemSpec) -> list[str]:
    """The system's namespaces that do not exist (or are being deleted)."""
    core = client.CoreV1Api(api)
    missing = []
    for name in spec.namespaces:
        try:
            found = core.read_namespace(name, _request_timeout=30)
        except client.ApiException as e:
            if e.status != 404:
                raise DeployFailed(f"reading namespace {name}: {e.reason}") from e
            missing.append(name)
            continue
        if found.metadata.deletion_timestamp is not None:
            missing.append(name)
    return missing


def system_digest(access: ClusterAccess, spec: SystemSpec) -> str:
    """sha256 of the system file and of the manifests it applies (kustomize's output, or
    the manifest files' bytes). Images are not in it: a changed image under the same tag is
    not seen (give a changed image a new tag)."""
    digest = hashlib.sha256(spec.path.read_bytes())
    deploy = spec.deploy
    if isinstance(deploy, KustomizeDeploy):
        command = access.kubectl_cmd("kustomize", str(deploy.folder))
        try:
            rendered = subprocess.run(command, capture_output=True, check=True, timeout=120).stdout
        except (OSError, subprocess.SubprocessError) as e:
            raise DeployFailed(f"kubectl kustomize {deploy.folder}: {e}") from e
        digest.update(rendered)
    elif isinstance(deploy, ManifestsDeploy):
        for path in deploy.paths:
            files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
            for file in files:
                digest.update(file.read_bytes())
    return digest.hexdigest()


def other_deployment(api: client.ApiClient, spec: SystemSpec, digest: str) -> str | None:
    """Why what the system's namespaces hold is not this system as its files describe it
    (another system's name, no digest, another digest); None when it is."""
    core = client.CoreV1Api(api)
    for name in spec.namespaces:
        meta = core.read_namespace(name, _request_timeout=30).metadata
        holder = (meta.labels or {}).get(TOPOLOGY_LABEL)
        if holder != spec.name:
            return f"namespace {name!r} holds {holder or 'something else'!r}, not {spec.name!r}"
        if (meta.annotations or {}).get(DIGEST_ANNOTATION) != digest:
            return f"namespace {name!r} was deployed from other files of system {spec.name!r}"
    return None


def annotate_namespaces(api: client.ApiClient, spec: SystemSpec, digest: str) -> None:
    core = client.CoreV1Api(api)
    body = {"metadata": {"annotations": {DIGEST_ANNOTATION: digest}}}
    for name in spec.namespaces:
        core.patch_namespace(name, body, _request_timeout=30)


def make_namespaces(api: client.ApiClient, spec: SystemSpec) -> None:
    """The system's namespaces exist and are labelled with its name."""
    core = client.CoreV1Api(api)
    for name in spec.namespaces:
        labels = {TOPOLOGY_LABEL: spec.name}
        try:
            core.read_namespace(name, _request_timeout=30)
        except client.ApiException as e:
            if e.status != 404:
                raise DeployFailed(f"reading namespace {name}: {e.reason}") from e
            body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
            core.create_namespace(body, _request_timeout=30)
        else:
            core.patch_namespace(name, {"metadata": {"labels": labels}}, _request_timeout=30)


def apply_args(spec: SystemSpec) -> list[str]:
    deploy = spec.deploy
    if isinstance(deploy, KustomizeDeploy):
        return ["-k", str(deploy.folder)]
    if isinstance(deploy, ManifestsDeploy):
        return [arg for path in deploy.paths for arg in ("-f", str(path))]
    raise InvalidConfig(spec.path, "deploy", "no deploy method chaoskit can run")


def wanted_workloads(apps: client.AppsV1Api, spec: SystemSpec) -> list[Workload]:
    """The workloads ``wait`` names, or every Deployment, StatefulSet and DaemonSet of the
    system's namespaces."""
    if spec.wait.workloads is not None:
        return list(spec.wait.workloads)
    found: list[Workload] = []
    for namespace in spec.namespaces:
        found += [Workload(namespace, "Deployment", d.metadata.name)
                  for d in apps.list_namespaced_deployment(namespace).items]  # fmt: skip
        found += [Workload(namespace, "StatefulSet", s.metadata.name)
                  for s in apps.list_namespaced_stateful_set(namespace).items]  # fmt: skip
        found += [Workload(namespace, "DaemonSet", d.metadata.name)
                  for d in apps.list_namespaced_daemon_set(namespace).items]  # fmt: skip
    return found


def read_workload(apps: client.AppsV1Api, workload: Workload) -> Any:
    readers = {
        "Deployment": apps.read_namespaced_deployment,
        "StatefulSet": apps.read_namespaced_stateful_set,
        "DaemonSet": apps.read_namespaced_daemon_set,
    }
    try:
        return readers[workload.kind](workload.name, workload.namespace, _request_timeout=30)
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise


def wait_workloads(
    api: client.ApiClient, spec: SystemSpec, timeout: float, *, absent_fails: bool = False
) -> None:
    """Until every wanted workload is Ready; else DeployFailed with the first one's name
    and its pod's reason. With ``absent_fails`` (is it deployed already?), a system with no
    workload, or without one it waits for, fails at once: nothing would make it appear."""
    apps = client.AppsV1Api(api)
    deadline = time.monotonic() + timeout
    while True:
        wanted = wanted_workloads(apps, spec)
        pending = [(w, read_workload(apps, w)) for w in wanted]
        absent = [w for w, o in pending if o is None]
        if absent_fails and (not wanted or absent):
            what = (
                f"{absent[0].namespace}/{absent[0].ref} does not exist"
                if absent
                else f"no workloads in {', '.join(spec.namespaces)}"
            )
            raise DeployFailed(f"system {spec.name!r} is not deployed: {what}")
        pending = [(w, o) for w, o in pending if o is None or not workload_ready(w.kind, o)]
        if wanted and not pending:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(2)
    if not wanted:
        where = ", ".join(spec.namespaces)
        raise DeployFailed(f"system {spec.name!r}: no workloads in {where} after {timeout:.0f} s")
    workload, obj = pending[0]
    ref = f"{workload.namespace}/{workload.ref}"
    reason = "it does not exist" if obj is None else why_not_ready(api, workload.namespace, obj)
    others = f" (and {len(pending) - 1} more)" if len(pending) > 1 else ""
    raise DeployFailed(f"{ref} not Ready after {timeout:.0f} s: {reason}{others}")
