"""Watching the Kubernetes API: informers that keep a cache and report every change.

An :class:`Informer` lists one kind of object (in one namespace, or cluster-wide), then
follows a watch stream from that list's resourceVersion in a background thread. Every
change is stamped with ``time.time()`` the moment it arrives, which is what gives the
timeline its sub-100 ms resolution without polling. Objects stay raw JSON (dicts, camelCase
keys, as the API sends them): no model conversion on the hot path.

Faults break the API itself (etcd quorum loss, a killed kube-apiserver), so the stream
reconnects with a short backoff, resumes from the last resourceVersion, and relists when
that is too old (HTTP 410), reporting what changed during the gap as ``relist`` changes.
Listeners learn when an informer loses and regains the API.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from urllib3.exceptions import HTTPError

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
ChangeType = Literal["ADDED", "MODIFIED", "DELETED"]
Origin = Literal["watch", "relist"]

WATCH_SECONDS = 55
"""Server-side timeout of one watch request; the stream then resumes from its position."""
MAX_BACKOFF = 1.0
RESYNC_TIMEOUT = 10.0


@dataclass(frozen=True)
class Kind:
    """A kind of object and how to list it."""

    name: str
    api: Callable[[client.ApiClient], Any]
    namespaced: str
    """Method listing the objects of one namespace ('' for cluster-scoped kinds)."""
    cluster: str
    """Method listing them all."""


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("Pod", client.CoreV1Api, "list_namespaced_pod", "list_pod_for_all_namespaces"),
        Kind("Node", client.CoreV1Api, "", "list_node"),
        Kind(
            "Service",
            client.CoreV1Api,
            "list_namespaced_service",
            "list_service_for_all_namespaces",
        ),
        Kind(
            "ConfigMap",
            client.CoreV1Api,
            "list_namespaced_config_map",
            "list_config_map_for_all_namespaces",
        ),
        Kind(
            "Secret", client.CoreV1Api, "list_namespaced_secret", "list_secret_for_all_namespaces"
        ),
        Kind(
            "EndpointSlice",
            client.DiscoveryV1Api,
            "list_namespaced_endpoint_slice",
            "list_endpoint_slice_for_all_namespaces",
        ),
        Kind(
            "Deployment",
            client.AppsV1Api,
            "list_namespaced_deployment",
            "list_deployment_for_all_namespaces",
        ),
        Kind(
            "StatefulSet",
            client.AppsV1Api,
            "list_namespaced_stateful_set",
            "list_stateful_set_for_all_namespaces",
        ),
        Kind(
            "DaemonSet",
            client.AppsV1Api,
            "list_namespaced_daemon_set",
            "list_daemon_set_for_all_namespaces",
        ),
        Kind(
            "PodDisruptionBudget",
            client.PolicyV1Api,
            "list_namespaced_pod_disruption_budget",
            "list_pod_disruption_budget_for_all_namespaces",
        ),
    )
}


@dataclass(frozen=True)
class Change:
    """One observed change of one object."""

    kind: str
    type: ChangeType
    old: Obj | None
    """The object as last known before (None when it is new)."""
    new: Obj | None
    """The object now (None when it was deleted)."""
    at: float
    """time.time() when chaoskit received the change."""
    origin: Origin
    """watch: received as it happened; relist: found after a gap in the stream."""

    @property
    def obj(self) -> Obj:
        result = self.new if self.new is not None else self.old
        assert result is not None
        return result


Listener = Callable[[Change], None]
HealthListener = Callable[["Informer", bool, float, str], None]


class _Expired(Exception):
    """The resourceVersion is too old to resume from (HTTP 410): relist."""


def _rv_number(value: Any) -> int:
    """A resourceVersion as a number (etcd's revision) for ordering; -1 if it is not one."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def uid(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("uid", ""))


class Informer:
    """A cache of one kind of object, kept current by a watch stream in a thread."""

    def __init__(self, api: client.ApiClient, kind: str, namespace: str | None = None) -> None:
        self.kind = KINDS[kind]
        self.namespace = namespace
        self._api = self.kind.api(api)
        self._cache: dict[str, Obj] = {}
        self._gone: dict[str, int] = {}
        """uid -> resourceVersion at which it was seen deleted: later stale events are dropped."""
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._health_listeners: list[HealthListener] = []
        self._stopped = threading.Event()
        self._synced = threading.Event()
        self._healthy = False
        self._rv: str | None = None
        self._resp: Any = None
        self.last_change_at = 0.0
        """time.time() of the latest change this informer delivered."""
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.key}", daemon=True)

    @property
    def key(self) -> str:
        return f"{self.kind.name}/{self.namespace or '*'}"

    @property
    def healthy(self) -> bool:
        """Listed and following the stream: the cache is current."""
        return self._healthy

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def add_health_listener(self, listener: HealthListener) -> None:
        with self._lock:
            self._health_listeners.append(listener)

    def items(self) -> list[Obj]:
        with self._lock:
            return list(self._cache.values())

    def start(self) -> Informer:
        self._thread.start()
        return self

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def stop(self, *, join: bool = True) -> None:
        self._stopped.set()
        resp = self._resp
        if resp is not None:
            with contextlib.suppress(ValueError, RuntimeError, OSError):
                resp.shutdown()
        if join:
            self.join()

    def join(self, timeout: float = 2) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _call(self, **kwargs: Any) -> Any:
        if self.namespace is not None and self.kind.namespaced:
            method = getattr(self._api, self.kind.namespaced)
            return method(self.namespace, _preload_content=False, **kwargs)
        return getattr(self._api, self.kind.cluster)(_preload_content=False, **kwargs)

    def _set_health(self, healthy: bool, reason: str = "") -> None:
        if healthy == self._healthy:
            return
        self._healthy = healthy
        at = time.time()
        with self._lock:
            listeners = list(self._health_listeners)
        for listener in listeners:
            listener(self, healthy, at, reason)

    def _emit(self, changes: list[Change]) -> None:
        if not changes:
            return
        self.last_change_at = max(self.last_change_at, *(c.at for c in changes))
        with self._lock:
            listeners = list(self._listeners)
        for change in changes:
            for listener in listeners:
                try:
                    listener(change)
                except Exception:  # a broken listener must not kill the stream
                    logger.exception("listener of %s failed", self.key)

    def resync(self) -> bool:
        """Lists now, in the caller's thread: afterwards the cache is at least as new as
        this moment (a consistent read), whatever the watch stream has delivered so far.
        False if the API did not answer (the stream goes on trying)."""
        try:
            self._relist(timeout=RESYNC_TIMEOUT)
        except (ApiException, HTTPError, OSError, ValueError) as e:
            logger.debug("%s: resync failed: %s", self.key, e)
            return False
        return True

    def _relist(self, timeout: float = 30) -> None:
        resp = self._call(_request_timeout=(5, timeout))
        data = json.loads(resp.data)
        at = time.time()
        list_rv = _rv_number(data.get("metadata", {}).get("resourceVersion"))
        items = {uid(o): o for o in data.get("items") or []}
        changes = []
        with self._lock:
            first = not self._synced.is_set()
            for key, obj in list(items.items()):
                old = self._cache.get(key)
                if old is None and key in self._gone and self._gone[key] >= list_rv:
                    del items[key]  # the stream saw it deleted after this list was read
                    continue
                if old is None:
                    changes.append(Change(self.kind.name, "ADDED", None, obj, at, "relist"))
                elif _rv_number(old["metadata"].get("resourceVersion")) < _rv_number(
                    obj["metadata"].get("resourceVersion")
                ):
                    changes.append(Change(self.kind.name, "MODIFIED", old, obj, at, "relist"))
                else:
                    items[key] = old  # the stream already delivered this or something newer
            for key, old in self._cache.items():
                if key in items:
                    continue
                if _rv_number(old["metadata"].get("resourceVersion")) > list_rv:
                    # Created after the list was read (a resync races the stream): the
                    # stream is ahead, not the object gone.
                    items[key] = old
                    continue
                changes.append(Change(self.kind.name, "DELETED", old, None, at, "relist"))
                self._gone[key] = list_rv
            self._cache = items
        if self._rv is None or first:
            self._rv = str(data.get("metadata", {}).get("resourceVersion") or "") or None
        self._synced.set()
        self._set_health(True)
        if not first:
            self._emit(changes)

    def _apply(self, event_type: str, obj: Obj, at: float) -> None:
        key = uid(obj)
        version = _rv_number(obj.get("metadata", {}).get("resourceVersion"))
        with self._lock:
            old = self._cache.get(key)
            if version <= self._gone.get(key, -1):
                return  # deleted according to a newer list: a late event
            if old is not None and version <= _rv_number(old["metadata"].get("resourceVersion")):
                return  # a resync already brought this (or something newer)
            if event_type == "DELETED":
                self._cache.pop(key, None)
                self._gone[key] = version
            else:
                self._cache[key] = obj
        if event_type == "DELETED":
            change = Change(
                self.kind.name, "DELETED", old if old is not None else obj, None, at, "watch"
            )
        elif old is None:
            change = Change(self.kind.name, "ADDED", None, obj, at, "watch")
        else:
            change = Change(self.kind.name, "MODIFIED", old, obj, at, "watch")
        self._emit([change])

    def _watch(self) -> None:
        resp = self._call(
            watch=True,
            resource_version=self._rv,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _request_timeout=(5, WATCH_SECONDS + 15),
        )
        self._resp = resp
        self._set_health(True)
        try:
            for line in iter_resp_lines(resp):
                at = time.time()
                if self._stopped.is_set():
                    return
                if not line:
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:
                        raise _Expired
                    raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                rv = obj.get("metadata", {}).get("resourceVersion")
                if rv:
                    self._rv = str(rv)
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    self._apply(event["type"], obj, at)
        finally:
            self._resp = None
            resp.close()

    def _run(self) -> None:
        backoff = 0.1
        while not self._stopped.is_set():
            try:
                if self._rv is None or not self._synced.is_set():
                    self._relist()
                self._watch()
                backoff = 0.1
            except _Expired:
                self._rv = None
            except (ApiException, HTTPError, OSError, ValueError) as e:
                if self._stopped.is_set():
                    return
                if isinstance(e, ApiException) and e.status == 410:
                    self._rv = None
                    continue
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                logger.debug("%s: %s", self.key, reason)
                self._set_health(False, reason)
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)


