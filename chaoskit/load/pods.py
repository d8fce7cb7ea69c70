"""Locust workers as pods inside a kind cluster, for more load than processes on the host give.

The master stays on the host (see :mod:`chaoskit.load.runner`) and listens on the host's
address on kind's Docker network (the bridge's gateway): the cluster's pods reach it through
their node, and it is not bound to any interface that faces other machines. The workers run
in namespace ``chaoskit-load`` from chaoskit's Locust image (built and ``kind load``-ed like
the topology's), with the profile's folder mounted from a ConfigMap so that they run exactly
the code the master runs, against the shop's in-cluster URL. They have no folder of the
harness to write to: they send their records to the master (``CHAOSKIT_LOAD_RELAY=1``, see
``loadprofiles/_shop.py``), which writes them where the harness reads them.

The workers are a Job, not a Deployment: they run until the test ends and exit, which a
Deployment would answer by starting them again. The Job also bounds them by itself should
the harness die without removing it (it removes it at the end of every run, also on failure
and Ctrl-C): ``activeDeadlineSeconds`` ends its pods after the run's deadline,
``ttlSecondsAfterFinished`` deletes it afterwards, and the ConfigMap, owned by the Job,
goes with it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import os
import re
import socket
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from chaoskit.cluster.access import ClusterAccess
from chaoskit.cluster.access import access as cluster_access
from chaoskit.cluster.health import api_client
from chaoskit.errors import InvalidInput
from chaoskit.faults import signals
from chaoskit.images.factory import build_load_image, kind_binary
from chaoskit.load.errors import LoadFailed, TargetUnreachable
from chaoskit.proc import capture, run_logged
from chaoskit.progress import Progress
from chaoskit.settings import Settings
from chaoskit.topology.catalog import ECOMMERCE
from chaoskit.topology.client import bounded_id
from chaoskit.topology.deploy import pinned_images

logger = logging.getLogger(__name__)

NAMESPACE = "chaoskit-load"
CONTAINER = "locust"
PROFILES_MOUNT = "/profiles"
RECORDER_MOUNT = "/chaoskit"
"""Where the pods find chaoskit's recorder as the package ``chaoskit.load.recorder`` (on
their PYTHONPATH): the image has Locust, not chaoskit."""
RECORDER_FILES = {
    "chaoskit.__init__.py": ("chaoskit/__init__.py", None),
    "chaoskit.load.__init__.py": ("chaoskit/load/__init__.py", None),
    "chaoskit.load.recorder.py": ("chaoskit/load/recorder.py", "recorder.py"),
    "chaoskit.load.locust_plugin.py": ("chaoskit/load/locust_plugin.py", "locust_plugin.py"),
}
"""ConfigMap key -> (path under RECORDER_MOUNT, the file of this package it holds; None: an
empty ``__init__.py``, the pods need none of the rest of chaoskit)."""
PLUGIN_PATH = RECORDER_FILES["chaoskit.load.locust_plugin.py"][0]
IN_CLUSTER_SHOP = f"http://traefik.{ECOMMERCE.namespace}.svc.cluster.local"
"""The shop's ingress as pods reach it: the same path as the host's traffic, without kind's
port mapping."""
KIND_NETWORK = "kind"
"""kind's Docker network (``KIND_EXPERIMENTAL_DOCKER_NETWORK`` names another, as for kind)."""
RUN_LABEL = "chaoskit/load-run"
LABELS = {"app.kubernetes.io/name": "locust-worker", "app.kubernetes.io/managed-by": "chaoskit"}
MAX_PROFILE_BYTES = 512 * 1024
"""The profile's folder goes into a ConfigMap (at most 1 MiB, with room to spare)."""
CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")
STATUS_INTERVAL = 2.0
"""Seconds between looks at the worker pods while the run goes on."""
REMOVE_TIMEOUT = 90.0
"""Seconds to wait until the worker pods are gone after the Job is deleted."""
TTL_AFTER_FINISHED = 60
BROKEN = {
    "ErrImageNeverPull",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "CrashLoopBackOff",
}
"""Reasons a waiting container gives that will not resolve by waiting."""


def k8s_name(run_id: str) -> str:
    """The name of a run's Job and ConfigMap (a DNS label, whatever the run id)."""
    return "locust-" + bounded_id(re.sub(r"[^a-z0-9-]", "-", run_id.lower()), 50).strip("-")


