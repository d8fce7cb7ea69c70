"""The etcd backup drill: snapshot, destroy, restore on every member, verify.

1. Record the desired state of the namespace to destroy (the oracle).
2. Snapshot etcd with etcdctl inside one member's container (healthcheck-client certs),
   copy it to the host, and copy each member's own etcdutl binary out of its container.
3. Record the restore as this fault's undo, *then* destroy: with ``destroy=namespace``
   delete the namespace; with ``destroy=etcd-data`` write a marker ConfigMap after the
   snapshot and let the restore set every member's data directory aside (as if lost), so
   the cluster is rebuilt from the snapshot alone while the workloads keep running (their
   volumes are untouched, unlike a deleted namespace whose volumes are reclaimed).
4. Restore every member from the snapshot: hold the kube-apiserver and etcd static pods
   down, ``etcdutl snapshot restore`` per member with its own name and peer URL (and
   ``--bump-revision``/``--mark-compacted`` so that watchers do not see time run
   backwards), swap the data directories, put etcd's manifests back, then the API
   servers'.
5. Wait until the API serves again, the namespace is back and its desired state holds
   (and, for ``etcd-data``, the marker written after the snapshot is gone).

If the drill is interrupted anywhere after the snapshot, its recorded undo is the restore:
rollback or ``chaoskit recover`` brings the cluster back to the snapshot. The restore is
idempotent, so running it again after a partial run is safe.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from urllib3.exceptions import HTTPError

from chaoskit.faults.agentnodes import Hands
from chaoskit.faults.base import Fault, FaultEnv, Params, Recorder, Victim, help_
from chaoskit.faults.components import SYSTEM_NAMESPACE, control_planes
from chaoskit.faults.errors import FaultFailed
from chaoskit.faults.nodes import MANIFESTS, NodeOps
from chaoskit.faults.registry import register
from chaoskit.faults.state import Undo
from chaoskit.faults.undo import undo_op
from chaoskit.settings import Settings

if TYPE_CHECKING:
    from kubernetes import client

    from chaoskit.probes import oracle

logger = logging.getLogger(__name__)

PKI = "/etc/kubernetes/pki/etcd"
ETCDCTL_TLS = (
    "--endpoints=https://127.0.0.1:2379",
    f"--cacert={PKI}/ca.crt",
    f"--cert={PKI}/healthcheck-client.crt",
    f"--key={PKI}/healthcheck-client.key",
)


def etcd_container_id(nodes: NodeOps, node: str) -> str:
    proc = nodes.exec(
        node,
        [
            "crictl",
            "ps",
            "-q",
            "--state",
            "running",
            "--label",
            "io.kubernetes.pod.namespace=kube-system",
            "--label",
            "io.kubernetes.container.name=etcd",
        ],
        what=f"finding etcd on {node}",
    )
    ids = proc.stdout.split()
    if not ids:
        raise FaultFailed(f"no running etcd container on {node}")
    return ids[0]


def etcdctl(nodes: NodeOps, node: str, *args: str, timeout: float = 30) -> str:
    """Runs etcdctl inside the etcd container of ``node`` with the healthcheck client certs."""
    cid = etcd_container_id(nodes, node)
    proc = nodes.exec(
        node,
        ["crictl", "exec", cid, "etcdctl", *ETCDCTL_TLS, *args],
        what=f"etcdctl {' '.join(args)} on {node}",
        timeout=timeout,
    )
    return proc.stdout


NODE_WORKDIR = "/var/lib/chaoskit"
BUMP_REVISION = "1000000000"
STOP_TIMEOUT = 120.0
ETCD_RUNNING_TIMEOUT = 120.0
"""Seconds a member's etcd container may take to be running again before the snapshot."""


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


@dataclass
class _RestorePending:
    """Whether the drill's recorded restore is still to be done (by rollback or recover)."""

    value: bool = False


def _flags(command: list[str]) -> dict[str, str]:
    flags = {}
    for arg in command:
        if arg.startswith("--") and "=" in arg:
            key, _, value = arg[2:].partition("=")
            flags[key] = value
    return flags


def read_member(nodes: NodeOps, node: str) -> Member:
    """A member's name, peer URL and data dir, from its static pod manifest."""
    proc = nodes.exec(node, ["cat", f"{MANIFESTS}/etcd.yaml"], what=f"reading etcd.yaml on {node}")
    try:
        manifest = yaml.safe_load(proc.stdout)
        container = manifest["spec"]["containers"][0]
        flags = _flags(list(container.get("command", [])) + list(container.get("args", [])))
        return Member(
            node=node,
            name=flags["name"],
            peer_url=flags["initial-advertise-peer-urls"],
            data_dir=flags.get("data-dir", "/var/lib/etcd"),
        )
    except (yaml.YAMLError, KeyError, IndexError, TypeError) as e:
        raise FaultFailed(f"cannot read etcd's member settings on {node}: {e}") from e