class Informers:
    """Informers shared by everyone observing one cluster, by (kind, namespace)."""

    def __init__(self, api: client.ApiClient, *, sync_timeout: float = 30) -> None:
        self.api = api
        self.sync_timeout = sync_timeout
        self._informers: dict[tuple[str, str | None], Informer] = {}
        self._lock = threading.Lock()
        self._health_listeners: list[HealthListener] = []

    def add_health_listener(self, listener: HealthListener) -> None:
        with self._lock:
            self._health_listeners.append(listener)
            informers = list(self._informers.values())
        for informer in informers:
            informer.add_health_listener(listener)

    def get(self, kind: str, namespace: str | None = None) -> Informer:
        """The informer of ``kind`` in ``namespace``, started and synced on first use."""
        key = (kind, namespace)
        with self._lock:
            informer = self._informers.get(key)
            if informer is None:
                informer = Informer(self.api, kind, namespace)
                for listener in self._health_listeners:
                    informer.add_health_listener(listener)
                self._informers[key] = informer.start()
        if not informer.wait_synced(self.sync_timeout):
            logger.warning("%s has not listed within %.0f s", informer.key, self.sync_timeout)
        return informer

    def resync(self, informers: list[Informer]) -> bool:
        """Resyncs ``informers`` in parallel (a hung API costs one timeout, not one each);
        True if every one of them read the API."""
        if not informers:
            return True
        with ThreadPoolExecutor(max_workers=len(informers), thread_name_prefix="resync") as pool:
            return all(pool.map(lambda informer: informer.resync(), informers))

    def all(self) -> list[Informer]:
        with self._lock:
            return list(self._informers.values())

    def stop(self) -> None:
        with self._lock:
            informers = list(self._informers.values())
            self._informers.clear()
        for informer in informers:
            informer.stop(join=False)
        for informer in informers:
            informer.join()