def run_label(run_id: str) -> str:
    """The run id as a label value (at most 63 characters, alphanumeric at both ends)."""
    return bounded_id(re.sub(r"[^A-Za-z0-9_.-]", "-", run_id), 63).strip("-_.")


# ---------------------------------------------------------------------------- the host side


def gateway_of(ipam: list[dict[str, Any]]) -> str | None:
    """The IPv4 gateway of a Docker network's IPAM configuration (its first address if unset)."""
    for entry in ipam:
        try:
            subnet = ipaddress.ip_network(str(entry.get("Subnet") or ""), strict=False)
        except ValueError:
            continue
        if subnet.version != 4:
            continue
        gateway = str(entry.get("Gateway") or "")
        return gateway or str(next(subnet.hosts()))
    return None


def kind_gateway(network: str | None = None) -> str:
    """The host's address on kind's network: where pods reach a process on the host."""
    name = network or os.environ.get("KIND_EXPERIMENTAL_DOCKER_NETWORK") or KIND_NETWORK
    proc = capture(
        ["docker", "network", "inspect", name, "--format", "{{json .IPAM.Config}}"], timeout=30
    )
    if proc.returncode != 0:
        raise LoadFailed(f"docker network {name!r}: {proc.stderr.strip() or 'not found'}")
    try:
        ipam = json.loads(proc.stdout or "null") or []
    except ValueError as e:
        raise LoadFailed(f"docker network {name!r}: unreadable IPAM configuration") from e
    address = gateway_of(ipam)
    if address is None:
        raise LoadFailed(f"docker network {name!r} has no IPv4 subnet for the master to listen on")
    return address


def free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------------- the target


@dataclass(frozen=True)
class ServiceRef:
    """A Service named by an in-cluster URL, as the API server's proxy addresses it."""

    namespace: str
    proxy_name: str
    """``[https:]NAME:PORT``."""


def service_ref(url: str) -> ServiceRef | None:
    """The Service of ``http(s)://NAME.NAMESPACE.svc[...][:PORT]``; None for other URLs."""
    parts = urllib.parse.urlsplit(url)
    labels = (parts.hostname or "").split(".")
    if len(labels) < 3 or labels[2] != "svc" or not all(labels[:2]):
        return None
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    return ServiceRef(labels[1], f"{'https:' if https else ''}{labels[0]}:{port}")


def check_in_cluster(api: client.ApiClient, url: str, timeout: float = 10) -> None:
    """Fails fast, naming the URL, when the Service behind ``url`` answers nobody.

    Asked through the API server's Service proxy, so no pod has to start first. Any answer of
    the shop itself (also an error status) counts as reachable; the API server's own refusal
    (no such Service, no endpoints, connection refused) does not. Other URLs are left to the
    workers.
    """
    ref = service_ref(url)
    target = url.rstrip("/") + "/products"
    if ref is None:
        logger.info("%s is not a Service URL; the workers will find out whether it answers", url)
        return
    core = client.CoreV1Api(api)
    try:
        core.connect_get_namespaced_service_proxy_with_path(
            ref.proxy_name, ref.namespace, "products", _request_timeout=timeout
        )
    except ApiException as e:
        status = _api_status(e.body)
        if status is None:
            return  # the shop answered, with an error status: reachable
        reason = status.get("message") or e.reason
        raise TargetUnreachable(
            f"load target {target} is unreachable inside the cluster: {reason}"
        ) from e
    except (HTTPError, OSError) as e:
        raise TargetUnreachable(
            f"load target {target}: the cluster's API server did not answer: {e}"
        ) from e


def _api_status(body: object) -> dict[str, Any] | None:
    """The Kubernetes Status object an API error carries, if it is one."""
    try:
        parsed = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        return None
    if isinstance(parsed, dict) and parsed.get("kind") == "Status":
        return parsed
    return None


# ---------------------------------------------------------------------------- the manifests