def _wait_down(nodes: NodeOps, members: list[dict[str, str]]) -> None:
    deadline = time.monotonic() + STOP_TIMEOUT
    for member in members:
        for container in ("etcd", "kube-apiserver"):
            while nodes.running_container_count(member["node"], SYSTEM_NAMESPACE, container):
                if time.monotonic() > deadline:
                    raise FaultFailed(f"{container} on {member['node']} did not stop")
                time.sleep(0.5)


_RESTORE = r"""
set -eu
work="$1"; rid="$2"; name="$3"; cluster="$4"; peer="$5"; data="$6"; bump="$7"
new="$data.restore-$rid"; old="$data.pre-$rid"
rm -rf "$new"
"$work/etcdutl" snapshot restore "$work/snapshot-$rid.db" --name "$name" \
  --initial-cluster "$cluster" --initial-advertise-peer-urls "$peer" --data-dir "$new" \
  --bump-revision "$bump" --mark-compacted
rm -rf "$old"
if [ -d "$data" ]; then mv "$data" "$old"; fi
mv "$new" "$data"
"""


def restore(nodes: NodeOps, args: dict[str, Any]) -> None:
    """Restores every member from the snapshot in ``args`` (idempotent)."""
    members: list[dict[str, str]] = args["members"]
    rid = str(args["restore_id"])
    snapshot = Path(args["snapshot"])
    if not snapshot.is_file():
        raise FaultFailed(f"etcd snapshot {snapshot} is gone: cannot restore")
    initial_cluster = ",".join(f"{m['name']}={m['peer_url']}" for m in members)
    for member in members:
        nodes.hold_manifest(member["node"], "kube-apiserver.yaml")
        nodes.hold_manifest(member["node"], "etcd.yaml")
    _wait_down(nodes, members)
    for member in members:
        node = member["node"]
        nodes.exec(node, ["mkdir", "-p", NODE_WORKDIR], what=f"mkdir on {node}")
        nodes.run(
            ["docker", "cp", str(snapshot), f"{node}:{NODE_WORKDIR}/snapshot-{rid}.db"],
            what=f"copying the snapshot to {node}",
        )
        nodes.sh(
            node,
            _RESTORE,
            NODE_WORKDIR,
            rid,
            member["name"],
            initial_cluster,
            member["peer_url"],
            member["data_dir"],
            BUMP_REVISION,
            what=f"etcdutl snapshot restore on {node}",
            timeout=120,
        )
    for member in members:
        nodes.release_manifest(member["node"], "etcd.yaml")
    for member in members:
        nodes.release_manifest(member["node"], "kube-apiserver.yaml")


@undo_op("etcd-restore")
def _restore_op(hands: Hands, args: dict[str, Any]) -> None:
    # The drill works on the control planes' files through kind's node containers.
    nodes = hands.nodes
    snapshot = Path(args["snapshot"])
    try:
        restore(nodes, args)
    except BaseException:
        # Kept: 'chaoskit recover' restores from it. Say where, and what it holds.
        logger.warning(
            "etcd snapshot %s is kept for 'chaoskit recover'; it holds every Secret of the "
            "cluster: delete it once the cluster is restored",
            snapshot,
        )
        raise
    remove_snapshots(
        nodes, [str(m["node"]) for m in args["members"]], str(args["restore_id"]), snapshot
    )


def remove_snapshots(
    nodes: NodeOps, node_names: list[str], rid: str, host_snapshot: Path | None
) -> list[str]:
    """Removes every copy of the drill's snapshot (each node's, the host's); returns, and
    warns about, those that could not be removed: they hold every Secret of the cluster."""
    left: list[str] = []
    for node in node_names:
        proc = nodes.sh(
            node,
            'rm -f "$1/snapshot-$2.db" "$1"/chaoskit-snapshot-"$2".db',
            NODE_WORKDIR,
            rid,
            what=f"removing the etcd snapshot on {node}",
            check=False,
        )
        if proc.returncode != 0 and "No such container" not in proc.stderr:
            left.append(f"{node}:{NODE_WORKDIR}/snapshot-{rid}.db")
    if host_snapshot is not None:
        try:
            host_snapshot.unlink(missing_ok=True)
        except OSError:
            left.append(str(host_snapshot))
    if left:
        logger.warning(
            "etcd snapshot(s) left behind: %s; they hold every Secret of the cluster: delete them",
            ", ".join(left),
        )
    return left


def _cleanup(nodes: NodeOps, members: list[Member], rid: str) -> None:
    for member in members:
        nodes.sh(
            member.node,
            'rm -rf "$1.pre-$2" "$3/snapshot-$2.db"',
            member.data_dir,
            rid,
            NODE_WORKDIR,
            what=f"removing the pre-restore data on {member.node}",
            check=False,
        )


def _wait_api(api: client.ApiClient, timeout: float) -> float:
    from kubernetes import client  # noqa: PLC0415 - heavy: only when acting

    core = client.CoreV1Api(api)
    started = time.monotonic()
    while True:
        try:
            core.list_namespace(limit=1, _request_timeout=5)
            return round(time.monotonic() - started, 2)
        except (client.ApiException, HTTPError, OSError) as e:
            if time.monotonic() - started > timeout:
                raise FaultFailed(f"the API did not serve within {timeout:.0f} s: {e}") from e
            time.sleep(1)


