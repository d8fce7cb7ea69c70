"""The agent's local file survives restarts and damage; the node faults act on files."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoskit.agent.nodeagent import host as h
from chaoskit.agent.nodeagent.orders import Entry
from chaoskit.agent.nodeagent.store import Store


def test_store_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "state" / "orders.json")
    assert store.load() == {}
    e = Entry("u1", "n1", "static-pod-hold", {"component": "etcd"}, 1_800_000_000.0, "Applied")
    store.save({"u1": e})
    assert Store(store.path).load() == {"u1": e}
    assert not store.path.with_suffix(".tmp").exists()


def test_damaged_store_is_kept_aside(tmp_path: Path) -> None:
    store = Store(tmp_path / "orders.json")
    store.path.write_text("{not json")
    assert store.load() == {}
    assert store.path.with_suffix(".damaged").read_text() == "{not json"


def node(tmp_path: Path) -> h.Host:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "kube-scheduler.yaml").write_text("pod")
    return h.Host(node="cp1", kubernetes_dir=tmp_path)


def test_static_pod_hold_moves_out_and_back_idempotently(tmp_path: Path) -> None:
    host = node(tmp_path)
    fault = h.FAULTS["static-pod-hold"]
    params = {"component": "kube-scheduler", "wait": "false"}
    info = fault.apply(host, params)
    assert not (tmp_path / "manifests" / "kube-scheduler.yaml").exists()
    assert (tmp_path / "chaoskit-held" / "kube-scheduler.yaml").read_text() == "pod"
    assert fault.apply(host, params) == info  # a restarted agent re-applies
    fault.undo(host, params, info)
    fault.undo(host, params, info)
    assert (tmp_path / "manifests" / "kube-scheduler.yaml").read_text() == "pod"


@pytest.mark.parametrize("component", ["etcd", "../kubelet", ""])
def test_static_pod_hold_refuses_what_is_not_there(tmp_path: Path, component: str) -> None:
    with pytest.raises(h.FaultRefused):
        h.FAULTS["static-pod-hold"].apply(node(tmp_path), {"component": component})


def test_pids_named_reads_comm(tmp_path: Path) -> None:
    for pid, comm in ((12, "kubelet"), (40, "etcd"), (41, "kubelet")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "comm").write_text(comm + "\n")
    (tmp_path / "self").mkdir()
    host = h.Host(node="w1", kubernetes_dir=tmp_path, proc_dir=tmp_path)
    assert host.pids_named("kubelet") == [12, 41]


def test_unit_stop_refuses_a_node_without_the_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []

    def run(self: h.Host, *argv: str, check: bool = True) -> object:
        calls.append(argv)
        return type("P", (), {"stdout": "not-found\n", "returncode": 0})()

    monkeypatch.setattr(h.Host, "run", run)
    with pytest.raises(h.FaultRefused, match="node w1 has no systemd unit named kubelet"):
        h.FAULTS["unit-stop"].apply(h.Host("w1", Path("/nonexistent")), {"unit": "kubelet"})
    assert all("stop" not in argv for argv in calls)


class _Proc:
    def __init__(self, stdout: str = "", returncode: int = 0) -> None:
        self.stdout, self.stderr, self.returncode = stdout, "", returncode


def test_unit_faults_touch_only_kubelet_and_containerd() -> None:
    with pytest.raises(h.FaultRefused, match="not one chaoskit acts on"):
        h.FAULTS["unit-stop"].apply(h.Host("w1", Path("/nonexistent")), {"unit": "sshd"})


def test_container_kill_signals_every_match_and_reports_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {
        "sh": _Proc("/usr/local/bin/crictl"),
        "ps": _Proc("aaa\nbbb\n"),
        "aaa": _Proc("101"),
        "bbb": _Proc("202"),
    }

    def run(self: h.Host, *argv: str, check: bool = True) -> _Proc:
        key = argv[0] if argv[0] == "sh" else (argv[1] if argv[1] == "ps" else argv[-1])
        return answers[key]

    killed: list[tuple[int, int]] = []
    monkeypatch.setattr(h.Host, "run", run)
    monkeypatch.setattr(h.os, "kill", lambda pid, sig: killed.append((pid, sig)))
    info = h.FAULTS["container-kill"].apply(
        h.Host("w1", Path("/nonexistent")), {"namespace": "shop", "container": "order"}
    )
    assert info == {"killed": "aaa:101 bbb:202", "signal": "SIGKILL"}
    assert [pid for pid, _ in killed] == [101, 202]


def test_container_kill_refuses_a_node_without_crictl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h.Host, "run", lambda self, *argv, check=True: _Proc("", 1))
    with pytest.raises(h.FaultRefused, match="node w1 has no crictl"):
        h.FAULTS["container-kill"].apply(
            h.Host("w1", Path("/nonexistent")), {"namespace": "kube-system", "container": "etcd"}
        )


def test_etcd_status_reads_the_leader_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = "# HELP x\netcd_server_has_leader 1\netcd_server_is_leader 1\nother 3\n"
    monkeypatch.setattr(h.subprocess, "run", lambda *a, **kw: _Proc(metrics))
    info = h.FAULTS["etcd-status"].apply(h.Host("cp1", Path("/nonexistent")), {})
    assert info == {"has_leader": "1", "is_leader": "1"}
    with pytest.raises(h.FaultRefused, match=r"must be http://127\.0\.0\.1"):
        h.FAULTS["etcd-status"].apply(
            h.Host("cp1", Path("/nonexistent")), {"metrics_url": "http://10.0.0.1:2381/metrics"}
        )