def profile_files(profile: Path) -> dict[str, str]:
    """The ``.py`` files of the profile's folder (the profile and the modules it shares),
    and chaoskit's recorder (:data:`RECORDER_FILES`)."""
    files = {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted(profile.parent.glob("*.py"))
        if path.is_file() and CONFIGMAP_KEY.fullmatch(path.name) and path.name not in RECORDER_FILES
    }
    here = Path(__file__).parent
    for key, (_, source) in RECORDER_FILES.items():
        files[key] = (here / source).read_text(encoding="utf-8") if source else ""
    if profile.name not in files:
        raise InvalidInput(f"profile {profile}: its name cannot be a ConfigMap key")
    size = sum(len(text.encode()) for text in files.values())
    if size > MAX_PROFILE_BYTES:
        raise InvalidInput(
            f"profile {profile}: the .py files of its folder hold {size} bytes; workers in "
            f"pods get them through a ConfigMap (at most {MAX_PROFILE_BYTES})"
        )
    return files


@dataclass(frozen=True)
class WorkerPlan:
    """What the worker pods of one run are made of."""

    run_id: str
    workers: int
    image: str
    profile: str
    """The profile's file name (under ``/profiles`` in the pods)."""
    master_host: str
    master_port: int
    env: Mapping[str, str]
    deadline_seconds: float

    @property
    def name(self) -> str:
        return k8s_name(self.run_id)

    @property
    def labels(self) -> dict[str, str]:
        return {**LABELS, RUN_LABEL: run_label(self.run_id)}

    @property
    def selector(self) -> str:
        return f"{RUN_LABEL}={run_label(self.run_id)}"


def config_map(plan: WorkerPlan, files: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": plan.name, "namespace": NAMESPACE, "labels": plan.labels},
        "data": dict(files),
    }


