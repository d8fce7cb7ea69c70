"""The etcd backup drill: snapshot, destroy, restore on every member, verify.

Every step on a node is an order to its agent (:mod:`chaoskit.faults.agentnodes`), so the
drill runs on any cluster whose control planes run etcd as kubeadm's static pod, kind
included; the snapshot travels through the API, in the agents' pods
(:mod:`chaoskit.agent.files`).

1. Record the desired state of the namespace to destroy (the oracle); read every
   member's name, peer URL and data dir, and stage its own etcdutl on its node
   (``etcd-stage``).
2. Snapshot etcd with etcdctl inside one member (``etcd-snapshot``), copy it to the host
   (kept for rollback and ``chaoskit recover``) and from there to every other member;
   each copy's SHA-256 is checked.
3. Record the restore as this fault's undo, *then* destroy: with ``destroy=namespace``
   delete the namespace; with ``destroy=etcd-data`` write a marker ConfigMap after the
   snapshot and let the restore set every member's data directory aside (as if lost), so
   the cluster is rebuilt from the snapshot alone while the workloads keep running (their
   volumes are untouched, unlike a deleted namespace whose volumes are reclaimed).
4. Restore every member: one ``etcd-restore`` order per member, all created together
   while the API still serves, with the same start time a few seconds ahead. From then
   on the API is gone, so each agent does its member's whole restore on its own: hold
   kube-apiserver and etcd down, ``etcdutl snapshot restore`` with the member's name and
   peer URL (``--bump-revision``/``--mark-compacted`` so that watchers do not see time
   run backwards), swap the data directory, put etcd back, then the API server.
5. Wait until the API serves again and every agent reported its member restored, then
   until the namespace is back and its desired state holds (and, for ``etcd-data``,
   the marker written after the snapshot is gone). Remove every copy of the snapshot.

If the drill is interrupted anywhere after the snapshot, its recorded undo is the restore:
rollback or ``chaoskit recover`` restores from the host's copy. The restore is idempotent,
so running it again after a partial run is safe.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from urllib3.exceptions import HTTPError

from chaoskit.errors import OperationFailed
from chaoskit.faults.agentnodes import Hands, collect_once, order_once
from chaoskit.faults.base import Fault, FaultEnv, Params, Recorder, Victim, help_
from chaoskit.faults.components import control_planes
from chaoskit.faults.errors import FaultFailed
from chaoskit.faults.registry import register
from chaoskit.faults.state import Undo
from chaoskit.faults.undo import undo_op
from chaoskit.settings import Settings

if TYPE_CHECKING:
    from kubernetes import client

    from chaoskit.agent.client import Orders
    from chaoskit.agent.files import Digest
    from chaoskit.probes import oracle

logger = logging.getLogger(__name__)

STAGE_TIMEOUT = 150.0
"""Seconds for ``etcd-stage`` (it waits up to 120 s for the member's etcd to run)."""
SNAPSHOT_TIMEOUT = 240.0
SNAPSHOT_ORDER_TTL = 20.0
"""Seconds the snapshot's order may wait for its agent (it is picked up within a second
or two); the restore starts only after it expired (see ``restore``)."""
STATUS_TIMEOUT = 30.0
RESTORE_LEAD = 5.0
"""Seconds from creating the restore orders to their common start: every agent has
picked its order up by then (its tick is 1 s), so that the members stop together."""
RESTORE_TIMEOUT = 600.0
"""Seconds past the start for every member's restore to be reported (the API is down
meanwhile); also how long past the start an agent may still begin one it saw late."""


@dataclass(frozen=True, kw_only=True)
class DrillParams(Params):
    namespace: str = field(
        metadata=help_("namespace to delete after the snapshot (must be in the allowlist)")
    )
    snapshot_node: str | None = field(
        default=None, metadata=help_("control plane whose member takes the snapshot")
    )
    verify_timeout: float = field(
        default=300.0, metadata=help_("seconds for the API and the namespace to come back")
    )
    destroy: Literal["namespace", "etcd-data"] = field(
        default="namespace",
        metadata=help_(
            "what is lost after the snapshot: the namespace (deleted, its volumes too), or "
            "etcd's data (every member rebuilt from the snapshot; workloads keep running)"
        ),
    )


@dataclass(frozen=True)
class Member:
    node: str
    name: str
    peer_url: str
    data_dir: str

    def to_dict(self) -> dict[str, str]:
        return {
            "node": self.node,
            "name": self.name,
            "peer_url": self.peer_url,
            "data_dir": self.data_dir,
        }


@dataclass
class _RestorePending:
    """Whether the drill's recorded restore is still to be done (by rollback or recover)."""

    value: bool = False


def snapshot_name(rid: str) -> str:
    """The snapshot's name in each node's drill folder (the agent's ``snapshot_name``)."""
    return f"snapshot-{rid}.db"


def _once(
    orders: Orders,
    node: str,
    fault: str,
    params: dict[str, str],
    timeout: float,
    *,
    ttl: float | None = None,
) -> dict[str, str]:
    name = order_once(orders, node, fault, params, ttl=ttl or timeout)
    return collect_once(orders, name, timeout=timeout)


def stage_member(orders: Orders, node: str) -> Member:
    """The member's settings from its etcd.yaml; stages its etcdutl on its node."""
    info = _once(orders, node, "etcd-stage", {}, STAGE_TIMEOUT)
    return Member(node, info["name"], info["peer_url"], info["data_dir"])


def _digest_of(path: Path) -> tuple[int, str]:
    sha = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            sha.update(chunk)
    return path.stat().st_size, sha.hexdigest()


def check_agents(api: client.ApiClient, nodes: list[str]) -> None:
    """Every member's agent is Ready, before any member is taken down."""
    from chaoskit.agent.install import node_agents  # noqa: PLC0415 - heavy: only when acting

    agents = {a.node: a for a in node_agents(api)}
    for node in nodes:
        agent = agents.get(node)
        if agent is None or not agent.ready:
            reason = agent.reason if agent is not None else "no such node"
            raise FaultFailed(
                f"etcd restore: no Ready chaoskit agent on {node} ({reason}); "
                "install it ('chaoskit agent install') before restoring"
            )


def distribute(
    api: client.ApiClient, nodes: list[str], host_snapshot: Path, rid: str, expected: Digest
) -> None:
    """Copies the host's snapshot to every node that does not hold it yet."""
    from chaoskit.agent import files  # noqa: PLC0415 - heavy: only when acting

    for node in nodes:
        try:
            if files.push(api, node, host_snapshot, snapshot_name(rid), expected):
                logger.info("etcd snapshot copied to %s", node)
        except OperationFailed as e:
            raise FaultFailed(f"etcd snapshot to {node}: {e}") from e


def _quiet(api: client.ApiClient) -> client.ApiClient:
    """The same client without urllib3's retries: waiting for the API retries by itself."""
    import copy  # noqa: PLC0415 - only here

    from kubernetes import client  # noqa: PLC0415 - heavy: only when acting

    configuration = copy.deepcopy(api.configuration)
    configuration.retries = False
    return client.ApiClient(configuration)


def restore(orders: Orders, args: dict[str, Any]) -> dict[str, Any]:
    """Restores every member from the snapshot in ``args`` (idempotent); returns what the
    agents reported and when the API served again."""
    members: list[dict[str, str]] = args["members"]
    rid = str(args["restore_id"])
    snapshot = Path(args["snapshot"])
    if not snapshot.is_file():
        raise FaultFailed(f"etcd snapshot {snapshot} is gone: cannot restore")
    from chaoskit.agent.files import Digest  # noqa: PLC0415 - heavy: only when acting

    size, sha = _digest_of(snapshot)
    if args.get("sha256") and args["sha256"] != sha:
        raise FaultFailed(f"etcd snapshot {snapshot} is not the drill's (SHA-256 differs)")
    api = orders.custom.api_client
    nodes = [m["node"] for m in members]
    check_agents(api, nodes)
    distribute(api, nodes, snapshot, rid, Digest(size, sha))
    initial_cluster = ",".join(f"{m['name']}={m['peer_url']}" for m in members)
    # Every order while the API still serves, one start for all: from then on the API is
    # gone and each agent restores its member by itself. Not before the snapshot's own
    # order expired: the restored etcd holds that order as it was (Pending), and an agent
    # must find it expired rather than carry it out again.
    not_before = max(time.time() + RESTORE_LEAD, float(args.get("snapshot_order_expires", 0)) + 1)
    floor = _min_revision(api)
    names = []
    for member in members:
        params = {
            "rid": rid,
            "name": member["name"],
            "peer_url": member["peer_url"],
            "data_dir": member["data_dir"],
            "initial_cluster": initial_cluster,
            "not_before": f"{not_before:.3f}",
            "sha256": sha,
            "min_revision": str(floor),
        }
        ttl = not_before - time.time() + RESTORE_TIMEOUT
        names.append(order_once(orders, member["node"], "etcd-restore", params, ttl=ttl))
    api_back = _wait_api(_quiet(api), not_before - time.time() + RESTORE_TIMEOUT, since=not_before)
    # The restore orders are gone with the restore (made after the snapshot): each agent
    # left its member's outcome on its node, asked for with a new order.
    reports = _restore_outcomes(orders, nodes, rid, deadline=not_before + RESTORE_TIMEOUT)
    # The restore orders are there only if the API never went away; the snapshot's order
    # is back with the snapshot (its agent marked it Expired).
    for name in [*names, str(args.get("snapshot_order", ""))]:
        with contextlib.suppress(Exception):
            if name:
                orders.delete(name)
    failed = [
        f"{node}: {r.get('message', r['state'])}"
        for node, r in reports.items()
        if r["state"] != "done"
    ]
    if failed:
        raise FaultFailed("etcd restore failed on " + "; ".join(failed))
    return {"api_back_after_s": api_back, "members": reports}


REVISION_MARGIN = 1_000_000
"""Revisions past the API's current one where the restored etcd starts: the writes until
the members stop, many times over."""


def _min_revision(api: client.ApiClient) -> int:
    """Where the restored revision must start: past every revision a client may have seen
    (the API's current one, plus a margin), so that every watcher re-lists instead of
    waiting for a revision the restored etcd reaches only later."""
    from kubernetes import client  # noqa: PLC0415 - heavy: only when acting

    try:
        listed = client.CoreV1Api(api).list_namespace(limit=1, _request_timeout=10)
        current = int(listed.metadata.resource_version)
    except (client.ApiException, HTTPError, OSError, TypeError, ValueError) as e:
        raise FaultFailed(f"etcd restore: reading the API's current revision: {e}") from e
    return current + REVISION_MARGIN


NOT_STARTED_GRACE = 60.0
"""Seconds after the API is back for a member whose agent says its restore never ran
(it did not see its order before the API went away) before that counts as failed."""


def _restore_outcomes(
    orders: Orders, nodes: list[str], rid: str, *, deadline: float
) -> dict[str, dict[str, str]]:
    """Each member's restore outcome (state done or failed), asking its agent until then."""
    outcomes: dict[str, dict[str, str]] = {}
    grace = time.time() + NOT_STARTED_GRACE
    while True:
        for node in nodes:
            if node in outcomes:
                continue
            try:
                found = _once(orders, node, "etcd-restore-status", {"rid": rid}, STATUS_TIMEOUT)
            except FaultFailed as e:
                logger.debug("asking %s for its restore: %s", node, e)
                continue
            if found.get("state") in ("done", "failed"):
                outcomes[node] = found
            elif found.get("state") == "none" and time.time() > grace:
                outcomes[node] = {"state": "failed", "message": "its restore never ran"}
        if len(outcomes) == len(nodes):
            return outcomes
        if time.time() > deadline:
            missing = ", ".join(n for n in nodes if n not in outcomes)
            raise FaultFailed(f"etcd restore: no outcome from {missing} in time")
        time.sleep(1)


@undo_op("etcd-restore")
def _restore_op(hands: Hands, args: dict[str, Any]) -> None:
    orders = hands.orders()
    snapshot = Path(args["snapshot"])
    try:
        restore(orders, args)
    except BaseException:
        # Kept: 'chaoskit recover' restores from it. Say where, and what it holds.
        logger.warning(
            "etcd snapshot %s is kept for 'chaoskit recover'; it holds every Secret of the "
            "cluster: delete it once the cluster is restored",
            snapshot,
        )
        raise
    members = [Member(**m) for m in args["members"]]
    remove_snapshots(orders, members, str(args["restore_id"]), snapshot)


def remove_snapshots(
    orders: Orders, members: list[Member], rid: str, host_snapshot: Path | None
) -> list[str]:
    """Removes every copy of the drill's snapshot (each node's, the host's) and the data
    set aside by the restore; returns, and warns about, the copies that could not be
    removed: they hold every Secret of the cluster."""
    left: list[str] = []
    for member in members:
        try:
            _once(
                orders,
                member.node,
                "etcd-drill-cleanup",
                {"rid": rid, "data_dir": member.data_dir},
                STAGE_TIMEOUT,
            )
        except Exception as e:  # noqa: BLE001 - say what is left, whatever stopped it
            logger.debug("cleaning up the drill on %s: %s", member.node, e)
            left.append(f"{member.node}:{snapshot_name(rid)}")
    if host_snapshot is not None:
        try:
            host_snapshot.unlink(missing_ok=True)
        except OSError:
            left.append(str(host_snapshot))
    if left:
        logger.warning(
            "etcd snapshot(s) left behind: %s; they hold every Secret of the cluster: delete "
            "them (on a node: /var/lib/chaoskit-agent/etcd-drill)",
            ", ".join(left),
        )
    return left


def _wait_api(api: client.ApiClient, timeout: float, *, since: float | None = None) -> float:
    """Seconds until the API serves (counted from the wall time ``since``, if given)."""
    from kubernetes import client  # noqa: PLC0415 - heavy: only when acting

    core = client.CoreV1Api(api)
    started = time.monotonic()
    if since is not None:
        # Before the start the API still serves: that is not it coming back.
        time.sleep(max(0.0, since - time.time()) + 1)
    while True:
        try:
            core.list_namespace(limit=1, _request_timeout=5)
            break
        except (client.ApiException, HTTPError, OSError) as e:
            if time.monotonic() - started > timeout:
                raise FaultFailed(f"the API did not serve within {timeout:.0f} s: {e}") from e
            time.sleep(1)
    if since is not None:
        return round(time.time() - since, 2)
    return round(time.monotonic() - started, 2)


@register
class EtcdRestoreDrill(Fault[DrillParams]):
    name = "etcd-restore-drill"
    action = "etcd_restore_drill"
    summary = "snapshot etcd, lose a namespace or etcd's data, restore every member, verify"
    params_type = DrillParams

    def check(self, env: FaultEnv) -> None:
        env.target.check_namespace(self.params.namespace)

    def select(self, env: FaultEnv, rng: random.Random) -> list[Victim]:
        members = control_planes(env, ())
        if not members:
            raise FaultFailed("etcd-restore-drill: no running control-plane node")
        from kubernetes import client  # noqa: PLC0415 - heavy: only when acting

        try:
            env.core().read_namespace(self.params.namespace, _request_timeout=30)
        except client.ApiException as e:
            raise FaultFailed(
                f"etcd-restore-drill: namespace {self.params.namespace!r}: {e.reason}"
            ) from e
        return [Victim(kind="cluster", name="etcd", namespace=self.params.namespace)]

    def inject(self, env: FaultEnv, victim: Victim, record: Recorder) -> dict[str, Any]:
        from chaoskit.probes import oracle  # noqa: PLC0415 - heavy: only when acting
        from chaoskit.probes.watch import Informers  # noqa: PLC0415 - heavy: only when acting

        planes = [c.name for c in control_planes(env, ())]
        source = self.params.snapshot_node or planes[0]
        if source not in planes:
            raise FaultFailed(f"snapshot_node {source!r} is not a control plane ({planes})")
        agents = env.agents()
        for node in planes:
            agents.ensure(node)  # installed and Ready everywhere before anything changes
        orders = agents.orders()
        members = [stage_member(orders, n) for n in planes]
        informers = Informers(env.target.api(retries=False))
        try:
            desired = oracle.record(informers, [self.params.namespace])
        finally:
            informers.stop()
        details: dict[str, Any] = {"victim": victim.label, "members": [m.name for m in members]}

        rid = uuid.uuid4().hex[:12]
        pending = _RestorePending()
        try:
            return self._drill(
                env,
                orders,
                members,
                source=source,
                rid=rid,
                desired=desired,
                details=details,
                record=record,
                pending=pending,
            )
        finally:
            if not pending.value:
                # A pending restore needs the snapshot (rollback, 'chaoskit recover'); its
                # undo removes it. Otherwise no copy of it may outlive the drill.
                remove_snapshots(
                    orders, members, rid, snapshot_path(env.settings, env.target.cluster, rid)
                )

    def _drill(
        self,
        env: FaultEnv,
        orders: Orders,
        members: list[Member],
        *,
        source: str,
        rid: str,
        desired: oracle.DesiredState,
        details: dict[str, Any],
        record: Recorder,
        pending: _RestorePending,
    ) -> dict[str, Any]:
        namespace = self.params.namespace
        planes = [m.node for m in members]
        started = time.monotonic()
        host_snapshot, expected, order, order_expires = _snapshot(env, orders, source, rid)
        details["snapshot_s"] = round(time.monotonic() - started, 2)
        details["snapshot_bytes"] = expected.size
        env.mark("etcd-snapshot", source, {"bytes": expected.size})
        started = time.monotonic()
        distribute(orders.custom.api_client, planes, host_snapshot, rid, expected)
        details["distribute_s"] = round(time.monotonic() - started, 2)

        undo_args = {
            "restore_id": rid,
            "snapshot": str(host_snapshot),
            "sha256": expected.sha256,
            "snapshot_order": order,
            "snapshot_order_expires": round(order_expires + 1, 3),
            "members": [m.to_dict() for m in members],
        }
        change = record(
            Undo(
                "etcd-restore",
                undo_args,
                f"restore etcd from {host_snapshot.name} on {', '.join(planes)}",
            )
        )
        pending.value = True
        marker = f"chaoskit-drill-{rid}"
        self._destroy(env, marker, details)

        env.mark("etcd-restore-started", "etcd", {})
        restored = restore(orders, undo_args)
        env.state.mark(change, "undone")
        pending.value = False
        # From the common start to the last member's data swapped (the API is down).
        details["restore_s"] = max(
            float(r.get("restored_after_s", 0)) + max(0.0, float(r.get("started_late_s", 0)))
            for r in restored["members"].values()
        )
        details["api_back_after_s"] = restored["api_back_after_s"]
        details["restored"] = restored["members"]
        env.mark("etcd-restored", "etcd", {})
        env.mark("api-serving", "api", {})

        from chaoskit.probes import oracle  # noqa: PLC0415 - heavy: only when acting
        from chaoskit.probes.watch import Informers  # noqa: PLC0415 - heavy: only when acting

        # A client without urllib3's retries: the oracle's loop retries by itself, quietly.
        quiet = env.target.api(retries=False)
        informers = Informers(quiet)
        try:
            verdict = oracle.wait_converged(informers, desired, self.params.verify_timeout)
        finally:
            informers.stop()
        details["converged_after_s"] = verdict.waited
        details["verdict"] = verdict.summary()
        if not verdict.ok:
            raise FaultFailed(
                f"after the restore, namespace {namespace!r} is not back: {verdict.summary()}"
            )
        if self.params.destroy == "etcd-data":
            _check_marker_gone(quiet, namespace, marker)
            details["written_after_snapshot_gone"] = True
        logger.info("etcd restore drill: %s", details)
        return details

    def _destroy(self, env: FaultEnv, marker: str, details: dict[str, Any]) -> None:
        namespace = self.params.namespace
        if self.params.destroy == "namespace":
            details["destroyed_s"] = _delete_namespace(
                env.core(), namespace, self.params.verify_timeout
            )
            env.mark("namespace-deleted", namespace, {})
        else:
            _write_marker(env.core(), namespace, marker)
            env.mark("written-after-snapshot", f"configmap/{namespace}/{marker}", {})


def snapshot_path(settings: Settings, cluster: str, rid: str) -> Path:
    """Where the host keeps drill ``rid``'s snapshot while its restore may be needed."""
    return settings.cache_dir / "state" / "snapshots" / f"{cluster}-{rid}.db"


def _snapshot(
    env: FaultEnv, orders: Orders, source: str, rid: str
) -> tuple[Path, Digest, str, float]:
    """Takes the snapshot on ``source`` and copies it to the host (checked); returns
    where, what, and when the snapshot's order expires."""
    from chaoskit.agent import files  # noqa: PLC0415 - heavy: only when acting

    expires = time.time() + SNAPSHOT_ORDER_TTL
    name = order_once(orders, source, "etcd-snapshot", {"rid": rid}, ttl=SNAPSHOT_ORDER_TTL)
    info = collect_once(orders, name, timeout=SNAPSHOT_TIMEOUT)
    expected = files.Digest(int(info["bytes"]), info["sha256"])
    host_snapshot = snapshot_path(env.settings, env.target.cluster, rid)
    try:
        files.fetch(orders.custom.api_client, source, snapshot_name(rid), host_snapshot, expected)
    except OperationFailed as e:
        raise FaultFailed(f"etcd snapshot from {source}: {e}") from e
    return host_snapshot, expected, name, expires


def _write_marker(core: client.CoreV1Api, namespace: str, name: str) -> None:
    from kubernetes import client  # noqa: PLC0415 - heavy: only when acting

    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels={"chaoskit/drill": "marker"}),
        data={"written": "after the snapshot; a restore must not keep it"},
    )
    try:
        core.create_namespaced_config_map(namespace, body, _request_timeout=30)
    except client.ApiException as e:
        raise FaultFailed(f"writing configmap {namespace}/{name}: {e.reason}") from e


