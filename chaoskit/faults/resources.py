"""Resource faults in pods: a CPU hog and a memory hog inside the victim pod's cgroup,
and a disk fill of the pod's own filesystem up to its ephemeral-storage limit.

Victim pods are chosen like the pod faults' (namespace in the allowlist, label selector,
seeded count or percent, blast radius). Each is a hold: an order to the agent on the
pod's node (:mod:`chaoskit.agent.nodeagent.resources`), which runs a hog in a cgroup of
its own under the pod's, so that the pod's own CPU quota and memory limit apply to it as
to the pod's processes; the hog is killed at the release, or ends by itself at the expiry
should this process (or the agent) die. A memory hog above the pod's limit is OOM-killed
by the kernel inside the pod (the hog, or one of the pod's processes).

``disk-fill`` writes a file into one of the pod's containers, sized from the pod's own
ephemeral-storage limit (by default 16 MiB past it, which the kubelet answers by evicting
the pod); a pod without such a limit is refused, and the agent never leaves less than
1 GiB free on the filesystem it writes to.

``node-memory-pressure`` acts on a node, not a pod: a kind node sees the whole machine's
memory, so no hog of a sensible size would bring it near the kubelet's eviction threshold.
The fault reads what the kubelet counts (its summary API) and what the node's pods
request, has the agent set the kubelet's hard ``memory.available`` threshold so that the
node's allocatable memory is its pods' requests (or use) plus ``headroom_mb`` (the
kubelet takes the threshold off its allocatable, and re-admits its pods against that when
it restarts), restart it, and hold enough memory in a cgroup at the root of the node's
memory hierarchy, outside every pod, that the kubelet must free ``reclaim_mb``: it evicts
pods in its order (BestEffort and pods above their requests first) until enough is free.
The release kills the hog and puts the kubelet's configuration back; a dead harness or
agent is covered by the hog's own expiry and a timer on the node. ``node-cpu-hog`` burns
CPU in cgroups at the roots of the node's hierarchies, outside every pod: a noisy
neighbour that the pods' CPU requests (their cgroups' shares) are weighed against.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chaoskit.agent.nodeagent.resources import (
    DEFAULT_FILL_PATH,
    MAX_EVICTIONS,
    MAX_MEGABYTES,
    MAX_WORKERS,
)
from chaoskit.faults.base import (
    Fault,
    FaultEnv,
    Hold,
    NodeChoice,
    Params,
    Recorder,
    Victim,
    choose_nodes,
    help_,
)
from chaoskit.faults.errors import FaultFailed, InvalidParam
from chaoskit.faults.pod import (
    PodChoice,
    choose_pods,
    container_victim,
    hold_on_pod,
    pod_victim,
    running_pods,
)
from chaoskit.faults.registry import register


@dataclass(frozen=True, kw_only=True)
class Workers(Params):
    workers: int = field(
        default=1,
        metadata=help_(f"busy processes, 1 to {MAX_WORKERS} (each burns up to one CPU)"),
    )

    def check(self) -> None:
        super().check()
        if not 0 < self.workers <= MAX_WORKERS:
            raise InvalidParam("workers", f"must be 1 to {MAX_WORKERS}, not {self.workers}")


@dataclass(frozen=True, kw_only=True)
class CpuHogParams(PodChoice, Hold, Workers):
    pass


@dataclass(frozen=True, kw_only=True)
class MemoryHogParams(PodChoice, Hold):
    megabytes: int = field(
        metadata=help_("MiB allocated and touched inside the pod's memory cgroup")
    )

    def check(self) -> None:
        super().check()
        if not 0 < self.megabytes <= MAX_MEGABYTES:
            raise InvalidParam("megabytes", f"must be 1 to {MAX_MEGABYTES}, not {self.megabytes}")


class PodHog(Fault[Any]):
    """A hog held in each victim pod's cgroup, through the agent on the pod's node."""

    holds = True
    agent_fault: ClassVar[str] = ""
    amount: ClassVar[str] = ""
    """The parameter the agent takes: workers, megabytes."""

    def check(self, env: FaultEnv) -> None:
        env.target.check_namespace(self.params.namespace)

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        pods = running_pods(env, self.params.namespace, self.params.selector)
        return [pod_victim(p) for p in choose_pods(self, self.params, pods, rng)]

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        params = {self.amount: str(getattr(self.params, self.amount))}
        return hold_on_pod(env, self, victim, record, agent_fault=self.agent_fault, params=params)


@register
class CpuHog(PodHog):
    name = "cpu-hog"
    action = "hog_cpu"
    summary = "burn CPU inside a pod's cgroup (its own CPU limit applies) until rollback"
    params_type = CpuHogParams
    agent_fault = "cpu-hog"
    amount = "workers"


@register
class MemoryHog(PodHog):
    name = "memory-hog"
    action = "hog_memory"
    summary = (
        "hold memory inside a pod's cgroup until rollback; above the pod's limit the kernel "
        "OOM-kills inside the pod"
    )
    params_type = MemoryHogParams
    agent_fault = "memory-hog"
    amount = "megabytes"


MIB = 1024 * 1024
PAST_LIMIT_MB = 16
"""How far past the pod's limit a fill goes by default: enough for the kubelet to see it."""


