"""What the agent does to its node, and each fault as one pair of functions.

The agent's pod shares the node's PID namespace (hostPID): PID 1 is the node's init.
systemd units are driven by running the node's own ``systemctl`` inside PID 1's mount
namespace (``nsenter``); static pod manifests are moved within the node's
``/etc/kubernetes``, mounted into the pod; processes are signalled by pid.

A fault is ``apply(host, params) -> undo info`` and ``undo(host, params, info)``, both
idempotent (an agent that restarts applies again what it had applied). Adding a fault is
one more pair registered in FAULTS.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .files import FILES_DIR, digest

logger = logging.getLogger(__name__)

NSENTER = ("nsenter", "--target", "1", "--mount", "--uts", "--ipc", "--net", "--pid", "--")
COMMAND_TIMEOUT = 60.0


class FaultRefused(Exception):
    """The node cannot do this fault (no such unit, no such manifest): one line."""


class HostFailed(Exception):
    """A command on the node failed."""


@dataclass(frozen=True)
class Host:
    node: str
    kubernetes_dir: Path
    """The node's /etc/kubernetes as mounted into the pod."""
    proc_dir: Path = Path("/proc")
    files_dir: Path = FILES_DIR
    """The etcd drill's folder: the same path in the pod and on the node (see files.py)."""

    @property
    def manifests(self) -> Path:
        return self.kubernetes_dir / "manifests"

    @property
    def held(self) -> Path:
        # The same place chaoskit's docker-exec faults use, so `recover` finds either.
        return self.kubernetes_dir / "chaoskit-held"

    def run(
        self, *argv: str, check: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """A command in the node's namespaces (its own binaries, its own systemd)."""
        try:
            proc = subprocess.run(
                [*NSENTER, *argv], capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as e:
            command = " ".join(argv)
            raise HostFailed(f"{command} on {self.node}: no end after {timeout:.0f} s") from e
        logger.debug("%s -> %d %s", " ".join(argv), proc.returncode, proc.stderr.strip())
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            reason = detail[-1] if detail else f"exit {proc.returncode}"
            raise HostFailed(f"{' '.join(argv)} on {self.node}: {reason}")
        return proc

    def require_unit(self, unit: str) -> None:
        state = self.run("systemctl", "show", "--property=LoadState", "--value", unit, check=False)
        if state.stdout.strip() != "loaded":
            raise FaultRefused(f"node {self.node} has no systemd unit named {unit}")

    def pids_named(self, name: str) -> list[int]:
        """Pids whose command name (/proc/PID/comm) is ``name``."""
        found = []
        for entry in self.proc_dir.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue  # gone meanwhile
            if comm == name:
                found.append(int(entry.name))
        return sorted(found)


Info = dict[str, str]
ApplyFn = Callable[[Host, Mapping[str, str]], Info]
UndoFn = Callable[[Host, Mapping[str, str], Mapping[str, str]], None]


class Cluster(Protocol):
    """What a fault's watch may ask the API (the agent's own, read-only)."""

    def evicted_pods(self, node: str) -> dict[str, str]:
        """uid -> namespace/name of the pods on ``node`` that its kubelet evicted."""
        ...


WatchFn = Callable[[Host, Cluster, Mapping[str, str], Mapping[str, str]], Info | None]
ENDED = "ended"
"""Key of an order's info once its watch ended the fault's active part by itself (a node
memory hog after its evictions): only the undo is left, and a restarted agent does not
apply it again."""


@dataclass(frozen=True)
class NodeFault:
    name: str
    apply: ApplyFn
    undo: UndoFn
    one_shot: bool = False
    """Nothing to undo (a kill): the order is done once applied."""
    backstop: Callable[[Mapping[str, str]], list[str]] | None = None
    """The node command that undoes it, armed as a systemd timer on the node at the
    expiry: for faults that stop kubelet, during which nothing restarts a dead agent."""
    watch: WatchFn | None = None
    """Looked at on every tick while the order is applied, with what apply returned:
    returns the new info when something changed (``ENDED`` among it once the fault's
    active part ended by itself), else None."""


FAULTS: dict[str, NodeFault] = {}


def register(fault: NodeFault) -> NodeFault:
    FAULTS[fault.name] = fault
    return fault


def param(params: Mapping[str, str], key: str) -> str:
    value = params.get(key, "").strip()
    if not value:
        raise FaultRefused(f"parameter {key!r} is required")
    return value


# ---------------------------------------------------------------------------- systemd units

UNITS = ("kubelet", "containerd")
"""The units orders may stop or kill: nothing else of the node's is chaoskit's to touch."""
RESTART_TIMEOUT = 30.0
"""Seconds systemd gets to restart a killed unit."""


def _unit(host: Host, params: Mapping[str, str]) -> str:
    unit = params.get("unit", "kubelet")
    if unit not in UNITS:
        raise FaultRefused(f"unit {unit!r} is not one chaoskit acts on ({', '.join(UNITS)})")
    host.require_unit(unit)
    return unit


def main_pid(host: Host, unit: str) -> int:
    text = host.run("systemctl", "show", "--property=MainPID", "--value", unit).stdout.strip()
    return int(text) if text.isdigit() else 0


def _kill_main(host: Host, unit: str) -> None:
    # The main process only: the unit's cgroup may hold other processes (containerd's
    # holds every container's shim; killing those is another fault).
    host.run("systemctl", "kill", "--kill-whom=main", "--signal=SIGKILL", unit, check=False)


def _unit_stop(host: Host, params: Mapping[str, str]) -> Info:
    unit = _unit(host, params)
    # SIGKILL first (a crash, not a graceful stop), then stop the unit so that systemd
    # does not restart it.
    _kill_main(host, unit)
    host.run("systemctl", "stop", unit)
    return {"unit": unit}


def _unit_start(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
    host.run("systemctl", "start", info.get("unit") or params.get("unit", "kubelet"))


register(
    NodeFault(
        "unit-stop",
        _unit_stop,
        _unit_start,
        backstop=lambda info: ["systemctl", "start", info.get("unit", "kubelet")],
    )
)


def _unit_kill(host: Host, params: Mapping[str, str]) -> Info:
    """SIGKILLs the unit's main process and waits until systemd has started a new one."""
    unit = _unit(host, params)
    before = main_pid(host, unit)
    _kill_main(host, unit)
    started = time.monotonic()
    after = main_pid(host, unit)
    while after in (0, before):
        if time.monotonic() - started > RESTART_TIMEOUT:
            raise HostFailed(f"systemd did not restart {unit} on {host.node}")
        time.sleep(0.1)
        after = main_pid(host, unit)
    return {
        "unit": unit,
        "pid_before": str(before),
        "pid_after": str(after),
        "restarted_after_s": f"{time.monotonic() - started:.2f}",
    }


register(NodeFault("unit-kill", _unit_kill, lambda host, params, info: None, one_shot=True))


# ---------------------------------------------------------------------------- containers

SIGNALS = ("KILL", "TERM", "INT", "HUP", "QUIT", "STOP", "CONT", "USR1", "USR2")


def _signal(params: Mapping[str, str]) -> signal.Signals:
    name = params.get("signal", "KILL").upper().removeprefix("SIG")
    if name not in SIGNALS:
        raise FaultRefused(f"signal {name!r} is not one of {', '.join(SIGNALS)}")
    return signal.Signals[f"SIG{name}"]


def running_containers(
    host: Host, namespace: str, container: str, pod: str = ""
) -> list[tuple[str, int]]:
    """(id, host pid) of the node's running containers that match, asked of its crictl."""
    if host.run("sh", "-c", "command -v crictl", check=False).returncode != 0:
        raise FaultRefused(f"node {host.node} has no crictl (needed to find containers)")
    labels = [
        f"--label=io.kubernetes.pod.namespace={namespace}",
        f"--label=io.kubernetes.container.name={container}",
    ]
    if pod:
        labels.append(f"--label=io.kubernetes.pod.name={pod}")
    ids = host.run("crictl", "ps", "-q", "--state", "running", *labels).stdout.split()
    found = []
    for cid in ids:
        pid = host.run(
            "crictl",
            "inspect",
            "-o",
            "go-template",
            "--template",
            "{{.info.pid}}",
            cid,
            check=False,
        ).stdout.strip()
        if pid.isdigit():
            found.append((cid, int(pid)))
    return found


def _container_kill(host: Host, params: Mapping[str, str]) -> Info:
    """Signals the main process of every running container that matches."""
    sig = _signal(params)
    namespace, container = param(params, "namespace"), param(params, "container")
    pod = params.get("pod", "")
    found = running_containers(host, namespace, container, pod)
    if not found:
        where = f"{namespace}/{pod}" if pod else namespace
        raise FaultRefused(f"node {host.node} runs no container {container} in {where}")
    for _, pid in found:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue
    return {"killed": " ".join(f"{cid}:{pid}" for cid, pid in found), "signal": sig.name}


register(
    NodeFault("container-kill", _container_kill, lambda host, params, info: None, one_shot=True)
)


# ---------------------------------------------------------------------------- static pod hold

STOP_TIMEOUT = 90.0
"""Seconds kubelet gets to stop a static pod whose manifest was moved away."""
SYSTEM_NAMESPACE = "kube-system"


def _manifest_name(params: Mapping[str, str]) -> str:
    component = param(params, "component")
    if "/" in component or component.startswith("."):
        raise FaultRefused(f"component {component!r} is not a manifest name")
    return f"{component}.yaml"


def _hold(host: Host, params: Mapping[str, str]) -> Info:
    """Moves a static pod's manifest out of kubelet's folder and waits until kubelet has
    stopped its container (``wait: "false"`` does not wait)."""
    name = _manifest_name(params)
    source, target = host.manifests / name, host.held / name
    if not source.is_file():
        if target.is_file():
            return {"manifest": name}  # held already (an agent restart re-applies)
        raise FaultRefused(f"node {host.node} has no static pod manifest {source.name}")
    host.held.mkdir(exist_ok=True)
    source.replace(target)
    info = {"manifest": name}
    if params.get("wait", "true") == "true":
        component = param(params, "component")
        started = time.monotonic()
        while running_containers(host, SYSTEM_NAMESPACE, component):
            if time.monotonic() - started > STOP_TIMEOUT:
                raise HostFailed(
                    f"{component} on {host.node} still runs {STOP_TIMEOUT:.0f} s after its hold"
                )
            time.sleep(0.25)
        info["stopped_after_s"] = f"{time.monotonic() - started:.2f}"
    return info


def _release(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
    name = info.get("manifest") or _manifest_name(params)
    held = host.held / name
    if held.is_file():
        held.replace(host.manifests / name)


register(NodeFault("static-pod-hold", _hold, _release))


# ---------------------------------------------------------------------------- process kill


def _kill(host: Host, params: Mapping[str, str]) -> Info:
    """Signals every process with the given command name (or one pid) on the node."""
    sig = _signal(params)
    if params.get("pid"):
        pids = [int(param(params, "pid"))]
    else:
        pids = host.pids_named(param(params, "process"))
        if not pids:
            raise FaultRefused(f"node {host.node} runs no process named {params['process']}")
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue
    return {"pids": " ".join(map(str, pids)), "signal": sig.name}


register(NodeFault("process-kill", _kill, lambda host, params, info: None, one_shot=True))


# ---------------------------------------------------------------------------- etcd status

ETCD_METRICS = "http://127.0.0.1:2381/metrics"
"""kubeadm's default --listen-metrics-urls for a stacked etcd member."""
_READ_METRICS = (
    "import sys, urllib.request\n"
    "print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())"
)


def _etcd_status(host: Host, params: Mapping[str, str]) -> Info:
    """Whether this node's etcd member leads, from its metrics in the node's network
    namespace (a query: it changes nothing)."""
    url = params.get("metrics_url", ETCD_METRICS)
    if not url.startswith("http://127.0.0.1:"):
        raise FaultRefused(f"metrics_url {url!r} must be http://127.0.0.1:PORT/...")
    proc = subprocess.run(
        ["nsenter", "--target", "1", "--net", "--", sys.executable, "-c", _READ_METRICS, url],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()
        raise HostFailed(f"etcd metrics on {host.node}: {detail[-1] if detail else 'no answer'}")
    info = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key in ("etcd_server_is_leader", "etcd_server_has_leader"):
            info[key.removeprefix("etcd_server_")] = value.strip().split(".")[0]
    if "is_leader" not in info:
        raise HostFailed(f"etcd metrics on {host.node} carry no etcd_server_is_leader")
    return info


register(NodeFault("etcd-status", _etcd_status, lambda host, params, info: None, one_shot=True))


# ---------------------------------------------------------------------------- etcd drill
# The backup/restore drill on a kubeadm control plane with a stacked etcd member (its
# static pod manifest etcd.yaml). The harness moves the snapshot between nodes (files.py).

ETCD_MANIFEST = "etcd.yaml"
API_MANIFEST = "kube-apiserver.yaml"
ETCD_PKI = "/etc/kubernetes/pki/etcd"
ETCDCTL_TLS = (
    "--endpoints=https://127.0.0.1:2379",
    f"--cacert={ETCD_PKI}/ca.crt",
    f"--cert={ETCD_PKI}/healthcheck-client.crt",
    f"--key={ETCD_PKI}/healthcheck-client.key",
)
ETCDUTL_IN_IMAGE = "/usr/local/bin/etcdutl"
"""Where etcd's own image keeps etcdutl (the member's version, taken while it runs)."""
ETCDUTL = "etcdutl"
BUMP_REVISION = "1000000000"
"""The jump without ``min_revision`` (the harness passes that: the API's current revision
plus a margin, so that a second restore from the same snapshot still moves forward)."""
ETCD_RUNNING_TIMEOUT = 120.0
"""Seconds a member's etcd may take to be running (a fault may just have brought it back)."""
SNAPSHOT_TIMEOUT = 180.0
RESTORE_TIMEOUT = 300.0
_RID = re.compile(r"[0-9a-f]{6,32}")
_FLAG = re.compile(r"""^\s*-\s*["']?--([a-z0-9-]+)=(.*?)["']?\s*$""")


def snapshot_name(rid: str) -> str:
    return f"snapshot-{rid}.db"


def _rid(params: Mapping[str, str]) -> str:
    rid = param(params, "rid")
    if not _RID.fullmatch(rid):
        raise FaultRefused(f"rid {rid!r} is not 6 to 32 lowercase hex digits")
    return rid


def _data_dir(value: str) -> str:
    if not value.startswith("/") or os.path.normpath(value) != value or value == "/":
        raise FaultRefused(f"data_dir {value!r} is not a plain absolute path")
    return value


def member_flags(manifest: str) -> dict[str, str]:
    """``--key=value`` items of a static pod manifest's lists (kubeadm writes one per line).
    Line by line: the agent's image has no YAML library, and kubeadm's layout is fixed."""
    flags = {}
    for line in manifest.splitlines():
        found = _FLAG.match(line)
        if found:
            flags[found[1]] = found[2]
    return flags


def etcd_member(host: Host) -> Info:
    """The member's name, peer URL and data dir, from its etcd.yaml (in kubelet's folder,
    or set aside by a hold or an interrupted restore)."""
    for folder in (host.manifests, host.held):
        path = folder / ETCD_MANIFEST
        if path.is_file():
            flags = member_flags(path.read_text())
            break
    else:
        raise FaultRefused(
            f"node {host.node} has no {ETCD_MANIFEST} static pod manifest "
            "(the drill needs kubeadm's stacked etcd)"
        )
    missing = [k for k in ("name", "initial-advertise-peer-urls") if k not in flags]
    if missing:
        raise FaultRefused(f"{ETCD_MANIFEST} on {host.node} sets no --{', --'.join(missing)}")
    return {
        "name": flags["name"],
        "peer_url": flags["initial-advertise-peer-urls"],
        "data_dir": _data_dir(flags.get("data-dir", "/var/lib/etcd")),
    }


def _running_etcd(host: Host) -> tuple[str, int]:
    """(container id, host pid) of the member's running etcd; waits for it."""
    started = time.monotonic()
    while not (found := running_containers(host, SYSTEM_NAMESPACE, "etcd")):
        if time.monotonic() - started > ETCD_RUNNING_TIMEOUT:
            raise HostFailed(f"no running etcd on {host.node} within {ETCD_RUNNING_TIMEOUT:.0f} s")
        time.sleep(1)
    return found[0]


def _etcd_stage(host: Host, params: Mapping[str, str]) -> Info:
    """The member's settings; copies the member's own etcdutl out of its running image."""
    member = etcd_member(host)
    _, pid = _running_etcd(host)
    host.files_dir.mkdir(parents=True, exist_ok=True)
    target = host.files_dir / ETCDUTL
    part = target.with_name(ETCDUTL + ".part")
    copied = host.run("cp", f"/proc/{pid}/root{ETCDUTL_IN_IMAGE}", str(part), check=False)
    if copied.returncode != 0:
        raise FaultRefused(f"etcd's image on node {host.node} has no {ETCDUTL_IN_IMAGE}")
    part.replace(target)
    version = host.run(str(target), "version", check=False).stdout.strip().splitlines()
    return {**member, "etcdutl": version[0] if version else "?"}


register(NodeFault("etcd-stage", _etcd_stage, lambda host, params, info: None, one_shot=True))


def _etcd_snapshot(host: Host, params: Mapping[str, str]) -> Info:
    """``etcdctl snapshot save`` inside the running member (its healthcheck client's
    certificates), moved to the drill's folder; again for the same rid: the same file."""
    rid = _rid(params)
    member = etcd_member(host)
    target = host.files_dir / snapshot_name(rid)
    if not target.is_file():
        cid, _ = _running_etcd(host)
        # Written where the container and the node see the same files: etcd's data dir.
        in_data = f"{member['data_dir']}/chaoskit-snapshot-{rid}.db"
        part = target.with_name(target.name + ".part")
        host.files_dir.mkdir(parents=True, exist_ok=True)
        try:
            host.run(
                "crictl",
                "exec",
                cid,
                "etcdctl",
                *ETCDCTL_TLS,
                "snapshot",
                "save",
                in_data,
                timeout=SNAPSHOT_TIMEOUT,
            )
            host.run("mv", in_data, str(part))
            part.replace(target)
        finally:
            # It holds every Secret of the cluster: no copy stays behind in etcd's data.
            host.run("rm", "-f", in_data, str(part), check=False)
    found = digest(target)
    if found is None:
        raise HostFailed(f"the snapshot {target} on {host.node} is gone")
    return {**member, "snapshot": target.name, "bytes": str(found[0]), "sha256": found[1]}


register(NodeFault("etcd-snapshot", _etcd_snapshot, lambda host, params, info: None, one_shot=True))


_RESTORE = r"""
set -eu
etcdutl="$1"; snapshot="$2"; rid="$3"; name="$4"; cluster="$5"; peer="$6"; data="$7"; bump="$8"
new="$data.restore-$rid"; old="$data.pre-$rid"
rm -rf "$new"
# In a scope of its own: out of the agent pod's memory limit.
systemd-run --scope --quiet --collect -- "$etcdutl" snapshot restore "$snapshot" \
  --name "$name" --initial-cluster "$cluster" --initial-advertise-peer-urls "$peer" \
  --initial-cluster-token "chaoskit-$rid" --data-dir "$new" \
  --bump-revision "$bump" --mark-compacted
# Again for the same rid: the data from before the first restore stays the one kept.
if [ -d "$old" ]; then rm -rf "$data"; elif [ -d "$data" ]; then mv "$data" "$old"; fi
mv "$new" "$data"
"""


def _bump(host: Host, etcdutl: Path, snapshot: Path, floor: int) -> str:
    """How far the restored revision jumps so that it starts at ``floor``: past every
    revision a client may have seen, so that every watcher re-lists (a fixed jump lands a
    second restore from the same snapshot below what the first one served; a jump by the
    current revision would double it at every restore)."""
    status = host.run(str(etcdutl), "snapshot", "status", str(snapshot), "--write-out=json")
    try:
        revision = int(json.loads(status.stdout)["revision"])
    except (ValueError, KeyError, TypeError) as e:
        raise HostFailed(f"etcdutl snapshot status on {host.node}: {e}") from e
    return str(max(1, floor - revision))


def _move_out(host: Host, manifest: str) -> None:
    if (host.manifests / manifest).is_file():
        host.held.mkdir(exist_ok=True)
        (host.manifests / manifest).replace(host.held / manifest)


def _move_back(host: Host, manifest: str) -> None:
    if (host.held / manifest).is_file():
        (host.held / manifest).replace(host.manifests / manifest)


def _wait_stopped(host: Host, containers: tuple[str, ...]) -> None:
    started = time.monotonic()
    for container in containers:
        while running_containers(host, SYSTEM_NAMESPACE, container):
            if time.monotonic() - started > STOP_TIMEOUT:
                raise HostFailed(f"{container} on {host.node} still runs {STOP_TIMEOUT:.0f} s on")
            time.sleep(0.25)


def result_name(rid: str) -> str:
    return f"restore-{rid}.json"


def _write_result(host: Host, rid: str, result: Mapping[str, str]) -> None:
    host.files_dir.mkdir(parents=True, exist_ok=True)
    tmp = host.files_dir / (result_name(rid) + ".part")
    tmp.write_text(json.dumps(dict(result)))
    tmp.replace(host.files_dir / result_name(rid))


def _etcd_restore(host: Host, params: Mapping[str, str]) -> Info:
    """Restores the member and leaves the outcome in ``restore-<rid>.json`` for
    ``etcd-restore-status``: the order itself does not outlive the restore (it was
    created after the snapshot, so the restored etcd never held it)."""
    rid = _rid(params)
    _write_result(host, rid, {"state": "running"})
    try:
        info = _restore_member(host, params)
    except (FaultRefused, HostFailed, OSError) as e:
        _write_result(host, rid, {"state": "failed", "message": str(e)})
        raise
    _write_result(host, rid, {"state": "done", **info})
    return info


def _restore_member(host: Host, params: Mapping[str, str]) -> Info:
    """The whole restore of one member, on its own: the API is gone while it runs.

    At ``not_before`` (the same wall time on every member, so that they stop together):
    kube-apiserver's and etcd's manifests out, both stopped, ``etcdutl snapshot restore``
    beside the data dir, swapped with it (the old one kept as ``<data>.pre-<rid>``), and
    the manifests back, etcd's first: always, also when something failed. The restored
    members carry a cluster token of this drill's own, so a member that is still running
    its old data cannot pull a restored one back into the old cluster.
    """
    rid = _rid(params)
    wanted = {
        "name": param(params, "name"),
        "peer_url": param(params, "peer_url"),
        "data_dir": _data_dir(param(params, "data_dir")),
    }
    initial_cluster = param(params, "initial_cluster")
    floor = params.get("min_revision", "")
    if floor and not floor.isdigit():
        raise FaultRefused(f"min_revision {floor!r} is not a number")
    try:
        not_before = float(param(params, "not_before"))
    except ValueError as e:
        raise FaultRefused(f"not_before {params['not_before']!r} is not a time") from e
    member = etcd_member(host)
    if member != wanted:
        raise FaultRefused(f"the etcd member on {host.node} is {member}, not {wanted}")
    etcdutl, snapshot = host.files_dir / ETCDUTL, host.files_dir / snapshot_name(rid)
    for path in (etcdutl, snapshot):
        if not path.is_file():
            raise FaultRefused(f"node {host.node} has no {path} (staged by the drill)")
    found = digest(snapshot)
    if params.get("sha256") and (found is None or found[1] != params["sha256"]):
        raise FaultRefused(f"the snapshot on {host.node} is not the drill's (SHA-256 differs)")
    bump = _bump(host, etcdutl, snapshot, int(floor)) if floor else BUMP_REVISION
    time.sleep(max(0.0, not_before - time.time()))
    info = {"member": member["name"], "started_late_s": f"{time.time() - not_before:.2f}"}
    started = time.monotonic()
    try:
        _move_out(host, API_MANIFEST)
        _move_out(host, ETCD_MANIFEST)
        _wait_stopped(host, ("kube-apiserver", "etcd"))
        info["stopped_after_s"] = f"{time.monotonic() - started:.2f}"
        host.run(
            "sh",
            "-c",
            _RESTORE,
            "sh",
            str(etcdutl),
            str(snapshot),
            rid,
            member["name"],
            initial_cluster,
            member["peer_url"],
            member["data_dir"],
            bump,
            timeout=RESTORE_TIMEOUT,
        )
        info["restored_after_s"] = f"{time.monotonic() - started:.2f}"
    finally:
        _put_back(host, params, {})
    return info


def _put_back(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
    # etcd first: an API server without its etcd only restarts in a loop.
    _move_back(host, ETCD_MANIFEST)
    _move_back(host, API_MANIFEST)


# One-shot, and its undo puts the manifests back: what a failed apply or an agent that
# restarts after the order's expiry does.
register(NodeFault("etcd-restore", _etcd_restore, _put_back, one_shot=True))


def _etcd_restore_status(host: Host, params: Mapping[str, str]) -> Info:
    """What ``etcd-restore`` left: state running, done or failed; "none" if it never ran."""
    path = host.files_dir / result_name(_rid(params))
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        return {"state": "none"}
    except ValueError as e:
        raise HostFailed(f"{path} on {host.node} is damaged: {e}") from e
    return {str(k): str(v) for k, v in dict(found).items()}


register(
    NodeFault(
        "etcd-restore-status", _etcd_restore_status, lambda host, params, info: None, one_shot=True
    )
)


def _etcd_drill_cleanup(host: Host, params: Mapping[str, str]) -> Info:
    """Removes the drill's files: the data from before the restore, the snapshot (it holds
    every Secret of the cluster) and etcdutl."""
    rid = _rid(params)
    data = _data_dir(param(params, "data_dir"))
    host.run("rm", "-rf", f"{data}.pre-{rid}", f"{data}.restore-{rid}")
    host.run("rm", "-f", f"{data}/chaoskit-snapshot-{rid}.db")
    names = (
        snapshot_name(rid),
        snapshot_name(rid) + ".part",
        ETCDUTL,
        ETCDUTL + ".part",
        result_name(rid),
    )
    for name in names:
        (host.files_dir / name).unlink(missing_ok=True)
    left = [name for name in names if (host.files_dir / name).exists()]
    if left:
        raise HostFailed(f"could not remove {', '.join(left)} on {host.node}")
    return {"removed": f"{data}.pre-{rid} {host.files_dir}/{snapshot_name(rid)}"}


register(
    NodeFault(
        "etcd-drill-cleanup", _etcd_drill_cleanup, lambda host, params, info: None, one_shot=True
    )
)


# ---------------------------------------------------------------------------- backstop

BACKSTOP_GRACE = 5.0
"""Seconds after the expiry at which the node's own timer undoes, should the agent not."""


def arm_backstop(host: Host, unit: str, command: list[str], seconds: float) -> None:
    """A transient systemd timer on the node that runs ``command`` in ``seconds``."""
    host.run(
        "systemd-run",
        f"--unit={unit}",
        f"--on-active={max(1, int(seconds + BACKSTOP_GRACE))}s",
        "--timer-property=AccuracySec=1s",
        *command,
    )


def disarm_backstop(host: Host, unit: str) -> None:
    host.run("systemctl", "stop", f"{unit}.timer", check=False)
