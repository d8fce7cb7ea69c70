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
from chaoskit.agent.nodeagent.host import FAULTS, FaultRefused, Host
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
    free = os.statvfs(tmp_path)
    free_mb = free.f_bavail * free.f_frsize // 2**20
    params = {ORDER_PARAM: "disk-fill-2", "namespace": "ns", "pod": "p", "container": "c",
              "megabytes": str(min(free_mb - 512, 65536))}  # fmt: skip
    with pytest.raises(FaultRefused, match="less than 1 GiB free"):
        FAULTS["disk-fill"].apply(HOST, params)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["tmp", "/tmp/../etc"])
def test_a_disk_fill_path_is_absolute_and_stays_down(path: str) -> None:
    with pytest.raises(FaultRefused, match="must be absolute, without '\\.\\.'"):
        r.fill_dir(HOST, {"path": path})