@dataclass(frozen=True, kw_only=True)
class DiskFillParams(PodChoice, Hold):
    container: str | None = field(
        default=None, metadata=help_("container to write in (default: the pod's first)")
    )
    path: str = field(
        default=DEFAULT_FILL_PATH,
        metadata=help_("directory inside the container: its writable layer or an emptyDir"),
    )
    megabytes: int | None = field(
        default=None,
        metadata=help_(
            f"MiB written, at most twice the pod's ephemeral-storage limit (default: the "
            f"limit + {PAST_LIMIT_MB}, past it)"
        ),
    )

    def check(self) -> None:
        super().check()
        if not self.path.startswith("/") or ".." in self.path.split("/"):
            raise InvalidParam("path", f"{self.path!r} must be absolute, without '..'")
        if self.megabytes is not None and self.megabytes <= 0:
            raise InvalidParam("megabytes", f"must be more than 0, not {self.megabytes}")


def storage_limit_mb(pod: Any) -> int | None:
    """The pod's ephemeral-storage limit (its containers' limits added), in MiB, or None
    when a container has none (then the pod may use the node's whole disk)."""
    from kubernetes.utils import parse_quantity  # noqa: PLC0415 - heavy: only when acting

    total = 0
    for container in pod.spec.containers:
        limits = (container.resources.limits if container.resources else None) or {}
        if "ephemeral-storage" not in limits:
            return None
        total += int(parse_quantity(limits["ephemeral-storage"]))
    return total // MIB


@register
class DiskFill(Fault[DiskFillParams]):
    name = "disk-fill"
    action = "fill_disk"
    summary = (
        "fill a pod's own filesystem up to (or past) its ephemeral-storage limit until "
        "rollback; refused for a pod without one"
    )
    params_type = DiskFillParams
    holds = True

    def check(self, env: FaultEnv) -> None:
        env.target.check_namespace(self.params.namespace)

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        pods = running_pods(env, self.params.namespace, self.params.selector)
        victims = []
        for pod in choose_pods(self, self.params, pods, rng):
            self.megabytes(pod)  # refused before anything changes
            victims.append(container_victim(pod, self.params.container))
        return victims

    def megabytes(self, pod: Any) -> int:
        limit = storage_limit_mb(pod)
        if limit is None:
            raise FaultFailed(
                f"pod {pod.metadata.namespace}/{pod.metadata.name} has no ephemeral-storage "
                "limit: disk-fill fills a pod up to its own limit, never the node's disk"
            )
        wanted = self.params.megabytes or limit + PAST_LIMIT_MB
        if wanted > 2 * limit:
            raise InvalidParam(
                "megabytes", f"{wanted} is more than twice the pod's limit ({limit} MiB)"
            )
        return wanted

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        from kubernetes import client  # noqa: PLC0415 - heavy: only when acting

        try:
            pod = env.core().read_namespaced_pod(victim.name, victim.namespace, _request_timeout=30)
        except client.ApiException as e:
            raise FaultFailed(f"reading pod {victim.namespace}/{victim.name}: {e.reason}") from e
        params = {
            "container": victim.container,
            "path": self.params.path,
            "megabytes": str(self.megabytes(pod)),
        }
        return hold_on_pod(env, self, victim, record, agent_fault="disk-fill", params=params)


# ---------------------------------------------------------------------------- node memory

LEAST_THRESHOLD_MB = 128
"""A threshold below this would be under the kubelet's own default: no pressure to make."""


@dataclass(frozen=True, kw_only=True)
class NodeMemoryParams(NodeChoice, Hold):
    reclaim_mb: int = field(
        default=256, metadata=help_("MiB the kubelet must free by evicting pods")
    )
    headroom_mb: int = field(
        default=256,
        metadata=help_(
            "MiB of allocatable memory left above what the node's pods request (or use, "
            "if more) while the fault holds"
        ),
    )
    evictions: int = field(
        default=1,
        metadata=help_(
            "the hog ends once the kubelet has evicted this many pods from the node "
            "(0: it holds until rollback, evicting on as long as the node stays short)"
        ),
    )

    def check(self) -> None:
        super().check()
        if not 0 <= self.evictions <= MAX_EVICTIONS:
            raise InvalidParam("evictions", f"must be 0 to {MAX_EVICTIONS}, not {self.evictions}")
        if not 0 < self.reclaim_mb <= MAX_MEGABYTES:
            raise InvalidParam("reclaim_mb", f"must be 1 to {MAX_MEGABYTES}, not {self.reclaim_mb}")
        if not 0 <= self.headroom_mb <= MAX_MEGABYTES:
            raise InvalidParam(
                "headroom_mb", f"must be 0 to {MAX_MEGABYTES}, not {self.headroom_mb}"
            )


