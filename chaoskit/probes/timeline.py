"""The timeline of an experiment, from watch events (not polling), in wall-clock seconds.

Informers (:mod:`.watch`) deliver each change of a pod, endpoint slice or node the moment
it arrives; :func:`pod_events`, :func:`slice_events` and :func:`node_events` turn a change
into what happened: pod created, bound to a node, container started or died, Ready or not,
deleted; endpoint ready or removed; node Ready or NotReady. Faults add their own moments
(injected, effective, rolled back) and informers add API outages.

:func:`recovery` splits each replaced pod's recovery by the component that did the work:
controller manager (deleted -> replacement created), scheduler (created -> bound), kubelet
(bound -> Ready, split into container start and readiness) and the endpoints controller
(Ready -> ready endpoint).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from chaoskit.probes.watch import Change, Informer, Informers, Obj

SYSTEM_NAMESPACE = "kube-system"
API_PROBE_INTERVAL = 0.5
API_PROBE_TIMEOUT = 2.0
"""Seconds one read of the API probe may take before it counts as failed."""


@dataclass(frozen=True)
class Event:
    at: float
    """time.time() when chaoskit saw it happen."""
    kind: str
    subject: str
    """pod/<namespace>/<name>, node/<name>, or what a fault names."""
    detail: dict[str, Any] = field(default_factory=dict)
    origin: str = "watch"
    """watch (as it happened), relist (found after a gap) or harness (chaoskit's own act)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _meta(obj: Obj | None) -> dict[str, Any]:
    meta: dict[str, Any] = (obj or {}).get("metadata") or {}
    return meta


def _ready(obj: Obj | None) -> tuple[bool, str]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True", str(cond.get("lastTransitionTime") or "")
    return False, ""


def _containers(obj: Obj | None) -> dict[str, dict[str, Any]]:
    statuses = ((obj or {}).get("status") or {}).get("containerStatuses") or []
    return {str(s.get("name")): s for s in statuses}


def pod_subject(obj: Obj) -> str:
    meta = _meta(obj)
    return f"pod/{meta.get('namespace')}/{meta.get('name')}"


def pod_identity(obj: Obj) -> dict[str, Any]:
    meta = _meta(obj)
    owners = meta.get("ownerReferences") or []
    owner = owners[0] if owners else {}
    return {
        "uid": meta.get("uid", ""),
        "owner": f"{str(owner.get('kind', '')).lower()}/{owner.get('name', '')}" if owner else "",
        "owner_uid": owner.get("uid", ""),
        "node": ((obj.get("spec") or {}).get("nodeName")) or "",
    }


def pod_events(change: Change) -> list[tuple[str, dict[str, Any]]]:
    """What one change of a pod means, as (event kind, detail) pairs, in order."""
    old, new = change.old, change.new
    base = pod_identity(change.obj)
    events: list[tuple[str, dict[str, Any]]] = []
    if change.type == "DELETED":
        return [("pod-deleted", base)]
    assert new is not None
    if change.type == "ADDED":
        events.append(("pod-created", {**base, "server_time": _meta(new).get("creationTimestamp")}))
    if _meta(new).get("deletionTimestamp") and not _meta(old).get("deletionTimestamp"):
        events.append(("pod-deleting", base))
    if (new.get("spec") or {}).get("nodeName") and not ((old or {}).get("spec") or {}).get(
        "nodeName"
    ):
        events.append(("pod-bound", base))
    before, after = _containers(old), _containers(new)
    for name, status in after.items():
        prev = before.get(name, {})
        running = (status.get("state") or {}).get("running")
        was_running = (prev.get("state") or {}).get("running")
        restarted = int(status.get("restartCount") or 0) > int(prev.get("restartCount") or 0)
        if was_running and not running:
            events.append(("container-died", {**base, "container": name}))
        if running and (not was_running or status.get("containerID") != prev.get("containerID")):
            events.append(
                (
                    "container-started",
                    {
                        **base,
                        "container": name,
                        "restarts": status.get("restartCount", 0),
                        "server_time": running.get("startedAt"),
                    },
                )
            )
        elif restarted and not running:
            events.append(("container-restarted", {**base, "container": name}))
    was_ready, _ = _ready(old)
    is_ready, since = _ready(new)
    if is_ready and not was_ready:
        events.append(("pod-ready", {**base, "server_time": since}))
    elif was_ready and not is_ready:
        events.append(("pod-not-ready", {**base, "server_time": since}))
    return events


def _slice_ready(obj: Obj | None) -> dict[str, str]:
    """Pod name -> address of every ready endpoint in a slice."""
    result = {}
    for endpoint in (obj or {}).get("endpoints") or []:
        if (endpoint.get("conditions") or {}).get("ready") is False:
            continue
        ref = endpoint.get("targetRef") or {}
        if ref.get("kind") == "Pod" and ref.get("name"):
            addresses = endpoint.get("addresses") or [""]
            result[str(ref["name"])] = str(addresses[0])
    return result


def slice_events(change: Change) -> list[tuple[str, str, dict[str, Any]]]:
    """(event kind, subject, detail) for endpoints that became ready or went away."""
    meta = _meta(change.obj)
    namespace = meta.get("namespace")
    service = (meta.get("labels") or {}).get("kubernetes.io/service-name", "")
    before, after = _slice_ready(change.old), _slice_ready(change.new)
    events = []
    for pod in sorted(set(after) - set(before)):
        events.append(
            ("endpoint-ready", f"pod/{namespace}/{pod}", {"service": service, "ip": after[pod]})
        )
    for pod in sorted(set(before) - set(after)):
        events.append(
            ("endpoint-removed", f"pod/{namespace}/{pod}", {"service": service, "ip": before[pod]})
        )
    return events


def node_events(change: Change) -> list[tuple[str, dict[str, Any]]]:
    if change.type == "DELETED":
        return [("node-deleted", {})]
    was_ready, _ = _ready(change.old)
    is_ready, since = _ready(change.new)
    if change.type == "ADDED" and change.old is None:
        return [("node-added", {"ready": is_ready})]
    if is_ready and not was_ready:
        return [("node-ready", {"server_time": since})]
    if was_ready and not is_ready:
        return [("node-not-ready", {"server_time": since})]
    return []


class Timeline:
    """Events of one run, collected by listeners on shared informers."""

    def __init__(
        self,
        informers: Informers,
        namespaces: Iterable[str],
        *,
        system: bool = True,
        api_read: Callable[[], object] | None = None,
    ):
        self.informers = informers
        self.namespaces = tuple(namespaces)
        self.system = system
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._listening: list[tuple[Informer, Any]] = []
        self._watch_lost_since: float | None = None
        self._api_read = api_read
        self._stopped = threading.Event()
        self._probe: threading.Thread | None = None

    def start(self) -> Timeline:
        spaces = list(self.namespaces)
        if self.system and SYSTEM_NAMESPACE not in spaces:
            spaces.append(SYSTEM_NAMESPACE)
        self.informers.add_health_listener(self._on_health)
        for namespace in spaces:
            self._listen(self.informers.get("Pod", namespace), self._on_pod)
            self._listen(self.informers.get("EndpointSlice", namespace), self._on_slice)
        self._listen(self.informers.get("Node"), self._on_node)
        if self._api_read is not None:
            self._probe = threading.Thread(target=self._probe_api, name="api-probe", daemon=True)
            self._probe.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        for informer, listener in self._listening:
            informer.remove_listener(listener)
        self._listening.clear()
        if self._probe is not None:
            self._probe.join(timeout=API_PROBE_TIMEOUT + 1)

    def _probe_api(self) -> None:
        """Reads from etcd through the API twice a second: watches cannot tell that reads
        and writes fail (an API server keeps its watches open without etcd)."""
        assert self._api_read is not None
        available = True
        while not self._stopped.is_set():
            try:
                self._api_read()
                now_available, reason = True, ""
            except Exception as e:  # noqa: BLE001 - every failure is an outage to record
                now_available, reason = (
                    False,
                    str(e).splitlines()[0] if str(e) else type(e).__name__,
                )
            if now_available != available:
                available = now_available
                kind = "api-available" if available else "api-unavailable"
                self._add(Event(time.time(), kind, "api", {"reason": reason} if reason else {}))
            self._stopped.wait(API_PROBE_INTERVAL)

    def _listen(self, informer: Informer, listener: Any) -> None:
        informer.add_listener(listener)
        self._listening.append((informer, listener))

    def _add(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    def mark(self, kind: str, subject: str, detail: dict[str, Any] | None = None) -> Event:
        """Puts one of the harness's own moments (a fault injected, ...) on the timeline."""
        event = Event(time.time(), kind, subject, dict(detail or {}), "harness")
        self._add(event)
        return event

    def events(self) -> list[Event]:
        with self._lock:
            return sorted(self._events, key=lambda e: e.at)

    def _on_pod(self, change: Change) -> None:
        subject = pod_subject(change.obj)
        for kind, detail in pod_events(change):
            self._add(Event(change.at, kind, subject, detail, change.origin))

    def _on_slice(self, change: Change) -> None:
        for kind, subject, detail in slice_events(change):
            self._add(Event(change.at, kind, subject, detail, change.origin))

    def _on_node(self, change: Change) -> None:
        subject = f"node/{_meta(change.obj).get('name')}"
        for kind, detail in node_events(change):
            self._add(Event(change.at, kind, subject, detail, change.origin))

    def _on_health(self, informer: Informer, healthy: bool, at: float, reason: str) -> None:
        with self._lock:
            if not healthy and self._watch_lost_since is None:
                self._watch_lost_since = at
                self._events.append(
                    Event(at, "watch-lost", "api", {"via": informer.key, "reason": reason})
                )
            elif healthy and self._watch_lost_since is not None:
                lost = at - self._watch_lost_since
                self._watch_lost_since = None
                self._events.append(
                    Event(
                        at, "watch-restored", "api", {"via": informer.key, "lost_s": round(lost, 3)}
                    )
                )


# --------------------------------------------------------------------------- analysis


def _rel(at: float | None, t0: float) -> float | None:
    return None if at is None else round(at - t0, 3)


def _span(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round(end - start, 3)


def _nonnegative(span: float | None) -> float | None:
    """Events of different streams may arrive out of order by a few ms; causality does not."""
    return None if span is None else max(span, 0.0)


def _first(
    events: list[Event],
    kind: str,
    *,
    subject: str | None = None,
    uid: str | None = None,
    after: float = 0.0,
) -> Event | None:
    for e in events:
        if e.kind != kind or e.at < after:
            continue
        if subject is not None and e.subject != subject:
            continue
        if uid is not None and e.detail.get("uid") != uid:
            continue
        return e
    return None


def pod_recoveries(
    events: list[Event], t0: float, *, namespaces: Iterable[str]
) -> list[dict[str, Any]]:
    """Every pod deleted after ``t0`` in ``namespaces``, paired with its replacement."""
    spaces = {f"pod/{n}/" for n in namespaces}
    gone: dict[str, Event] = {}
    for e in events:
        if e.at < t0 or e.kind not in ("pod-deleting", "pod-deleted"):
            continue
        if not any(e.subject.startswith(p) for p in spaces) or not e.detail.get("owner_uid"):
            continue
        gone.setdefault(str(e.detail["uid"]), e)
    paired: set[str] = set()
    result = []
    for uid, deleted in sorted(gone.items(), key=lambda item: item[1].at):
        owner = deleted.detail["owner_uid"]
        # The pod itself, restored from a backup, or a new pod of the same owner (never
        # another pod that was deleted too).
        restored = _first(events, "pod-created", uid=uid, after=deleted.at)
        created = restored or next(
            (
                e
                for e in events
                if e.kind == "pod-created"
                and e.at >= t0
                and e.detail.get("owner_uid") == owner
                and e.detail.get("uid") not in paired
                and e.detail.get("uid") not in gone
            ),
            None,
        )
        entry: dict[str, Any] = {
            "pod": deleted.subject,
            "owner": deleted.detail.get("owner"),
            "node": deleted.detail.get("node"),
            "deleted": _rel(deleted.at, t0),
            "restored": restored is not None,
        }
        if created is None:
            entry["replacement"] = None
            result.append(entry)
            continue
        new_uid = str(created.detail["uid"])
        paired.add(new_uid)
        bound = _first(events, "pod-bound", uid=new_uid, after=created.at)
        started = _first(events, "container-started", uid=new_uid, after=created.at)
        ready = _first(events, "pod-ready", uid=new_uid, after=created.at)
        # Endpoint slices and pods come down different streams: the slice may arrive first.
        endpoint = _first(events, "endpoint-ready", subject=created.subject, after=created.at)
        done_at = max((e.at for e in (ready, endpoint) if e is not None), default=None)
        entry.update(
            {
                "replacement": created.subject,
                "replacement_node": (bound.detail.get("node") if bound else None),
                "created": _rel(created.at, t0),
                "bound": _rel(bound.at if bound else None, t0),
                "started": _rel(started.at if started else None, t0),
                "ready": _rel(ready.at if ready else None, t0),
                "endpoint": _rel(endpoint.at if endpoint else None, t0),
                "phases": {
                    "controller_manager": _span(deleted.at, created.at),
                    "scheduler": _span(created.at, bound.at if bound else None),
                    "kubelet": _span(bound.at if bound else None, ready.at if ready else None),
                    "kubelet_container_start": _span(
                        bound.at if bound else None, started.at if started else None
                    ),
                    "kubelet_readiness": _span(
                        started.at if started else None, ready.at if ready else None
                    ),
                    "endpoints": _nonnegative(
                        _span(ready.at if ready else None, endpoint.at if endpoint else None)
                    ),
                },
                "total": _span(t0, done_at),
                "relisted": any(
                    e.origin == "relist" for e in (created, bound, ready, endpoint) if e is not None
                ),
            }
        )
        result.append(entry)
    return result


def recovery(
    events: list[Event],
    injection: dict[str, Any],
    *,
    namespaces: Iterable[str],
    until: float | None = None,
) -> dict[str, Any]:
    """What happened after one injection, relative to its ``injected_at``, by component.

    Pods deleted before ``until`` (the next injection) count as this one's; its own
    victims (nodes, components) are followed to the end of the events.
    """
    t0 = float(injection["injected_at"])
    rolled_back = injection.get("rolled_back_at")
    window = [e for e in events if until is None or e.at < until]
    result: dict[str, Any] = {
        "injection": injection.get("id"),
        "fault": injection.get("fault"),
        "pods": pod_recoveries(window, t0, namespaces=namespaces),
        "containers": [],
        "components": [],
        "nodes": [],
    }
    for victim in injection.get("victims", []):
        kind = victim.get("kind")
        if kind == "container":
            subject = f"pod/{victim['namespace']}/{victim['name']}"
            died = _first(events, "container-died", subject=subject, after=t0)
            started = _first(events, "container-started", subject=subject, after=t0)
            ready = _first(
                events, "pod-ready", subject=subject, after=started.at if started else t0
            )
            result["containers"].append(
                {
                    "pod": subject,
                    "container": victim.get("container"),
                    "died": _rel(died.at if died else None, t0),
                    "restarted": _rel(started.at if started else None, t0),
                    "ready": _rel(ready.at if ready else None, t0),
                }
            )
        elif kind in ("component", "etcd-member"):
            subject = f"pod/{SYSTEM_NAMESPACE}/{victim['name']}"
            died = _first(events, "container-died", subject=subject, after=t0)
            down = _first(events, "pod-not-ready", subject=subject, after=t0) or _first(
                events, "pod-deleted", subject=subject, after=t0
            )
            started = _first(events, "container-started", subject=subject, after=t0)
            back_from = float(rolled_back) if rolled_back else (down.at if down else t0)
            ready = _first(events, "pod-ready", subject=subject, after=back_from)
            result["components"].append(
                {
                    "pod": subject,
                    "died": _rel(died.at if died else None, t0),
                    "not_ready": _rel(down.at if down else None, t0),
                    "restarted": _rel(started.at if started else None, t0),
                    "ready": _rel(ready.at if ready else None, t0),
                    "ready_after_rollback": _span(
                        float(rolled_back) if rolled_back else None, ready.at if ready else None
                    ),
                }
            )
        elif kind == "node":
            subject = f"node/{victim['name']}"
            down = _first(events, "node-not-ready", subject=subject, after=t0)
            back_from = float(rolled_back) if rolled_back else (down.at if down else t0)
            ready = _first(events, "node-ready", subject=subject, after=back_from)
            result["nodes"].append(
                {
                    "node": victim["name"],
                    "not_ready": _rel(down.at if down else None, t0),
                    "ready": _rel(ready.at if ready else None, t0),
                    "ready_after_rollback": _span(
                        float(rolled_back) if rolled_back else None, ready.at if ready else None
                    ),
                }
            )
    result["api_outages"] = _intervals(events, t0, "api-unavailable", "api-available")
    result["watch_gaps"] = _intervals(events, t0, "watch-lost", "watch-restored")
    return result


def _intervals(events: list[Event], t0: float, start: str, end: str) -> list[dict[str, Any]]:
    """Periods between a ``start`` and the next ``end`` event, after ``t0``."""
    found = []
    since: float | None = None
    for e in events:
        if e.at < t0:
            continue
        if e.kind == start and since is None:
            since = e.at
        elif e.kind == end and since is not None:
            found.append(
                {"from": _rel(since, t0), "to": _rel(e.at, t0), "seconds": _span(since, e.at)}
            )
            since = None
    if since is not None:
        found.append({"from": _rel(since, t0), "to": None, "seconds": None})
    return found
