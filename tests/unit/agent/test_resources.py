"""The agent's resource hogs: cgroups found on v1 and v2, refusals, and a hog that ends by
itself when its order expires or goes (the real hog program, run here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import pytest

from chaoskit.agent.nodeagent import resources as r
from chaoskit.agent.nodeagent.host import ENDED, FAULTS, FaultRefused, Host
from chaoskit.agent.nodeagent.orders import ORDER_PARAM, format_time

HOST = Host("w1", Path("/nonexistent"))

V1 = """12:pids:/kubepods/burstable/pod1234/abcd
4:memory:/kubepods/burstable/pod1234/abcd
3:cpu,cpuacct:/kubepods/burstable/pod1234/abcd
1:name=systemd:/kubepods/burstable/pod1234/abcd
"""
V2_POD = "/sys/fs/cgroup/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod1234.slice"
V2 = "0::" + V2_POD.removeprefix("/sys/fs/cgroup") + "/cri-abcd.scope\n"


HYBRID = """9:name=systemd:/kubelet.slice/pod1234.slice/abcd.scope
4:memory:/kubelet.slice/pod1234.slice/abcd.scope
2:cpuacct:/kubelet.slice/pod1234.slice/abcd.scope
1:cpu:/kubelet.slice/pod1234.slice/abcd.scope
0::/kubelet.slice/pod1234.slice/abcd.scope
"""


def test_cgroup_lines_map_each_controller_to_its_hierarchy_and_path() -> None:
    lines = r.cgroup_lines(V1)
    path = "/kubepods/burstable/pod1234/abcd"
    assert lines["cpu"] == lines["cpuacct"] == ("cpu,cpuacct", path)
    assert lines["memory"] == ("memory", path)
    assert "name=systemd" not in lines
    assert r.cgroup_lines(V2) == {"": ("", V2.split("::")[1].strip())}
    hybrid = r.cgroup_lines(HYBRID)
    assert hybrid["cpu"][0] == "cpu" and hybrid["cpuacct"][0] == "cpuacct"


def test_a_path_is_looked_for_as_it_is_then_with_leading_parts_dropped() -> None:
    mount = PurePosixPath("/sys/fs/cgroup/memory")
    assert r.candidates(mount, "/docker/n1/kubepods/pod1/c1")[:3] == [
        mount / "docker/n1/kubepods/pod1/c1",
        mount / "n1/kubepods/pod1/c1",
        mount / "kubepods/pod1/c1",
    ]


@pytest.mark.parametrize(("text", "fault", "found"), [
    (V1, "cpu-hog", ["/sys/fs/cgroup/cpu,cpuacct/kubepods/burstable/pod1234"]),
    (HYBRID, "cpu-hog", ["/sys/fs/cgroup/cpu/kubelet.slice/pod1234.slice",
                         "/sys/fs/cgroup/cpuacct/kubelet.slice/pod1234.slice"]),
    (V1, "memory-hog", ["/sys/fs/cgroup/memory/kubepods/burstable/pod1234"]),
    (V2, "memory-hog", [V2_POD]),
])  # fmt: skip
def test_the_pods_cgroup_is_the_parent_of_the_sandboxs_where_its_pid_is_listed(
    monkeypatch: pytest.MonkeyPatch, text: str, fault: str, found: list[str]
) -> None:
    def node_run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        if argv[1] == "/proc/4242/cgroup":
            return subprocess.CompletedProcess(argv, 0, text, "")
        listed = argv[1].endswith("/abcd/cgroup.procs") or argv[1].endswith(
            "abcd.scope/cgroup.procs"
        )
        return subprocess.CompletedProcess(argv, 0 if listed else 1, "4242\n" if listed else "", "")

    monkeypatch.setattr(r, "node_run", node_run)
    assert [str(d) for d in r.pod_cgroups(4242, fault)] == found


def test_amounts_are_refused_outside_their_range() -> None:
    with pytest.raises(FaultRefused, match="workers must be a whole number from 1 to 16"):
        r.amount({"workers": "0"}, "workers", 16)
    with pytest.raises(FaultRefused, match="'megabytes' is required"):
        r.amount({}, "megabytes", 10)
    assert r.amount({"megabytes": "64"}, "megabytes", 100) == 64


def _store(path: Path, order: str, expires_in: float, phase: str = "Applied") -> None:
    entry = {"name": order, "phase": phase, "expiresAt": format_time(time.time() + expires_in)}
    path.write_text(json.dumps({"orders": [entry]}))


def _gone(pid: int, timeout: float) -> bool:
    """The process ended (a zombie counts: whoever adopted it may reap it late)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("kind", ["cpu", "memory"])
