"""Pod faults: delete pods by label selector, or kill one container inside them.

Both only kill: the ReplicaSet, StatefulSet or kubelet bringing the pods back is what an
experiment measures, so nothing is recorded for rollback.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

from chaoskit.faults.base import Blast, Fault, FaultEnv, Recorder, Victim, choose, help_
from chaoskit.faults.components import kill_container
from chaoskit.faults.errors import FaultFailed
from chaoskit.faults.observe import restart_count, wait_restart_seen
from chaoskit.faults.registry import register


@dataclass(frozen=True, kw_only=True)
class PodChoice(Blast):
    namespace: str = field(metadata=help_("namespace of the pods (must be in the allowlist)"))
    selector: str = field(metadata=help_("label selector, e.g. app=gateway"))


def running_pods(env: FaultEnv, namespace: str, selector: str) -> list[Any]:
    """Pods that match ``selector``, are Running and are not being deleted already."""
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - heavy: only when acting

    try:
        pods = env.core().list_namespaced_pod(
            namespace, label_selector=selector, _request_timeout=30
        )
    except ApiException as e:
        raise FaultFailed(f"listing pods {selector!r} in {namespace!r}: {e.reason}") from e
    return [
        p
        for p in pods.items
        if p.metadata.deletion_timestamp is None and p.status.phase == "Running"
    ]


def pod_victim(pod: Any, container: str = "") -> Victim:
    owners = pod.metadata.owner_references or []
    return Victim(
        kind="container" if container else "pod",
        name=pod.metadata.name,
        node=pod.spec.node_name or "",
        namespace=pod.metadata.namespace,
        uid=pod.metadata.uid,
        owner_uid=owners[0].uid if owners else "",
        container=container,
    )


def container_victim(pod: Any, container: str | None) -> Victim:
    """``container`` of ``pod`` (default: its first) as a victim; FaultFailed names the
    pod's containers when it has no such one."""
    names = [c.name for c in pod.spec.containers]
    chosen = container or names[0]
    if chosen not in names:
        raise FaultFailed(
            f"pod {pod.metadata.name} has no container {chosen!r} (containers: {', '.join(names)})"
        )
    return pod_victim(pod, chosen)


def choice_label(fault: Fault[Any], params: PodChoice) -> str:
    return f"{fault.name}: selector {params.selector!r} in namespace {params.namespace!r}"


def choose_pods(
    fault: Fault[Any], params: PodChoice, pods: list[Any], rng: random.Random
) -> list[Any]:
    """The seeded choice among ``pods``, as ``params`` asks, within the blast radius."""
    chosen: list[Any] = choose(
        pods,
        key=lambda p: p.metadata.name,
        rng=rng,
        count=params.count,
        percent=params.percent,
        max_victims=fault.max_victims(),
        what=choice_label(fault, params),
    )
    return chosen


def _choose_pods(
    fault: Fault[Any], params: PodChoice, env: FaultEnv, rng: random.Random
) -> list[Any]:
    return choose_pods(fault, params, running_pods(env, params.namespace, params.selector), rng)


def hold_on_pod(
    env: FaultEnv,
    fault: Fault[Any],
    victim: Victim,
    record: Recorder,
    *,
    agent_fault: str,
    params: dict[str, str],
) -> dict[str, Any]:
    """Orders ``agent_fault`` on ``victim`` (a pod) from the agent on its node, held until
    the release (or the fault's ``duration``); returns the details to report."""
    info = env.agents().hold(
        victim.node,
        agent_fault,
        {"pod_uid": victim.uid, "namespace": victim.namespace, "pod": victim.name, **params},
        record=record,
        description=f"{fault.name} of {victim.label} ended",
        duration=getattr(fault.params, "duration", None),
    )
    return {"victim": victim.label, **params, "agent": info}


@dataclass(frozen=True, kw_only=True)
class PodKillParams(PodChoice):
    grace_period: int | None = field(
        default=None,
        metadata=help_("seconds of grace; 0 deletes at once; unset: the pod's own"),
    )


@register
class PodKill(Fault[PodKillParams]):
    name = "pod-kill"
    action = "kill_pods"
    summary = "delete pods chosen by label selector (count or percent), with or without grace"
    params_type = PodKillParams

    def check(self, env: FaultEnv) -> None:
        env.target.check_namespace(self.params.namespace)

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        return [pod_victim(p) for p in _choose_pods(self, self.params, env, rng)]

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        from kubernetes import client  # noqa: PLC0415 - heavy: only when acting

        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=victim.uid))
        if self.params.grace_period is not None:
            options.grace_period_seconds = self.params.grace_period
        core = env.core()
        try:
            core.delete_namespaced_pod(
                victim.name, victim.namespace, body=options, _request_timeout=30
            )
        except client.ApiException as e:
            # A DELETE whose answer was lost is sent again by the client; by then a
            # StatefulSet may have made a new pod of the same name, and the UID
            # precondition answers 409. What counts is that the victim is gone.
            if e.status not in (404, 409) or _pod_uid(core, victim) == victim.uid:
                raise FaultFailed(
                    f"deleting pod {victim.namespace}/{victim.name}: {e.reason}"
                ) from e
            return {
                "victim": victim.label,
                "grace_period": self.params.grace_period,
                "note": f"pod {victim.uid} was already gone when the delete answered",
            }
        return {"victim": victim.label, "grace_period": self.params.grace_period}


def _pod_uid(core: Any, victim: Victim) -> str | None:
    """The UID of the pod now called ``victim.name`` (None: no such pod)."""
    from kubernetes import client  # noqa: PLC0415 - heavy: only when acting

    try:
        pod = core.read_namespaced_pod(victim.name, victim.namespace, _request_timeout=30)
    except client.ApiException as e:
        if e.status == 404:
            return None
        raise FaultFailed(f"reading pod {victim.namespace}/{victim.name}: {e.reason}") from e
    uid: str = pod.metadata.uid
    return uid


@dataclass(frozen=True, kw_only=True)
class ContainerKillParams(PodChoice):
    container: str | None = field(
        default=None, metadata=help_("container name (default: the pod's first container)")
    )
    signal: Literal["KILL", "TERM", "INT", "QUIT"] = field(
        default="KILL", metadata=help_("signal for the container's main process")
    )


@register
class ContainerKill(Fault[ContainerKillParams]):
    name = "container-kill"
    action = "kill_containers"
    summary = "kill the main process of one container in pods chosen by label selector"
    params_type = ContainerKillParams

    def check(self, env: FaultEnv) -> None:
        env.target.check_namespace(self.params.namespace)

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        chosen = _choose_pods(self, self.params, env, rng)
        return [container_victim(pod, self.params.container) for pod in chosen]

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        core = env.core()
        pod = core.read_namespaced_pod(victim.name, victim.namespace, _request_timeout=30)
        before = restart_count(pod, victim.container)
        kills = kill_container(
            env,
            victim.node,
            victim.namespace,
            victim.container,
            pod=victim.name,
            signal=self.params.signal,
        )
        seen = wait_restart_seen(core, victim.namespace, victim.name, victim.container, before)
        if seen is None:
            raise FaultFailed(
                f"{victim.label}: killed, but the API never showed the container restart"
            )
        return {
            "victim": victim.label,
            "killed": kills,
            "restart_seen_after_s": seen,
        }