def _check_marker_gone(api: client.ApiClient, namespace: str, name: str) -> None:
    from kubernetes import client  # noqa: PLC0415 - heavy: only when acting

    core = client.CoreV1Api(api)
    try:
        core.read_namespaced_config_map(name, namespace, _request_timeout=30)
    except client.ApiException as e:
        if e.status == 404:
            return
        raise FaultFailed(f"reading configmap {namespace}/{name}: {e.reason}") from e
    raise FaultFailed(
        f"configmap {namespace}/{name}, written after the snapshot, survived the restore: "
        "etcd was not rebuilt from the snapshot"
    )


def _delete_namespace(core: client.CoreV1Api, namespace: str, timeout: float) -> float:
    from kubernetes import client  # noqa: PLC0415 - heavy: only when acting

    started = time.monotonic()
    try:
        core.delete_namespace(namespace, _request_timeout=30)
    except client.ApiException as e:
        raise FaultFailed(f"deleting namespace {namespace!r}: {e.reason}") from e
    while True:
        try:
            core.read_namespace(namespace, _request_timeout=10)
        except client.ApiException as e:
            if e.status == 404:
                return round(time.monotonic() - started, 2)
            raise FaultFailed(f"reading namespace {namespace!r}: {e.reason}") from e
        if time.monotonic() - started > timeout:
            raise FaultFailed(f"namespace {namespace!r} was not deleted within {timeout:.0f} s")
        time.sleep(0.5)
