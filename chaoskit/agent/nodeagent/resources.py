"""Resource faults inside one pod: a CPU hog and a memory hog in its cgroup, and a disk
fill of its own filesystem; and on a node: a CPU hog, and memory pressure (a memory hog
with the kubelet's eviction threshold set just under what the node has left).

The hog is a small program of the agent's own Python, started by the agent and moved
into a cgroup of its own under the victim pod's cgroup (``chaoskit-<hash of the order>``),
before it does anything: so the pod's own CPU quota and memory limit apply to it as to the
pod's processes, and the kernel charges its memory to the pod (an OOM kill inside the pod
is the pod's). The node's cgroup tree is reached in PID 1's mount and cgroup namespaces,
the same on cgroup v1 (one tree per controller) and v2 (one tree).

The hog ends by itself: once a second it reads the agent's local order file and exits
when its order is no longer Applied there or its expiry has passed. The agent keeps that
file up to date from the API (renewals), so a hog outlives neither a release nor a dead
harness, and not a dead agent either (the file then stops moving). The undo kills every
process in the hog's cgroup and removes the cgroup; after an agent restart that is found
from the order's name alone.

The disk fill writes one file of zeros, named after the order, into a directory of one of
the pod's containers (``/tmp`` by default: its writable layer, or an emptyDir mounted
there), reached through ``/proc/PID/root`` of the container's main process. It never
leaves less than 1 GiB free on the filesystem it writes to; the harness sizes it from the
pod's own ephemeral-storage limit. The undo deletes the file; an evicted pod took it along.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from .host import (
    COMMAND_TIMEOUT,
    ENDED,
    Cluster,
    FaultRefused,
    Host,
    HostFailed,
    Info,
    NodeFault,
    param,
    register,
    running_containers,
)
from .network import order_name, pod_name, require_pid, sandbox_pid

logger = logging.getLogger(__name__)

CGROUP_ROOT = PurePosixPath("/sys/fs/cgroup")
NODE_CGROUP = ("nsenter", "--target", "1", "--mount", "--cgroup", "--")
"""Commands in the node's mount and cgroup namespaces: its cgroupfs, and /proc/PID/cgroup
paths relative to the root that cgroupfs shows."""
CONTROLLERS = {"cpu-hog": ("cpu", "cpuacct"), "memory-hog": ("memory",)}
"""The v1 controllers each hog joins: the limit's and the accounting's (a v2 tree has them
all)."""
MAX_WORKERS = 16
MAX_MEGABYTES = 65536
MOVED_TIMEOUT = 10.0
DEFAULT_STORE = "/var/lib/chaoskit-agent/orders.json"

# The hog: forks once so that the agent has no child to reap, prints the pid that works,
# waits until the agent has moved it into its cgroup (its leaf's name in /proc/self/cgroup),
# then burns CPU or holds memory until its order is gone or expired in the order file.
HOG = r"""
import datetime, json, os, sys, time
kind, amount, store, order, leaf = sys.argv[1:6]
amount = int(amount)
child = os.fork()
if child:
    print(child, flush=True)
    os._exit(0)
os.setsid()
for fd in (0, 1, 2):
    os.close(fd)
deadline = time.monotonic() + 10
while leaf not in open("/proc/self/cgroup").read():
    if time.monotonic() > deadline:
        os._exit(3)
    time.sleep(0.05)

def expiry():
    try:
        with open(store) as f:
            entries = json.load(f).get("orders", [])
    except (OSError, ValueError):
        return None
    for e in entries:
        if e.get("name") == order and e.get("phase") == "Applied":
            text = e["expiresAt"].replace("Z", "+00:00")
            return datetime.datetime.fromisoformat(text).timestamp()
    return 0.0

known = time.time() + 30
def live():
    global known
    found = expiry()
    if found is not None:
        known = found
    return time.time() < known

if kind == "cpu":
    for _ in range(amount - 1):
        if os.fork() == 0:
            break
    while live():
        end = time.monotonic() + 1
        while time.monotonic() < end:
            pass
else:
    held = bytearray(amount * 1024 * 1024)
    for i in range(0, len(held), 4096):
        held[i] = 1
    while live():
        time.sleep(1)