@dataclass(frozen=True)
class NodeMemory:
    """What a node's kubelet counts (MiB): capacity, working set, and its pods' requests."""

    capacity_mb: int
    working_set_mb: int
    requests_mb: int

    def pressure(self, reclaim_mb: int, headroom_mb: int) -> tuple[int, int]:
        """(threshold, hog) in MiB. The threshold leaves the node an allocatable of its
        pods' requests (or its use, if more) plus ``headroom_mb``, since the kubelet takes
        the threshold off its allocatable and re-admits its pods against that when it
        restarts; the hog then fills that room and ``reclaim_mb`` past it."""
        room = max(self.working_set_mb, self.requests_mb) + headroom_mb
        return self.capacity_mb - room, room - self.working_set_mb + reclaim_mb


def node_memory(env: FaultEnv, node: str) -> NodeMemory:
    """The node's memory as its kubelet counts it (the summary API) and its pods' requests."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - heavy
    from kubernetes.utils import parse_quantity  # noqa: PLC0415 - heavy

    try:
        response = env.core().connect_get_node_proxy_with_path(
            node, "stats/summary", _preload_content=False, _request_timeout=30
        )
        summary = json.loads(response.data)
        pods = (
            env.core()
            .list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={node}", _request_timeout=30
            )
            .items
        )
    except ApiException as e:
        raise FaultFailed(f"reading node {node}'s memory from its kubelet: {e.reason}") from e
    except ValueError as e:
        raise FaultFailed(f"node {node}'s kubelet summary is not JSON: {e}") from e
    memory = (summary.get("node") or {}).get("memory") or {}
    available, working_set = memory.get("availableBytes"), memory.get("workingSetBytes")
    if not isinstance(available, int) or not isinstance(working_set, int):
        raise FaultFailed(f"node {node}'s kubelet reports no available memory")
    requests = 0
    for pod in pods:
        if pod.status and pod.status.phase in ("Succeeded", "Failed"):
            continue
        for container in pod.spec.containers:
            wanted = (container.resources.requests if container.resources else None) or {}
            if "memory" in wanted:
                requests += int(parse_quantity(wanted["memory"]))
    return NodeMemory(
        capacity_mb=(available + working_set) // MIB,
        working_set_mb=working_set // MIB,
        requests_mb=requests // MIB,
    )


class NodeHold(Fault[Any]):
    """A hold on one node through its agent, outside every pod."""

    holds = True
    default_max_victims = 1

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        return choose_nodes(env, self.params, rng, max_victims=self.max_victims(), what=self.name)

    def hold(
        self, env: FaultEnv, victim: Victim, record: Recorder, params: dict[str, str]
    ) -> dict[str, str]:
        """The agent's order ``self.name`` on the victim node, until rollback; its info."""
        info: dict[str, str] = env.agents().hold(
            victim.node,
            self.name,
            params,
            record=record,
            description=f"{self.name} of node {victim.node} ended",
            duration=self.params.duration,
        )
        return info


@register
class NodeMemoryPressure(NodeHold):
    name = "node-memory-pressure"
    action = "pressure_node_memory"
    summary = (
        "hold memory on a node outside its pods, with the kubelet's eviction threshold set "
        "so that it must free reclaim_mb: it evicts pods (BestEffort first); the hog ends "
        "after `evictions` evictions, the threshold at rollback"
    )
    params_type = NodeMemoryParams

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        memory = node_memory(env, victim.node)
        threshold, hog = memory.pressure(self.params.reclaim_mb, self.params.headroom_mb)
        if threshold < LEAST_THRESHOLD_MB:
            raise FaultFailed(
                f"node {victim.node} has {memory.capacity_mb} MiB: a threshold leaving its "
                f"pods their {memory.requests_mb} MiB would be under {LEAST_THRESHOLD_MB} MiB"
            )
        if hog > MAX_MEGABYTES:
            raise FaultFailed(
                f"node {victim.node} would need a {hog} MiB hog (most {MAX_MEGABYTES})"
            )
        params = {
            "megabytes": str(hog),
            "threshold_mb": str(threshold),
            "evictions": str(self.params.evictions),
        }
        info = self.hold(env, victim, record, params)
        return {
            "victim": victim.label,
            "capacity_mb": memory.capacity_mb,
            "working_set_mb": memory.working_set_mb,
            "requests_mb": memory.requests_mb,
            **params,
            "agent": info,
        }


@dataclass(frozen=True, kw_only=True)
class NodeCpuHogParams(NodeChoice, Hold, Workers):
    pass


@register
class NodeCpuHog(NodeHold):
    name = "node-cpu-hog"
    action = "hog_node_cpu"
    summary = "burn CPU on a node outside its pods (a noisy neighbour) until rollback"
    params_type = NodeCpuHogParams

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        params = {"workers": str(self.params.workers)}
        return {"victim": victim.label, **params, "agent": self.hold(env, victim, record, params)}