@register
class EtcdRestoreDrill(Fault[DrillParams]):
    name = "etcd-restore-drill"
    action = "etcd_restore_drill"
    summary = "snapshot etcd, lose a namespace or etcd's data, restore every member, verify"
    params_type = DrillParams
    # Until the node agent can reach the control planes' files, the drill works through
    # docker exec into kind node containers.
    kind_only = "works through docker exec into kind node containers"

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

        namespace = self.params.namespace
        planes = [c.name for c in control_planes(env, ())]
        members = [read_member(env.nodes, n) for n in planes]
        source = self.params.snapshot_node or planes[0]
        if source not in planes:
            raise FaultFailed(f"snapshot_node {source!r} is not a control plane ({planes})")
        informers = Informers(env.target.api(retries=False))
        try:
            desired = oracle.record(informers, [namespace])
        finally:
            informers.stop()
        details: dict[str, Any] = {"victim": victim.label, "members": [m.name for m in members]}

        rid = uuid.uuid4().hex[:12]
        pending = _RestorePending()
        try:
            return self._drill(
                env,
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
                    env.nodes, planes, rid, snapshot_path(env.settings, env.target.cluster, rid)
                )

    def _drill(
        self,
        env: FaultEnv,
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
        host_snapshot = _snapshot(env, members, source, rid)
        details["snapshot_s"] = round(time.monotonic() - started, 2)
        details["snapshot_bytes"] = host_snapshot.stat().st_size
        env.mark("etcd-snapshot", source, {"bytes": details["snapshot_bytes"]})

        undo_args = {
            "restore_id": rid,
            "snapshot": str(host_snapshot),
            "members": [
                {"node": m.node, "name": m.name, "peer_url": m.peer_url, "data_dir": m.data_dir}
                for m in members
            ],
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

        started = time.monotonic()
        env.mark("etcd-restore-started", "etcd", {})
        restore(env.nodes, undo_args)
        env.state.mark(change, "undone")
        pending.value = False
        details["restore_s"] = round(time.monotonic() - started, 2)
        env.mark("etcd-restored", "etcd", {})

        from chaoskit.probes import oracle  # noqa: PLC0415 - heavy: only when acting
        from chaoskit.probes.watch import Informers  # noqa: PLC0415 - heavy: only when acting

        # A client without urllib3's retries: this loop retries by itself, quietly.
        quiet = env.target.api(retries=False)
        details["api_back_after_s"] = _wait_api(quiet, self.params.verify_timeout)
        env.mark("api-serving", "api", {})
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
        _cleanup(env.nodes, members, rid)
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


def _snapshot(env: FaultEnv, members: list[Member], source: str, rid: str) -> Path:
    """Takes the snapshot on ``source``, keeps it on the host; stages etcdutl on every member."""
    nodes = env.nodes
    host_snapshot = snapshot_path(env.settings, env.target.cluster, rid)
    host_snapshot.parent.mkdir(parents=True, exist_ok=True)
    source_member = next(m for m in members if m.node == source)
    in_node = f"{source_member.data_dir}/chaoskit-snapshot-{rid}.db"
    try:
        etcdctl(nodes, source, "snapshot", "save", in_node, timeout=120)
        nodes.run(
            ["docker", "cp", f"{source}:{in_node}", str(host_snapshot)],
            what="copying the snapshot out",
        )
    finally:
        # Inside etcd's data dir it would outlive the drill (and every Secret with it).
        removed = nodes.exec(
            source,
            ["rm", "-f", in_node],
            what="removing the snapshot from the node",
            check=False,
        )
        if removed.returncode != 0:
            logger.warning(
                "etcd snapshot %s:%s left behind; it holds every Secret of the cluster: delete it",
                source,
                in_node,
            )
    for member in members:
        pid = _running_etcd_pid(nodes, member.node, ETCD_RUNNING_TIMEOUT)
        # The member's own image has the matching etcdutl: take it while etcd still runs.
        nodes.sh(
            member.node,
            f'mkdir -p {NODE_WORKDIR} && cp "/proc/$1/root/usr/local/bin/etcdutl" '
            f"{NODE_WORKDIR}/etcdutl",
            str(pid),
            what=f"copying etcdutl on {member.node}",
        )
    return host_snapshot


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


def _running_etcd_pid(nodes: NodeOps, node: str, timeout: float) -> int:
    """The pid of the member's running etcd; waits for it (a member that a fault just
    brought back may be between two containers while its mirror pod still says Ready)."""
    deadline = time.monotonic() + timeout
    while True:
        pid = nodes.container_pid(node, SYSTEM_NAMESPACE, "etcd")
        if pid is not None:
            return pid
        if time.monotonic() > deadline:
            raise FaultFailed(
                f"no running etcd on {node} within {timeout:.0f} s to take etcdutl from"
            )
        time.sleep(2)


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
