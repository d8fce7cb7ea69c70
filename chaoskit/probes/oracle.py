"""The desired-state oracle: did Kubernetes bring back what was there before the fault?

Before a fault, :func:`record` notes the desired state of the target namespaces: every
Deployment, StatefulSet, DaemonSet, Service, ConfigMap, Secret and PodDisruptionBudget by
a hash of its spec (Secrets only by hash, never their values), and how many replicas each
workload should run. After it, :func:`wait_converged` re-checks on every change the
informers see, until the actual state matches or a deadline passes; never a fixed sleep:

- every recorded object exists, with the same spec;
- each workload has as many Ready pods as it should; every pod it selects is scheduled and
  Ready (pods are counted, not the workload's status, which is stale without the
  controller manager);
- each Service has a ready endpoint for every Ready pod it selects, and none for pods
  that are gone;
- optionally (``system``): every node Ready, every kube-system static pod Ready.

On failure the :class:`Verdict` names exactly what is missing. :func:`diff` is a pure
function of recorded and observed raw objects, so the logic is tested without a cluster.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from chaoskit.probes.watch import Change, Informer, Informers, Obj

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
RECORDED = (*WORKLOADS, "Service", "ConfigMap", "Secret", "PodDisruptionBudget")
SYSTEM_NAMESPACE = "kube-system"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class Desired:
    """One object of the desired state."""

    kind: str
    namespace: str
    name: str
    spec_hash: str = ""
    replicas: int | None = None
    """Pods a workload should have Ready (a DaemonSet: as many as it had scheduled)."""
    selector: dict[str, Any] | None = None
    """A workload's label selector, or a Service's selector (as a matchLabels)."""

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.name}"


@dataclass(frozen=True)
class DesiredState:
    namespaces: tuple[str, ...]
    objects: tuple[Desired, ...]
    recorded_at: float
    system: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespaces": list(self.namespaces),
            "recorded_at": self.recorded_at,
            "system": self.system,
            "objects": [
                {k: v for k, v in asdict(o).items() if k != "selector"} for o in self.objects
            ],
        }


@dataclass(frozen=True)
class Observed:
    """What the API holds now: raw objects by kind (pods, endpoint slices, nodes too)."""

    objects: Mapping[str, list[Obj]]

    def of(self, kind: str) -> list[Obj]:
        return self.objects.get(kind, [])


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: tuple[str, ...]
    checked_at: float
    """time.time() of the change after which the state was judged."""
    waited: float = 0.0
    """Seconds the caller waited for this verdict."""
    judged_at: float = 0.0
    """time.time() when the verdict was reached."""
    notes: tuple[str, ...] = field(default=())

    def summary(self, limit: int = 12) -> str:
        if self.ok:
            return "desired state holds"
        shown = list(self.problems[:limit])
        more = len(self.problems) - len(shown)
        return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- pure logic


def _meta(obj: Obj) -> dict[str, Any]:
    meta: dict[str, Any] = obj.get("metadata") or {}
    return meta


def spec_of(kind: str, obj: Obj) -> Any:
    if kind == "ConfigMap":
        return {"data": obj.get("data"), "binaryData": obj.get("binaryData")}
    if kind == "Secret":
        return {"type": obj.get("type"), "data": obj.get("data")}
    return obj.get("spec")


def spec_hash(kind: str, obj: Obj) -> str:
    text = json.dumps(spec_of(kind, obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against a pod's labels."""
    if not selector:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if (
            (op == "In" and (not present or labels[key] not in values))
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def _condition(obj: Obj, kind: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def is_ready(obj: Obj) -> bool:
    cond = _condition(obj, "Ready")
    return cond is not None and cond.get("status") == "True"


def is_live(pod: Obj) -> bool:
    """Not being deleted and not finished: a pod that counts toward a workload."""
    phase = (pod.get("status") or {}).get("phase")
    return _meta(pod).get("deletionTimestamp") is None and phase not in ("Succeeded", "Failed")


def pod_serving(pod: Obj) -> bool:
    return is_live(pod) and bool((pod.get("spec") or {}).get("nodeName")) and is_ready(pod)


def why_not_ready(pod: Obj) -> str:
    """The most telling reason a pod gives for not serving."""
    spec = pod.get("spec") or {}
    if not spec.get("nodeName"):
        cond = _condition(pod, "PodScheduled") or {}
        message = cond.get("message") or cond.get("reason") or "waiting for the scheduler"
        return f"not scheduled: {message}"
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            detail = waiting.get("reason") or "waiting"
            return f"container {cs.get('name')} {detail}"
        if not cs.get("ready") and (cs.get("state") or {}).get("running"):
            return f"container {cs.get('name')} running, not ready"
    cond = _condition(pod, "Ready") or {}
    reason = f", {cond['reason']}" if cond.get("reason") else ""
    return f"not Ready ({status.get('phase', 'Unknown')}{reason})"


def _desired_replicas(kind: str, obj: Obj) -> int:
    if kind == "DaemonSet":
        return int((obj.get("status") or {}).get("desiredNumberScheduled") or 0)
    replicas = (obj.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def _is_static(pod: Obj) -> bool:
    return any(o.get("kind") == "Node" for o in _meta(pod).get("ownerReferences") or [])


def desired_from(
    observed: Observed, namespaces: Iterable[str], *, system: bool = False, at: float | None = None
) -> DesiredState:
    """The desired state that ``observed`` declares (pure: used by :func:`record`)."""
    spaces = tuple(namespaces)
    objects = []
    for kind in RECORDED:
        for obj in observed.of(kind):
            meta = _meta(obj)
            namespace = meta.get("namespace")
            in_system = system and namespace == SYSTEM_NAMESPACE and kind in WORKLOADS
            if namespace not in spaces and not in_system:
                continue
            if kind == "Secret" and obj.get("type") == "kubernetes.io/service-account-token":
                continue
            selector: dict[str, Any] | None = None
            replicas = None
            if kind in WORKLOADS:
                selector = (obj.get("spec") or {}).get("selector")
                replicas = _desired_replicas(kind, obj)
            elif kind == "Service":
                plain = (obj.get("spec") or {}).get("selector")
                selector = {"matchLabels": plain} if plain else None
            objects.append(
                Desired(
                    kind, meta["namespace"], meta["name"], spec_hash(kind, obj), replicas, selector
                )
            )
    if system:
        for node in observed.of("Node"):
            objects.append(Desired("Node", "", _meta(node)["name"]))
        for pod in observed.of("Pod"):
            meta = _meta(pod)
            if meta.get("namespace") == SYSTEM_NAMESPACE and _is_static(pod):
                objects.append(Desired("Pod", SYSTEM_NAMESPACE, meta["name"]))
    objects.sort(key=lambda d: (d.namespace, d.kind, d.name))
    return DesiredState(spaces, tuple(objects), at if at is not None else time.time(), system)


def _workload_problems(d: Desired, pods: list[Obj]) -> list[str]:
    selected = [p for p in pods if selector_matches(d.selector, _meta(p).get("labels") or {})]
    serving = sorted(_meta(p)["name"] for p in selected if pod_serving(p))
    want = d.replicas or 0
    problems = []
    for pod in sorted(selected, key=lambda p: str(_meta(p).get("name"))):
        if not pod_serving(pod):
            node = (pod.get("spec") or {}).get("nodeName")
            where = f" on {node}" if node else ""
            problems.append(f"pod/{_meta(pod)['name']} ({d.ref}){where}: {why_not_ready(pod)}")
    if len(serving) < want:
        line = f"{d.ref}: {len(serving)} of {want} replicas Ready"
        if d.kind == "StatefulSet":
            names = {str(_meta(p).get("name")) for p in selected}
            missing = [f"{d.name}-{i}" for i in range(want) if f"{d.name}-{i}" not in names]
            if missing:
                line += f", pod(s) missing: {', '.join(missing)}"
        else:
            absent = want - len(selected)
            if absent > 0:
                line += f", {absent} pod(s) missing (not re-created)"
        problems.insert(0, line + (f" (Ready: {', '.join(serving)})" if serving else ""))
    elif len(selected) > want:
        extra = sorted(str(_meta(p)["name"]) for p in selected)
        problems.append(f"{d.ref}: {len(selected)} pods for {want} replicas: {', '.join(extra)}")
    return problems


def _endpoint_names(slices: list[Obj], namespace: str, service: str) -> set[str]:
    names = set()
    for item in slices:
        meta = _meta(item)
        if meta.get("namespace") != namespace:
            continue
        if (meta.get("labels") or {}).get(SERVICE_NAME_LABEL) != service:
            continue
        for endpoint in item.get("endpoints") or []:
            ready = (endpoint.get("conditions") or {}).get("ready")
            ref = endpoint.get("targetRef") or {}
            if ready is not False and ref.get("kind") == "Pod" and ref.get("name"):
                names.add(str(ref["name"]))
    return names


def _service_problems(d: Desired, pods: list[Obj], slices: list[Obj]) -> list[str]:
    selected = [p for p in pods if selector_matches(d.selector, _meta(p).get("labels") or {})]
    serving = {str(_meta(p)["name"]) for p in selected if pod_serving(p)}
    live = {str(_meta(p)["name"]) for p in selected}
    endpoints = _endpoint_names(slices, d.namespace, d.name)
    problems = []
    missing = sorted(serving - endpoints)
    if missing:
        problems.append(f"{d.ref}: no ready endpoint for Ready pod(s) {', '.join(missing)}")
    stale = sorted(endpoints - live)
    if stale:
        problems.append(f"{d.ref}: endpoint(s) for pod(s) that are gone: {', '.join(stale)}")
    return problems


def diff(desired: DesiredState, observed: Observed) -> list[str]:
    """Everything in which ``observed`` falls short of ``desired``; empty when it holds."""
    index: dict[tuple[str, str, str], Obj] = {}
    for kind in (*RECORDED, "Node", "Pod"):
        for obj in observed.of(kind):
            meta = _meta(obj)
            index[(kind, str(meta.get("namespace") or ""), str(meta.get("name")))] = obj
    pods_by_ns: dict[str, list[Obj]] = {}
    for pod in observed.of("Pod"):
        if is_live(pod):
            pods_by_ns.setdefault(str(_meta(pod).get("namespace")), []).append(pod)
    slices = observed.of("EndpointSlice")

    problems: list[str] = []
    for d in desired.objects:
        named = len(desired.namespaces) > 1 or d.namespace not in desired.namespaces
        where = f"{d.namespace}: " if d.namespace and named else ""
        found = index.get((d.kind, d.namespace, d.name))
        pods = pods_by_ns.get(d.namespace, [])
        problems += [where + p for p in _object_problems(d, found, pods, slices)]
    return problems


def _object_problems(d: Desired, obj: Obj | None, pods: list[Obj], slices: list[Obj]) -> list[str]:
    if obj is None:
        return [f"{d.ref}: missing"]
    if d.kind == "Node":
        return [] if is_ready(obj) else [f"node/{d.name}: NotReady"]
    if d.kind == "Pod":
        return [] if pod_serving(obj) else [f"pod/{d.name}: {why_not_ready(obj)}"]
    problems = []
    if d.spec_hash and spec_hash(d.kind, obj) != d.spec_hash:
        problems.append(f"{d.ref}: spec differs from the recorded one")
    if d.kind in WORKLOADS:
        problems += _workload_problems(d, pods)
    elif d.kind == "Service" and d.selector:
        problems += _service_problems(d, pods, slices)
    return problems


# --------------------------------------------------------------------------- on a cluster


def _needed(namespaces: Iterable[str], system: bool) -> list[tuple[str, str | None]]:
    needed: list[tuple[str, str | None]] = []
    spaces = list(namespaces)
    for namespace in spaces:
        needed += [(kind, namespace) for kind in (*RECORDED, "Pod", "EndpointSlice")]
    if system:
        if SYSTEM_NAMESPACE not in spaces:
            # Only workloads, static pods and nodes: kube-system's ConfigMaps and Secrets
            # are the cluster's business and change on their own.
            needed += [(kind, SYSTEM_NAMESPACE) for kind in (*WORKLOADS, "Pod")]
        needed.append(("Node", None))
    return needed


def observe(
    informers: Informers, namespaces: Iterable[str], *, system: bool = False
) -> tuple[Observed, list[Informer]]:
    """The informers' current view of ``namespaces`` (and nodes, for ``system``)."""
    used = [informers.get(kind, ns) for kind, ns in _needed(namespaces, system)]
    objects: dict[str, list[Obj]] = {}
    for informer in used:
        objects.setdefault(informer.kind.name, []).extend(informer.items())
    return Observed(objects), used


def record(
    informers: Informers, namespaces: Iterable[str], *, system: bool = False
) -> DesiredState:
    """The desired state of ``namespaces`` now (plus nodes and static pods for ``system``)."""
    spaces = tuple(namespaces)
    observed, _ = observe(informers, spaces, system=system)
    return desired_from(observed, spaces, system=system)


def check(informers: Informers, desired: DesiredState) -> Verdict:
    observed, used = observe(informers, desired.namespaces, system=desired.system)
    problems = diff(desired, observed)
    stale = [i.key for i in used if not i.healthy]
    if stale:
        problems.append(f"the API is not answering watches ({', '.join(stale[:3])})")
    return Verdict(not problems, tuple(problems), time.time())


RECHECK_S = 5.0
"""Seconds between re-checks when no change arrives (a stalled stream)."""


def wait_converged(
    informers: Informers, desired: DesiredState, timeout: float, *, stable_for: float = 0.0
) -> Verdict:
    """Re-checks on every change until the desired state holds or ``timeout`` passes.

    The verdict's ``checked_at`` is the arrival time of the change that completed
    convergence, so recovery times are as precise as the watch events. With
    ``stable_for``, the state must then go on holding that many seconds (some faults have
    effects that come later: after a quorum loss the node leases expire once the API is
    back); a lapse starts the wait for convergence again, and is noted in the verdict.
    """
    started = time.monotonic()
    deadline = started + timeout
    wake = threading.Event()
    _, used = observe(informers, desired.namespaces, system=desired.system)
    # A fault's own change may still be on its way down a watch stream, and an API server
    # without etcd keeps its watches open but silent: judge nothing older than a fresh,
    # consistent read.
    failed_reads = 0
    while not informers.resync(used):
        failed_reads += 1
        if time.monotonic() >= deadline:
            now = time.time()
            problem = "the API does not answer reads: the state cannot be judged"
            return Verdict(
                False, (problem,), now, round(time.monotonic() - started, 3), judged_at=now
            )
        time.sleep(1.0)
    # If the state holds already, it has since the latest change anyone saw, or since reads
    # work again.
    latest = max((i.last_change_at for i in used), default=0.0) or time.time()
    last_change = [time.time() if failed_reads else latest]

    def listener(change: Change) -> None:
        last_change[0] = change.at
        wake.set()

    for informer in used:
        informer.add_listener(listener)
    held: Verdict | None = None
    held_since = 0.0
    lapses: list[str] = []
    try:
        while True:
            wake.clear()
            seen = last_change[0]
            verdict = check(informers, desired)
            now = time.monotonic()
            if verdict.ok:
                if held is None:
                    held = Verdict(True, (), seen, round(now - started, 3), judged_at=time.time())
                    held_since = now
                to_hold = stable_for - (now - held_since)
                if to_hold <= 0:
                    held_for = f"held for {now - held_since:.0f} s" if stable_for else ""
                    return replace(held, notes=tuple(n for n in (*lapses, held_for) if n))
                if now >= deadline:
                    # Holding at the deadline is not recovered: it never held for stable_for.
                    at = time.time()
                    problem = (
                        f"the desired state held only {now - held_since:.1f} s of the required "
                        f"stable_for {stable_for:g} s before the {timeout:g} s deadline"
                    )
                    return Verdict(
                        False,
                        (problem,),
                        at,
                        round(now - started, 3),
                        judged_at=at,
                        notes=tuple(lapses),
                    )
                wake.wait(min(to_hold, deadline - now, RECHECK_S))
                continue
            if held is not None:
                lapses.append(f"held {now - held_since:.1f} s, then lapsed: {verdict.problems[0]}")
                held = None
            remaining = deadline - now
            if remaining <= 0:
                at = time.time()
                waited = round(now - started, 3)
                return Verdict(
                    False, verdict.problems, at, waited, judged_at=at, notes=tuple(lapses)
                )
            # Woken by the next change; the periodic re-check only covers a stalled stream.
            wake.wait(min(remaining, RECHECK_S))
    finally:
        for informer in used:
            informer.remove_listener(listener)