os._exit(0)
"""


def leaf(order: str) -> str:
    return f"chaoskit-{hashlib.sha256(order.encode()).hexdigest()[:12]}"


def node_run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*NODE_CGROUP, *argv], capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise HostFailed(f"{' '.join(argv)}: {detail[-1] if detail else proc.returncode}")
    return proc


def cgroup_lines(text: str) -> dict[str, tuple[str, str]]:
    """``/proc/PID/cgroup`` -> {controller: (its hierarchy's mount name, path)}: v1 lists
    one hierarchy per line (``cpu,cpuacct`` mounted together or ``cpu`` and ``cpuacct``
    apart); v2's single line is under ""."""
    found = {}
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            found[""] = ("", path)
        for controller in controllers.split(","):
            if controller and not controller.startswith("name="):
                found[controller] = (controllers, path)
    return found


def candidates(mount: PurePosixPath, path: str) -> list[PurePosixPath]:
    """Where ``path`` may be under ``mount``: as it is, then with leading parts dropped
    (a node in a container sees its own cgroup as the root of its mounts)."""
    parts = [p for p in PurePosixPath(path).parts if p != "/"]
    return [mount.joinpath(*parts[i:]) for i in range(len(parts) + 1)]


def pod_cgroups(pid: int, fault: str) -> list[PurePosixPath]:
    """The victim pod's cgroup directories (one per hierarchy the hog needs; v2: the one
    tree): the parent of its sandbox's, found where the sandbox's pid is listed."""
    lines = cgroup_lines(node_run(["cat", f"/proc/{pid}/cgroup"]).stdout)
    v2 = not any(controller for controller in lines)
    result: list[PurePosixPath] = []
    for controller in ("",) if v2 else CONTROLLERS[fault]:
        if controller not in lines:
            raise FaultRefused(f"the pod's sandbox (pid {pid}) has no {controller} cgroup")
        mount_name, path = lines[controller]
        mount = CGROUP_ROOT / mount_name if mount_name else CGROUP_ROOT
        for directory in candidates(mount, path):
            procs = node_run(["cat", str(directory / "cgroup.procs")], check=False)
            if procs.returncode == 0 and str(pid) in procs.stdout.split():
                if directory.parent not in result:
                    result.append(directory.parent)
                break
        else:
            raise FaultRefused(f"cannot find the cgroup {path!r} of pid {pid} on the node")
    return result


def amount(params: Mapping[str, str], key: str, most: int) -> int:
    text = param(params, key)
    if not text.isdigit() or not 0 < int(text) <= most:
        raise FaultRefused(f"{key} must be a whole number from 1 to {most}, not {text!r}")
    return int(text)


def start_hog(kind: str, size: int, order: str, store: str) -> int:
    """Starts the hog detached; returns its pid (it waits to be moved)."""
    proc = subprocess.run(
        [sys.executable, "-c", HOG, kind, str(size), store, order, leaf(order)],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    pid = proc.stdout.strip()
    if proc.returncode != 0 or not pid.isdigit():
        raise HostFailed(f"the hog did not start: {proc.stderr.strip()[-200:]}")
    return int(pid)


def hog_procs(directory: PurePosixPath) -> list[int]:
    proc = node_run(["cat", str(directory / "cgroup.procs")], check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def remove_hog(directories: list[PurePosixPath]) -> None:
    """Kills every process of the hog's cgroups, then removes them."""
    for _ in range(50):
        pids = sorted({p for d in directories for p in hog_procs(d)})
        if not pids:
            break
        node_run(["kill", "-KILL", *map(str, pids)], check=False)
        time.sleep(0.1)
    else:
        raise HostFailed(f"the hog in {directories[0]} did not die")
    for directory in directories:
        proc = node_run(["rmdir", str(directory)], check=False)
        if proc.returncode != 0 and "No such file" not in proc.stderr:
            raise HostFailed(f"rmdir {directory}: {proc.stderr.strip()}")


def start_hog_in(kind: str, size: int, order: str, cgroups: list[PurePosixPath]) -> str:
    """Starts a hog and moves it into ``cgroups`` (made here; killed and removed again if
    the move fails); its pid."""
    for directory in cgroups:
        node_run(["mkdir", "-p", str(directory)])
    hog = start_hog(kind, size, order, os.environ.get("AGENT_STATE", DEFAULT_STORE))
    try:
        for directory in cgroups:
            node_run(["sh", "-c", f"echo {hog} > {directory / 'cgroup.procs'}"])
    except HostFailed:
        node_run(["kill", "-KILL", str(hog)], check=False)
        remove_hog(cgroups)
        raise
    return str(hog)


def _hog_fault(fault: str, kind: str, key: str, most: int) -> NodeFault:
    def directories(pid: int, order: str) -> list[PurePosixPath]:
        return [d / leaf(order) for d in pod_cgroups(pid, fault)]

    def apply(host: Host, params: Mapping[str, str]) -> Info:
        order = order_name(params)
        size = amount(params, key, most)  # checked before anything changes
        pid = require_pid(host, params)
        mine = directories(pid, order)
        info = {"pod": pod_name(params), key: str(size), "cgroups": ",".join(map(str, mine))}
        if any(hog_procs(d) for d in mine):
            return info  # applied already (an agent restart re-applies)
        info["pid"] = start_hog_in(kind, size, order, mine)
        return info

    def undo(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
        order = order_name(params)
        pid = sandbox_pid(host, params)
        if pid is None:
            return  # the pod is gone, and its cgroups with the hog
        try:
            mine = directories(pid, order)
        except FaultRefused as e:
            # The apply stopped at the same question: it made no cgroup to remove.
            logger.info("undo of %s: %s; nothing was made", order, e)
            return
        remove_hog(mine)

    return NodeFault(fault, apply, undo)


register(_hog_fault("cpu-hog", "cpu", "workers", MAX_WORKERS))
register(_hog_fault("memory-hog", "memory", "megabytes", MAX_MEGABYTES))


# ---------------------------------------------------------------------------- disk fill

FILL_CHUNK = 1024 * 1024
DEFAULT_FILL_PATH = "/tmp"  # noqa: S108 - a directory inside the victim's container
DISK_RESERVE = 1024 * 1024 * 1024
"""Bytes a fill always leaves free on the filesystem it writes to: a pod's limit is the
fault's measure, never the node's (or the host's) disk."""


def fill_file(order: str) -> str:
    return f"chaoskit-fill-{hashlib.sha256(order.encode()).hexdigest()[:12]}"


def fill_path(params: Mapping[str, str]) -> str:
    return params.get("path", "").strip() or DEFAULT_FILL_PATH


def fill_dir(host: Host, params: Mapping[str, str]) -> Path | None:
    """``path`` inside the pod's container, as the agent reaches it through the
    container's main process (``/proc/PID/root``); None when no such container runs."""
    path = fill_path(params)
    if not path.startswith("/") or ".." in path.split("/"):
        raise FaultRefused(f"path {path!r} must be absolute, without '..'")
    namespace, container = param(params, "namespace"), param(params, "container")
    found = running_containers(host, namespace, container, param(params, "pod"))
    if not found:
        return None
    return Path(f"/proc/{found[0][1]}/root") / path.lstrip("/")


def _fill(host: Host, params: Mapping[str, str]) -> Info:
    order = order_name(params)
    size = amount(params, "megabytes", MAX_MEGABYTES)  # checked before anything changes
    directory = fill_dir(host, params)
    if directory is None:
        raise FaultRefused(f"node {host.node} runs no container {params['container']} of "
                           f"{params['namespace']}/{params['pod']}")  # fmt: skip
    try:
        stat = os.statvfs(directory)
    except OSError as e:
        raise FaultRefused(f"cannot reach {fill_path(params)} in the pod: {e}") from None
    target = directory / fill_file(order)
    have = target.stat().st_size if target.exists() else 0
    wanted = size * FILL_CHUNK
    free = stat.f_bavail * stat.f_frsize
    if wanted - have > free - DISK_RESERVE:
        raise FaultRefused(
            f"filling {size} MiB would leave less than 1 GiB free on the filesystem of "
            f"{params['namespace']}/{params['pod']} ({free // FILL_CHUNK} MiB free)"
        )
    chunk = b"\0" * FILL_CHUNK
    written = have
    try:
        with target.open("ab") as out:
            while written < wanted:
                out.write(chunk)
                written += FILL_CHUNK
            out.flush()
            os.fsync(out.fileno())
    except OSError as e:
        # The container's filesystem (an emptyDir with a sizeLimit) may end first: what is
        # written stays until the undo, as a full disk would.
        logger.info("disk fill of %s stopped at %d MiB: %s", target, written // FILL_CHUNK, e)
    return {
        "file": f"{fill_path(params)}/{target.name}",
        "megabytes": str(written // FILL_CHUNK),
    }


def _unfill(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
    directory = fill_dir(host, params)
    if directory is None:
        return  # the container is gone (an evicted pod), and its writable layer with it
    (directory / fill_file(order_name(params))).unlink(missing_ok=True)


register(NodeFault("disk-fill", _fill, _unfill))


# ---------------------------------------------------------------------------- node memory pressure

KUBELET_CONFIG = PurePosixPath("/var/lib/kubelet/config.yaml")
PRESSURE_PERIOD = "5s"
"""The kubelet's eviction pressure transition period while the fault holds (5 min by
default): the MemoryPressure condition follows the signal within seconds."""
MAX_THRESHOLD_MB = 1024 * 1024
KUBELET_HEALTHZ = "http://127.0.0.1:10248/healthz"
KUBELET_READY_TIMEOUT = 60.0
READMIT_SETTLE = 10.0
"""Seconds the restarted kubelet gets to re-admit the node's pods before the hog starts: a
hog that is already there makes it reject them at admission (MemoryPressure) instead of
evicting them by its ranking."""
MAX_EVICTIONS = 1000
EVICTED_BEFORE = "evicted_before"
HOST_RESERVE = 1024 * 1024 * 1024
"""Bytes of the machine's available memory a node hog always leaves."""


def pressure_config(text: str, threshold_mb: int) -> str:
    """The kubelet configuration ``text`` with ``memory.available<threshold_mb Mi`` among
    its hard eviction thresholds (the others kept) and a short pressure transition period;
    every other line as it was. Only the block form of ``evictionHard`` is edited."""
    out: list[str] = []
    lines = text.splitlines()
    seen_block = seen_period = False
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith("evictionPressureTransitionPeriod:"):
            out.append(f"evictionPressureTransitionPeriod: {PRESSURE_PERIOD}")
            seen_period = True
            continue
        if not line.startswith("evictionHard:"):
            out.append(line)
            continue
        inline = line.partition(":")[2].strip()
        if inline not in ("", "{}"):
            raise FaultRefused(f"cannot edit the kubelet's inline evictionHard: {inline!r}")
        block: list[str] = []
        while i < len(lines) and lines[i][:1] in (" ", "\t") and lines[i].strip():
            block.append(lines[i])
            i += 1
        indent = block[0][: len(block[0]) - len(block[0].lstrip())] if block else "  "
        kept = [b for b in block if not b.strip().startswith("memory.available:")]
        out += ["evictionHard:", *kept, f"{indent}memory.available: {threshold_mb}Mi"]
        seen_block = True
    if not seen_block:
        out += ["evictionHard:", f"  memory.available: {threshold_mb}Mi"]
    if not seen_period:
        out.append(f"evictionPressureTransitionPeriod: {PRESSURE_PERIOD}")
    return "\n".join(out) + "\n"


def node_file(host: Host, path: PurePosixPath) -> Path:
    """A file of the node's own filesystem, as the agent reaches it (its PID 1's root)."""
    return host.proc_dir / "1" / "root" / str(path).lstrip("/")


def config_backup(order: str) -> PurePosixPath:
    return KUBELET_CONFIG.with_name(f"{KUBELET_CONFIG.name}.{leaf(order)}")


def mem_available(host: Host) -> int:
    """MemAvailable of the machine, in bytes (a kind node sees the host's)."""
    for line in (host.proc_dir / "meminfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "MemAvailable":
            return int(value.split()[0]) * 1024
    raise HostFailed("no MemAvailable in /proc/meminfo")


def node_cgroups(order: str, fault: str) -> list[PurePosixPath]:
    """The hog's cgroups at the roots of the node's hierarchies (one per controller the
    hog needs on v1, found from PID 1's; the one tree on v2), outside every pod: the
    kubelet counts them in the node's usage, but has no pod of them to evict."""
    lines = cgroup_lines(node_run(["cat", "/proc/1/cgroup"]).stdout)
    if not any(controller for controller in lines):
        return [CGROUP_ROOT / leaf(order)]
    result: list[PurePosixPath] = []
    for controller in CONTROLLERS[fault]:
        if controller not in lines:
            raise FaultRefused(f"the node has no {controller} cgroup hierarchy")
        directory = CGROUP_ROOT / lines[controller][0] / leaf(order)
        if directory not in result:
            result.append(directory)
    return result


def write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.chaoskit-partial")
    partial.write_text(text)
    partial.replace(path)


def _pressure(host: Host, params: Mapping[str, str]) -> Info:
    order = order_name(params)
    size = amount(params, "megabytes", MAX_MEGABYTES)  # checked before anything changes
    threshold = amount(params, "threshold_mb", MAX_THRESHOLD_MB)
    evictions(params)
    config, backup = node_file(host, KUBELET_CONFIG), node_file(host, config_backup(order))
    info = {
        "megabytes": str(size),
        "threshold_mb": str(threshold),
        "backup": str(config_backup(order)),
    }
    if not backup.exists():
        available = mem_available(host)
        if size * 1024 * 1024 > available - HOST_RESERVE:
            raise FaultRefused(
                f"a {size} MiB hog would leave less than 1 GiB of the machine's memory "
                f"available ({available // (1024 * 1024)} MiB available)"
            )
        try:
            text = config.read_text()
        except OSError as e:
            raise FaultRefused(f"cannot read the kubelet's {KUBELET_CONFIG}: {e}") from None
        edited = pressure_config(text, threshold)
        write_atomically(backup, text)
        write_atomically(config, edited)
        host.run("systemctl", "restart", "kubelet")
        wait_kubelet_settled(host)
    cgroups = node_cgroups(order, "memory-hog")
    info["cgroups"] = ",".join(map(str, cgroups))
    if not any(hog_procs(d) for d in cgroups):
        info["pid"] = start_hog_in("memory", size, order, cgroups)
    return info


def wait_kubelet_settled(host: Host) -> None:
    """Waits until the restarted kubelet answers its health check (on the node's loopback,
    with the node's curl; without curl only the settle time), then ``READMIT_SETTLE``."""
    deadline = time.monotonic() + KUBELET_READY_TIMEOUT
    while time.monotonic() < deadline:
        proc = host.run("curl", "-sf", "-m", "2", KUBELET_HEALTHZ, check=False)
        if proc.returncode in (0, 127):  # healthy, or no curl on the node
            break
        time.sleep(1)
    else:
        raise HostFailed(f"the kubelet of {host.node} is not healthy again after its restart")
    time.sleep(READMIT_SETTLE)


def _unpressure(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
    order = order_name(params)
    remove_hog(node_cgroups(order, "memory-hog"))
    backup = node_file(host, config_backup(order))
    if backup.exists():
        backup.replace(node_file(host, KUBELET_CONFIG))
        host.run("systemctl", "restart", "kubelet")


def evictions(params: Mapping[str, str]) -> int:
    """After how many evictions the hog ends (0: it holds until the order ends)."""
    text = params.get("evictions", "0").strip() or "0"
    if not text.isdigit() or int(text) > MAX_EVICTIONS:
        raise FaultRefused(
            f"evictions must be a whole number from 0 to {MAX_EVICTIONS}, not {text!r}"
        )
    return int(text)


def _pressure_watch(
    host: Host, cluster: Cluster, params: Mapping[str, str], info: Mapping[str, str]
) -> Info | None:
    """Ends the hog once the kubelet has evicted ``evictions`` pods from the node since
    the order was applied: the blast radius is that many pods, not every pod the kubelet
    would go on to evict while its statistics lag behind the memory freed. The kubelet's
    threshold stays until the order ends (nothing restarts it twice)."""
    most = evictions(params)
    if most == 0:
        return None
    evicted = cluster.evicted_pods(host.node)
    if EVICTED_BEFORE not in info:  # the first look, right after apply
        return {**info, EVICTED_BEFORE: ",".join(sorted(evicted))}
    before = set(info[EVICTED_BEFORE].split(","))
    new = sorted(name for uid, name in evicted.items() if uid not in before)
    if len(new) < most:
        return None
    remove_hog(node_cgroups(order_name(params), "memory-hog"))
    return {**info, ENDED: f"after {len(new)} eviction(s)", "evicted": ",".join(new)}


def _pressure_backstop(info: Mapping[str, str]) -> list[str]:
    """Puts the kubelet's configuration back should the agent not (the hog ends by
    itself at the expiry)."""
    backup = info.get("backup", "")
    if not backup.startswith(f"{KUBELET_CONFIG}.chaoskit-"):
        return ["true"]
    return ["sh", "-c", f"test -f {backup} && mv -f {backup} {KUBELET_CONFIG} && "
            "systemctl restart kubelet"]  # fmt: skip


register(
    NodeFault(
        "node-memory-pressure",
        _pressure,
        _unpressure,
        backstop=_pressure_backstop,
        watch=_pressure_watch,
    )
)


def _node_cpu_hog(host: Host, params: Mapping[str, str]) -> Info:
    order = order_name(params)
    workers = amount(params, "workers", MAX_WORKERS)  # checked before anything changes
    cgroups = node_cgroups(order, "cpu-hog")
    info = {"workers": str(workers), "cgroups": ",".join(map(str, cgroups))}
    if not any(hog_procs(d) for d in cgroups):
        info["pid"] = start_hog_in("cpu", workers, order, cgroups)
    return info


def _node_cpu_unhog(host: Host, params: Mapping[str, str], info: Mapping[str, str]) -> None:
    remove_hog(node_cgroups(order_name(params), "cpu-hog"))


register(NodeFault("node-cpu-hog", _node_cpu_hog, _node_cpu_unhog))