def worker_job(plan: WorkerPlan) -> dict[str, Any]:
    """The Job of ``plan.workers`` Locust workers connected to the master on the host."""
    container = {
        "name": CONTAINER,
        "image": plan.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [
            *("-f", f"{PROFILES_MOUNT}/{plan.profile},{RECORDER_MOUNT}/{PLUGIN_PATH}"),
            "--worker",
            *("--master-host", plan.master_host),
            *("--master-port", str(plan.master_port)),
            # Failed requests are what experiments measure, not an error of the worker.
            *("--exit-code-on-error", "0"),
        ],
        "env": [
            {"name": k, "value": v}
            for k, v in sorted({**plan.env, "PYTHONPATH": RECORDER_MOUNT}.items())
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
        "volumeMounts": [
            {"name": "profiles", "mountPath": PROFILES_MOUNT, "readOnly": True},
            {"name": "recorder", "mountPath": RECORDER_MOUNT, "readOnly": True},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": plan.name, "namespace": NAMESPACE, "labels": plan.labels},
        "spec": {
            "parallelism": plan.workers,
            "completions": plan.workers,
            # A worker that fails is a failed run (as a crashed worker process is): no retry.
            "backoffLimit": 0,
            "activeDeadlineSeconds": math.ceil(plan.deadline_seconds),
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "template": {
                "metadata": {"labels": plan.labels},
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 10,
                    "enableServiceLinks": False,
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [container],
                    "volumes": [
                        {"name": "profiles", "configMap": {"name": plan.name}},
                        {
                            "name": "recorder",
                            "configMap": {
                                "name": plan.name,
                                "items": [
                                    {"key": key, "path": path}
                                    for key, (path, _) in RECORDER_FILES.items()
                                ],
                            },
                        },
                    ],
                },
            },
        },
    }


def pod_problem(pod: Any) -> str | None:
    """Why a worker pod failed or will not start; None while it is fine (or done)."""
    name = pod.metadata.name
    for status in pod.status.container_statuses or []:
        waiting = status.state.waiting if status.state else None
        if waiting is not None and waiting.reason in BROKEN:
            return f"pod {name}: {waiting.reason} {waiting.message or ''}".strip()
        terminated = status.state.terminated if status.state else None
        if terminated is not None and terminated.exit_code:
            why = terminated.reason or "Error"
            return f"pod {name}: exit {terminated.exit_code} ({why})"
    if pod.status.phase == "Failed":
        return f"pod {name} failed: {pod.status.reason or ''} {pod.status.message or ''}".strip()
    return None


def job_failure(job: Any) -> str | None:
    """Why the workers' Job failed (a worker pod failed or was deleted, or the deadline)."""
    for condition in job.status.conditions or []:
        if condition.type == "Failed" and condition.status == "True":
            return f"{condition.reason}: {condition.message}"
    if job.status.failed:
        return f"{job.status.failed} worker pod(s) failed or were deleted"
    return None


def pod_state(pod: Any) -> str:
    """One phrase for a pod, with the reason it is not running where there is one."""
    name, phase = pod.metadata.name, pod.status.phase
    for condition in pod.status.conditions or []:
        if condition.type == "PodScheduled" and condition.status != "True":
            return f"{name} {phase}: {condition.message}"
    for status in pod.status.container_statuses or []:
        waiting = status.state.waiting if status.state else None
        if waiting is not None:
            return f"{name} {phase}: {waiting.reason}"
    return f"{name} {phase}"


# ---------------------------------------------------------------------------- the pods


def load_image(settings: Settings, cluster: ClusterAccess, progress: Progress) -> str:
    """Builds the Locust image (cached) and loads it into the cluster; returns its pinned name."""
    log = settings.log_dir / "load" / f"{cluster.name}-locust-image.log"
    image = build_load_image(settings, progress)
    pinned = pinned_images([image], log)[image]
    with progress.task(f"loading {pinned} into cluster {cluster.name!r}"):
        run_logged(
            [kind_binary(settings), "load", "docker-image", pinned, "--name", cluster.name],
            log=log,
            what="kind load docker-image",
            error=LoadFailed,
            timeout=600,
        )
    return pinned


class PodWorkers:
    """The worker pods of one run: created after the master started, removed at its end."""

    def __init__(
        self,
        api: client.ApiClient,
        plan: WorkerPlan,
        files: Mapping[str, str],
        out_dir: Path,
    ) -> None:
        self.api = api
        self.plan = plan
        self.files = dict(files)
        self.out_dir = out_dir
        self._created = False
        self._removed = False
        self._next_look = 0.0
        self._last_state = "none"

    @classmethod
    def prepare(
        cls,
        settings: Settings,
        *,
        cluster: str,
        run_id: str,
        workers: int,
        profile: Path,
        host: str,
        env: Mapping[str, str],
        deadline_seconds: float,
        out_dir: Path,
        progress: Progress,
    ) -> PodWorkers:
        """Everything before the master starts: the cluster, the target, the image, the port."""
        files = profile_files(profile)
        access = cluster_access(settings, cluster)
        api = api_client(access.kubeconfig)
        check_in_cluster(api, host)
        image = load_image(settings, access, progress)
        master_host = kind_gateway()
        plan = WorkerPlan(
            run_id=run_id,
            workers=workers,
            image=image,
            profile=profile.name,
            master_host=master_host,
            master_port=free_port(master_host),
            env=env,
            deadline_seconds=deadline_seconds,
        )
        return cls(api, plan, files, out_dir)

    @property
    def _core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def _batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api)

    def start(self) -> None:
        """Creates the namespace (once), the profile's ConfigMap and the Job."""
        plan = self.plan
        try:
            self._core.create_namespace(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
            )
        except ApiException as e:
            if e.status != 409:
                raise LoadFailed(f"namespace {NAMESPACE}: {e.reason}") from e
        try:
            self._core.create_namespaced_config_map(NAMESPACE, config_map(plan, self.files))
            self._created = True
            job = self._batch.create_namespaced_job(NAMESPACE, worker_job(plan))
            owner = {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": plan.name,
                "uid": job.metadata.uid,
            }
            self._core.patch_namespaced_config_map(
                plan.name, NAMESPACE, {"metadata": {"ownerReferences": [owner]}}
            )
        except ApiException as e:
            raise LoadFailed(
                f"creating the worker pods ({NAMESPACE}/{plan.name}): {e.reason}"
            ) from e
        logger.info(
            "%d Locust worker pods in %s/%s, master at %s:%d",
            plan.workers,
            NAMESPACE,
            plan.name,
            plan.master_host,
            plan.master_port,
        )

    def pods(self) -> list[Any]:
        items: list[Any] = self._core.list_namespaced_pod(
            NAMESPACE, label_selector=self.plan.selector, _request_timeout=10
        ).items
        return items

    def check(self, *, now: bool = False) -> None:
        """Raises LoadFailed when a worker pod failed, was deleted or cannot start.

        Looks every few seconds (``now``: at once). A worker that is gone is a failure even
        when its pod left no trace: the Job counts it, and fails.
        """
        if not self._created or self._removed:
            return
        if not now and time.monotonic() < self._next_look:
            return
        self._next_look = time.monotonic() + STATUS_INTERVAL
        try:
            pods = self.pods()
            job = self._batch.read_namespaced_job_status(
                self.plan.name, NAMESPACE, _request_timeout=10
            )
        except (ApiException, HTTPError, OSError) as e:
            logger.warning("could not look at the worker pods: %s", e)
            return
        for pod in pods:
            problem = pod_problem(pod)
            if problem:
                raise LoadFailed(f"Locust worker {problem}{self._last_line(pod)}")
        failed = job_failure(job)
        if failed:
            raise LoadFailed(f"Locust worker pods ({NAMESPACE}/{self.plan.name}): {failed}")

    def describe(self) -> str:
        """The worker pods' states in one line (for an error message)."""
        if not self._created:
            return "not created"
        if self._removed:
            return f"{self._last_state} (removed since)"
        try:
            pods = self.pods()
        except (ApiException, HTTPError, OSError) as e:
            return f"unknown ({e})"
        return "; ".join(pod_problem(p) or pod_state(p) for p in pods) or "none"

    def wait_finished(self, timeout: float) -> None:
        """Waits until every worker pod has exited (they do when the master quits)."""
        deadline = time.monotonic() + timeout
        while self._created and time.monotonic() < deadline:
            try:
                pods = self.pods()
            except (ApiException, HTTPError, OSError):
                return
            if all(p.status.phase in ("Succeeded", "Failed") for p in pods):
                return
            time.sleep(1)
        logger.warning("worker pods still run after the master quit: %s", self.describe())

    def remove(self) -> None:
        """Keeps the workers' logs, deletes the Job and ConfigMap, waits until the pods are gone.

        Runs to its end even when Ctrl-C or SIGTERM arrive meanwhile.
        """
        if not self._created or self._removed:
            return
        with signals.deferred():
            self._last_state = self.describe()
            self._save_logs()
            name = self.plan.name
            for delete in (
                self._batch.delete_namespaced_job,
                self._core.delete_namespaced_config_map,
            ):
                try:
                    delete(name, NAMESPACE, propagation_policy="Background", _request_timeout=30)
                except ApiException as e:
                    if e.status != 404:
                        logger.warning("could not delete %s/%s: %s", NAMESPACE, name, e.reason)
                except (HTTPError, OSError) as e:
                    logger.warning("could not delete %s/%s: %s", NAMESPACE, name, e)
            self._wait_gone()
            self._removed = True

    def _wait_gone(self) -> None:
        deadline = time.monotonic() + REMOVE_TIMEOUT
        left: list[Any] = []
        while time.monotonic() < deadline:
            try:
                left = self.pods()
            except (ApiException, HTTPError, OSError) as e:
                logger.warning("could not look at the worker pods: %s", e)
                return
            if not left:
                return
            time.sleep(1)
        names = ", ".join(p.metadata.name for p in left)
        logger.warning("worker pods still there %.0f s after their Job: %s", REMOVE_TIMEOUT, names)

    def _save_logs(self) -> None:
        try:
            pods = self.pods()
        except (ApiException, HTTPError, OSError):
            return
        for pod in pods:
            name = pod.metadata.name
            try:
                text = self._core.read_namespaced_pod_log(
                    name, NAMESPACE, container=CONTAINER, _request_timeout=10
                )
            except (ApiException, HTTPError, OSError):
                continue
            # Pods are named after the Job (locust-<run id>-xxxxx), as the host's logs are.
            (self.out_dir / f"{name}.log").write_text(str(text), encoding="utf-8")

    def _last_line(self, pod: Any) -> str:
        try:
            text = self._core.read_namespaced_pod_log(
                pod.metadata.name,
                NAMESPACE,
                container=CONTAINER,
                tail_lines=20,
                _request_timeout=10,
            )
        except (ApiException, HTTPError, OSError):
            return ""
        lines = [line.strip() for line in str(text).splitlines() if line.strip()]
        return f": {lines[-1][:300]}" if lines else ""