def test_the_hog_ends_by_itself_at_its_orders_expiry(tmp_path: Path, kind: str) -> None:
    store = tmp_path / "orders.json"
    _store(store, "hog-1", expires_in=2.0)
    # leaf "" is in any /proc/self/cgroup: the hog starts at once, as if moved
    proc = subprocess.run(
        [sys.executable, "-c", r.HOG, kind, "1", str(store), "hog-1", ""],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    pid = int(proc.stdout)
    assert not _gone(pid, 1.0), "the hog ended before its expiry"
    assert _gone(pid, 5.0), "the hog outlived its order's expiry"


def test_the_hog_ends_when_its_order_is_no_longer_applied(tmp_path: Path) -> None:
    store = tmp_path / "orders.json"
    _store(store, "hog-2", expires_in=60.0)
    proc = subprocess.run(
        [sys.executable, "-c", r.HOG, "memory", "1", str(store), "hog-2", ""],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    pid = int(proc.stdout)
    assert not _gone(pid, 1.0)
    _store(store, "hog-2", expires_in=60.0, phase="Undone")
    assert _gone(pid, 3.0), "the hog outlived its order's undo"


def test_a_hog_never_moved_into_its_cgroup_gives_up(tmp_path: Path) -> None:
    store = tmp_path / "orders.json"
    _store(store, "hog-3", expires_in=60.0)
    proc = subprocess.run(
        [sys.executable, "-c", r.HOG.replace("+ 10", "+ 0.5"), "cpu", "1", str(store), "hog-3",
         "chaoskit-never"],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    assert _gone(int(proc.stdout), 3.0)


def test_a_disk_fill_writes_its_file_and_the_undo_deletes_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(r, "fill_dir", lambda host, params: tmp_path)
    fill = FAULTS["disk-fill"]
    params = {ORDER_PARAM: "disk-fill-1", "namespace": "ns", "pod": "p", "container": "c",
              "megabytes": "3"}  # fmt: skip
    info = fill.apply(HOST, params)
    (written,) = tmp_path.iterdir()
    assert written.stat().st_size == 3 * 2**20
    assert info == {"file": f"/tmp/{written.name}", "megabytes": "3"}
    assert fill.apply(HOST, params)["megabytes"] == "3", "applied again: the same file"
    fill.undo(HOST, params, info)
    assert list(tmp_path.iterdir()) == []


def test_a_disk_fill_never_leaves_the_filesystem_less_than_a_gibibyte(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(r, "fill_dir", lambda host, params: tmp_path)
    # The filesystem as the fault sees it has 2 GiB free, whatever the machine's disk has
    # (a real check against a large disk would write the file: never in a unit test).
    fake = os.statvfs_result((4096, 4096, 2**20, 2**19, 2**19, 0, 0, 0, 0, 255))
    monkeypatch.setattr(r.os, "statvfs", lambda path: fake)
    params = {ORDER_PARAM: "disk-fill-2", "namespace": "ns", "pod": "p", "container": "c",
              "megabytes": "1536"}  # fmt: skip
    with pytest.raises(FaultRefused, match=r"less than 1 GiB free .* \(2048 MiB free\)"):
        FAULTS["disk-fill"].apply(HOST, params)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["tmp", "/tmp/../etc"])
def test_a_disk_fill_path_is_absolute_and_stays_down(path: str) -> None:
    with pytest.raises(FaultRefused, match="must be absolute, without '\\.\\.'"):
        r.fill_dir(HOST, {"path": path})


# ---------------------------------------------------------------------------- node memory pressure

KIND_KUBELET = """apiVersion: kubelet.config.k8s.io/v1beta1
cgroupDriver: systemd
evictionHard:
  imagefs.available: 0%
  nodefs.available: 0%
  nodefs.inodesFree: 0%
evictionPressureTransitionPeriod: 0s
kind: KubeletConfiguration
volumeStatsAggPeriod: 10s
"""


def test_the_kubelet_config_gets_a_memory_threshold_and_keeps_the_rest() -> None:
    edited = r.pressure_config(KIND_KUBELET, 20000)
    assert edited == KIND_KUBELET.replace(
        "  nodefs.inodesFree: 0%\nevictionPressureTransitionPeriod: 0s",
        "  nodefs.inodesFree: 0%\n  memory.available: 20000Mi\n"
        "evictionPressureTransitionPeriod: 5s",
    )
    # Edited twice (an agent restart re-applies): one threshold, the newer.
    assert r.pressure_config(edited, 19000).count("memory.available") == 1
    assert "memory.available: 19000Mi" in r.pressure_config(edited, 19000)


def test_the_kubelet_config_edit_follows_the_blocks_indentation_or_adds_the_block() -> None:
    four = "evictionHard:\n    nodefs.available: 5%\nkind: KubeletConfiguration\n"
    assert r.pressure_config(four, 300).splitlines()[:3] == [
        "evictionHard:",
        "    nodefs.available: 5%",
        "    memory.available: 300Mi",
    ]
    assert r.pressure_config("kind: KubeletConfiguration\n", 300).splitlines() == [
        "kind: KubeletConfiguration",
        "evictionHard:",
        "  memory.available: 300Mi",
        "evictionPressureTransitionPeriod: 5s",
    ]
    assert "  memory.available: 300Mi" in r.pressure_config("evictionHard: {}\n", 300)
    with pytest.raises(FaultRefused, match="inline evictionHard"):
        r.pressure_config("evictionHard: {memory.available: 100Mi}\n", 300)


NODE_INIT = "9:name=systemd:/\n4:memory:/\n2:cpuacct:/\n1:cpu:/\n0::/\n"
"""PID 1 of a kind node on this machine's hybrid v1 (cpu and cpuacct apart)."""


@pytest.mark.parametrize(("init", "fault", "found"), [
    (NODE_INIT, "cpu-hog", ["/sys/fs/cgroup/cpu/chaoskit-", "/sys/fs/cgroup/cpuacct/chaoskit-"]),
    ("3:cpu,cpuacct:/\n4:memory:/\n", "cpu-hog", ["/sys/fs/cgroup/cpu,cpuacct/chaoskit-"]),
    (NODE_INIT, "memory-hog", ["/sys/fs/cgroup/memory/chaoskit-"]),
    ("0::/\n", "memory-hog", ["/sys/fs/cgroup/chaoskit-"]),
])  # fmt: skip
def test_a_node_hogs_cgroups_are_at_the_roots_of_the_nodes_hierarchies(
    monkeypatch: pytest.MonkeyPatch, init: str, fault: str, found: list[str]
) -> None:
    monkeypatch.setattr(
        r, "node_run", lambda argv, check=True: subprocess.CompletedProcess(argv, 0, init, "")
    )
    cgroups = [str(d) for d in r.node_cgroups("order-1", fault)]
    assert cgroups == [f + r.leaf("order-1").removeprefix("chaoskit-") for f in found]


def test_a_node_cpu_hog_needs_a_cpu_hierarchy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        r,
        "node_run",
        lambda argv, check=True: subprocess.CompletedProcess(argv, 0, "4:memory:/", ""),
    )
    with pytest.raises(FaultRefused, match="no cpu cgroup hierarchy"):
        r.node_cgroups("order-1", "cpu-hog")


def _node(tmp_path: Path, config: str = KIND_KUBELET, available_kb: int = 20 * 2**20) -> Host:
    root = tmp_path / "proc"
    (root / "1" / "root" / "var/lib/kubelet").mkdir(parents=True)
    (root / "1" / "root" / "var/lib/kubelet/config.yaml").write_text(config)
    (root / "meminfo").write_text(f"MemTotal: 24000000 kB\nMemAvailable: {available_kb} kB\n")
    return Host("w1", Path("/nonexistent"), proc_dir=root)


def test_node_memory_pressure_edits_the_kubelet_starts_the_hog_and_undoes_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = _node(tmp_path)
    calls: list[list[str]] = []
    hog_cgroup: list[int] = []

    def node_run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        if argv[0] == "sh":  # the hog moved into its cgroup
            hog_cgroup.append(4242)
        if argv == ["cat", "/proc/1/cgroup"]:
            return subprocess.CompletedProcess(argv, 0, NODE_INIT, "")
        if argv[:1] == ["cat"]:
            return subprocess.CompletedProcess(argv, 0, "".join(f"{p}\n" for p in hog_cgroup), "")
        if argv[:1] == ["kill"]:
            hog_cgroup.clear()
        return subprocess.CompletedProcess(argv, 1 if argv[0] == "test" else 0, "", "")

    restarts: list[tuple[str, ...]] = []
    health: list[tuple[str, ...]] = []

    def run(self: Host, *argv: str, **kw: object) -> subprocess.CompletedProcess[str]:
        (health if argv[0] == "curl" else restarts).append(argv)
        healthy = argv[0] != "curl" or len(health) > 1  # the kubelet answers at its second try
        return subprocess.CompletedProcess(list(argv), 0 if healthy else 7, "", "")

    monkeypatch.setattr(r, "node_run", node_run)
    monkeypatch.setattr(r, "start_hog", lambda kind, size, order, store: 4242)
    monkeypatch.setattr(r, "READMIT_SETTLE", 0.0)
    monkeypatch.setattr(Host, "run", run)
    fault = FAULTS["node-memory-pressure"]
    params = {ORDER_PARAM: "pressure-1", "megabytes": "512", "threshold_mb": "20000"}
    info = fault.apply(host, params)
    config = tmp_path / "proc/1/root/var/lib/kubelet/config.yaml"
    assert "memory.available: 20000Mi" in config.read_text()
    assert restarts == [("systemctl", "restart", "kubelet")]
    assert len(health) == 2, "the hog starts once the restarted kubelet is healthy"
    assert info["cgroups"].startswith(
        "/sys/fs/cgroup/memory/chaoskit-"
    )  # v1: no cgroup.controllers
    assert info["pid"] == "4242" and hog_cgroup == [4242]
    assert fault.apply(host, params)["threshold_mb"] == "20000"
    assert restarts == [("systemctl", "restart", "kubelet")], "applied again: nothing new"
    command = fault.backstop(info) if fault.backstop else []
    assert command[:2] == ["sh", "-c"] and info["backup"] in command[2]
    fault.undo(host, params, info)
    assert config.read_text() == KIND_KUBELET
    assert not any(p.name.startswith("config.yaml.") for p in config.parent.iterdir())
    assert hog_cgroup == [] and restarts[-1] == ("systemctl", "restart", "kubelet")


def test_node_memory_pressure_never_leaves_the_machine_less_than_a_gibibyte(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = _node(tmp_path, available_kb=1200 * 1024)
    monkeypatch.setattr(r, "node_run", lambda argv, check=True: pytest.fail(f"ran {argv}"))
    params = {ORDER_PARAM: "pressure-2", "megabytes": "512", "threshold_mb": "900"}
    with pytest.raises(FaultRefused, match="less than 1 GiB of the machine's memory"):
        FAULTS["node-memory-pressure"].apply(host, params)
    config = tmp_path / "proc/1/root/var/lib/kubelet/config.yaml"
    assert config.read_text() == KIND_KUBELET
    assert [p.name for p in config.parent.iterdir()] == ["config.yaml"]


def test_a_pod_hog_is_moved_into_a_cgroup_under_the_pods_and_undone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pod = PurePosixPath("/sys/fs/cgroup/memory/kubepods/burstable/pod1234")
    procs: dict[str, list[int]] = {}
    made: list[str] = []

    def node_run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        if argv[0] == "mkdir":
            made.append(argv[-1])
        elif argv[0] == "sh":  # echo PID > DIR/cgroup.procs
            pid, target = argv[2].split(" > ")
            procs.setdefault(str(PurePosixPath(target).parent), []).append(int(pid.split()[1]))
        elif argv[0] == "cat":
            listed = procs.get(str(PurePosixPath(argv[1]).parent), [])
            return subprocess.CompletedProcess(argv, 0, "".join(f"{p}\n" for p in listed), "")
        elif argv[0] == "kill":
            procs.clear()
        elif argv[0] == "rmdir":
            made.remove(argv[1])
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(r, "node_run", node_run)
    monkeypatch.setattr(r, "require_pid", lambda host, params: 4242)
    monkeypatch.setattr(r, "sandbox_pid", lambda host, params: 4242)
    monkeypatch.setattr(r, "pod_cgroups", lambda pid, fault: [pod])
    monkeypatch.setattr(r, "start_hog", lambda kind, size, order, store: 777)
    fault = FAULTS["memory-hog"]
    params = {ORDER_PARAM: "hog-1", "namespace": "ns", "pod": "p", "megabytes": "64"}
    info = fault.apply(HOST, params)
    cgroup = str(pod / r.leaf("hog-1"))
    assert info["cgroups"] == cgroup and info["pid"] == "777" and made == [cgroup]
    assert procs == {cgroup: [777]}
    assert "pid" not in fault.apply(HOST, params), "applied again: the running hog is kept"
    fault.undo(HOST, params, info)
    assert procs == {} and made == []


class FakeCluster:
    def __init__(self) -> None:
        self.evicted: dict[str, str] = {"old": "shop/evicted-yesterday"}

    def evicted_pods(self, node: str) -> dict[str, str]:
        return dict(self.evicted)


def test_node_memory_pressure_ends_its_hog_after_its_evictions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = Host("w1", Path("/nonexistent"))
    killed: list[list[PurePosixPath]] = []
    monkeypatch.setattr(r, "node_cgroups", lambda order, fault: [PurePosixPath("/cg/x")])
    monkeypatch.setattr(r, "remove_hog", killed.append)
    watch = FAULTS["node-memory-pressure"].watch
    assert watch is not None
    cluster = FakeCluster()
    params = {ORDER_PARAM: "pressure-3", "megabytes": "512", "threshold_mb": "900",
              "evictions": "2"}  # fmt: skip
    info = watch(host, cluster, params, {"pid": "1"})  # the first look: what was evicted before
    assert info == {"pid": "1", r.EVICTED_BEFORE: "old"}
    cluster.evicted["a"] = "t/besteffort"
    assert watch(host, cluster, params, info) is None and killed == []
    cluster.evicted["b"] = "t/burstable"
    ended = watch(host, cluster, params, info)
    assert ended is not None and killed == [[PurePosixPath("/cg/x")]]
    assert ended[ENDED] == "after 2 eviction(s)" and ended["evicted"] == "t/besteffort,t/burstable"
    # evictions=0: the pressure holds until the order ends
    assert watch(host, cluster, {**params, "evictions": "0"}, info) is None


def test_node_memory_pressure_refuses_a_bad_eviction_count(tmp_path: Path) -> None:
    params = {ORDER_PARAM: "pressure-4", "megabytes": "512", "threshold_mb": "900",
              "evictions": "-1"}  # fmt: skip
    with pytest.raises(FaultRefused, match="evictions must be a whole number"):
        FAULTS["node-memory-pressure"].apply(_node(tmp_path), params)
