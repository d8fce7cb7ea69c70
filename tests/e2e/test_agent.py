"""The node agent on a real cluster: install, orders undone by the agent alone, remove.

A static pod hold that is renewed stays held until it
is released; a harness killed with SIGKILL leaves nothing the agent does not undo; a run
on a cluster without the agent installs it and removes it at its end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException

from chaoskit.agent.client import DEFAULT_TTL, Orders
from chaoskit.agent.nodeagent.orders import NAMESPACE
from tests.e2e.harness import REPO, Cluster, chaoskit, pending_changes
from tests.e2e.workloads import ready_pods, wait_for, web_deployment


def node_sh(node: str, script: str) -> str:
    proc = subprocess.run(
        ["docker", "exec", node, "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.stdout.strip()


def node_ready(cluster: Cluster, node: str) -> bool:
    conditions = cluster.core.read_node(node).status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def pod_ready(cluster: Cluster, name: str) -> bool:
    try:
        pod = cluster.core.read_namespaced_pod(name, "kube-system")
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    conditions = pod.status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


@pytest.fixture(scope="module")
def agent(cluster: Cluster) -> Orders:
    """The session's agent (installed with the cluster): install again is a no-op."""
    started = time.monotonic()
    install = chaoskit("agent", "install", "--cluster", cluster.name, timeout=900)
    assert install.returncode == 0, f"{install.stdout}\n{install.stderr}"
    print(f"agent install (installed already): {time.monotonic() - started:.1f} s")
    return Orders(cluster.api)


def test_agent_status_lists_every_node(cluster: Cluster, agent: Orders) -> None:
    status = chaoskit("agent", "status", "--cluster", cluster.name, timeout=120)
    assert status.returncode == 0, status.stderr
    for node in cluster.workers() + cluster.control_planes():
        assert node in status.stdout


def test_renewed_static_pod_hold_lasts_until_released(cluster: Cluster, agent: Orders) -> None:
    node = cluster.control_planes()[0]
    name = agent.create(node, "static-pod-hold", {"component": "kube-scheduler"}, ttl=10)
    first_expiry = agent.get(name).expires_at
    # The agent reports Applied once kubelet has stopped the scheduler (seconds on a busy
    # machine): renewed meanwhile, as the harness does, every 3 s.
    deadline = time.monotonic() + 100
    while agent.get(name).phase != "Applied":
        assert agent.get(name).phase == "Pending", agent.message(name)
        assert time.monotonic() < deadline, "the hold was not Applied within 100 s"
        agent.renew(name, ttl=10)
        time.sleep(3)
    while time.time() < first_expiry + 5:  # past the first expiry, held because renewed
        agent.renew(name, ttl=10)
        time.sleep(3)
        assert agent.get(name).phase == "Applied", agent.message(name)
    assert node_sh(node, "ls /etc/kubernetes/chaoskit-held") == "kube-scheduler.yaml"
    agent.release(name)
    agent.wait_phase(name, ("Undone",), timeout=15)
    assert "kube-scheduler.yaml" in node_sh(node, "ls /etc/kubernetes/manifests")
    assert node_sh(node, "ls /etc/kubernetes/chaoskit-held") == ""
    mirror = f"kube-scheduler-{node}"
    deadline = time.monotonic() + 120
    while not pod_ready(cluster, mirror):
        assert time.monotonic() < deadline, f"{mirror} not Ready 120 s after the release"
        time.sleep(1)
    agent.delete(name)


def test_unknown_fault_is_failed_not_applied(cluster: Cluster, agent: Orders) -> None:
    name = agent.create(cluster.workers()[0], "moon-landing", {}, ttl=20)
    deadline = time.monotonic() + 15
    while agent.get(name).phase != "Failed":
        assert time.monotonic() < deadline, "the agent did not refuse an unknown fault"
        time.sleep(0.5)
    assert "unknown fault 'moon-landing'" in agent.message(name)
    agent.delete(name)


DEAD_MAN_EXPERIMENT = {
    "version": "1.0.0",
    "title": "kubelet stopped, a pod partitioned and hogged, the scheduler held down, by a "
    "harness that then dies",
    "description": "The harness is killed with SIGKILL while both faults are in force.",
    "tags": ["chaoskit", "agent"],
    "controls": [
        {"name": "chaoskit", "provider": {"type": "python", "module": "chaoskit.ctk.control"}}
    ],
    "method": [
        {
            "type": "action",
            "name": "stop-kubelet",
            "provider": {"type": "python", "module": "chaoskit.ctk.actions", "func": "stop_kubelet",
                         "arguments": {"role": "worker", "count": 1}},
        },
        {
            "type": "action",
            "name": "partition-the-web-pod",
            "provider": {"type": "python", "module": "chaoskit.ctk.actions",
                         "func": "partition_network",
                         "arguments": {"namespace": "${namespace}", "selector": "app=web",
                                       "peer_cidrs": ["10.96.0.0/12"]}},
        },
        {
            "type": "action",
            "name": "hog-cpu-in-the-web-pod",
            "provider": {"type": "python", "module": "chaoskit.ctk.actions", "func": "hog_cpu",
                         "arguments": {"namespace": "${namespace}", "selector": "app=web"}},
        },
        {
            "type": "action",
            "name": "hold-the-scheduler",
            "provider": {"type": "python", "module": "chaoskit.ctk.actions",
                         "func": "stop_control_plane",
                         "arguments": {"component": "kube-scheduler", "count": 1}},
            "pauses": {"after": 600},
        },
    ],
}  # fmt: skip


def pod_sandbox_pid(node: str, namespace: str, selector: str) -> str:
    """The host pid of a pod's sandbox on ``node``, asked of the node's crictl."""
    sandbox = node_sh(node, f"crictl pods -q --state ready --namespace {namespace} "
                            f"--label {selector} | head -1")  # fmt: skip
    return node_sh(node, f"crictl inspectp -o go-template --template '{{{{.info.pid}}}}' {sandbox}")


@pytest.mark.usefixtures("probe_loaded")
def test_a_killed_harness_leaves_nothing_the_agent_does_not_undo(
    cluster: Cluster, agent: Orders, namespace: str, tmp_path: Path
) -> None:
    """Dead-man proof: SIGKILL of `chaoskit run` while kubelet is stopped, a pod is
    partitioned and hogged, and a static pod is held down; the agent (and the hog itself)
    undo all of it within the orders' expiry, no recover needed."""
    cluster.apps.create_namespaced_deployment(namespace, web_deployment("web", 1, {"app": "web"}))
    wait_for("web Ready", lambda: ready_pods(cluster.core, namespace, "app=web"), 120)
    experiment = tmp_path / "dead-man.json"
    experiment.write_text(json.dumps(DEAD_MAN_EXPERIMENT).replace("${namespace}", namespace))
    run = subprocess.Popen(
        [sys.executable, "-m", "chaoskit", "run", str(experiment), "--cluster", cluster.name,
         "--namespace", namespace, "--output", str(tmp_path / "result.json")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while len(applied := [o for o in agent.list() if o.phase == "Applied"]) < 4:
            assert run.poll() is None, run.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the four faults not in force after 300 s"
            time.sleep(0.5)
        run.kill()  # SIGKILL: no finally block, no rollback, no more renewals
        killed = time.monotonic()
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    by_fault = {o.fault: o for o in applied}
    worker, plane = by_fault["unit-stop"].node, by_fault["static-pod-hold"].node
    web = by_fault["net-partition"].node
    pid = pod_sandbox_pid(web, namespace, "app=web")
    assert node_sh(worker, "systemctl is-active kubelet") != "active"
    assert "CK-" in node_sh(web, f"nsenter -t {pid} -n iptables -S")
    assert node_sh(web, "find /sys/fs/cgroup -maxdepth 9 -name 'chaoskit-*' -type d")
    while any(agent.get(o.name).phase != "Undone" for o in applied):
        assert time.monotonic() - killed < DEFAULT_TTL + 15, "not undone within the expiry"
        time.sleep(0.2)
    undone_after = time.monotonic() - killed
    print(f"dead-man undo: the four faults undone {undone_after:.1f} s after the SIGKILL")
    assert node_sh(worker, "systemctl is-active kubelet") == "active"
    assert "kube-scheduler.yaml" in node_sh(plane, "ls /etc/kubernetes/manifests")
    assert "CK-" not in node_sh(web, f"nsenter -t {pid} -n iptables -S")
    assert not node_sh(web, "find /sys/fs/cgroup -maxdepth 9 -name 'chaoskit-*' -type d")
    deadline = time.monotonic() + 120
    while not (node_ready(cluster, worker) and pod_ready(cluster, f"kube-scheduler-{plane}")):
        assert time.monotonic() < deadline, f"{worker} or the scheduler not back 120 s later"
        time.sleep(1)
    # The dead run's state file entries: recover finds the orders undone and forgets them.
    recovered = chaoskit("recover", "--cluster", cluster.name, timeout=300)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert pending_changes(cluster) == []


KUBELET_KILL_EXPERIMENT = {
    **{k: v for k, v in DEAD_MAN_EXPERIMENT.items() if k != "method"},
    "title": "kubelet killed on a worker; systemd restarts it",
    "method": [
        {
            "type": "action",
            "name": "kill-kubelet",
            "provider": {"type": "python", "module": "chaoskit.ctk.actions", "func": "kill_kubelet",
                         "arguments": {"role": "worker", "count": 1}},
        }
    ],
}  # fmt: skip


def test_a_run_installs_the_agent_it_needs_and_removes_it(
    cluster: Cluster, agent: Orders, namespace: str, tmp_path: Path
) -> None:
    """Removed (orders undone first), then a kubelet-kill run finds no agent: it installs
    one, acts through it, and removes it at its end. Installed again for the session."""
    removed = chaoskit("agent", "remove", "--cluster", cluster.name, timeout=300)
    assert removed.returncode == 0, f"{removed.stdout}\n{removed.stderr}"
    with pytest.raises(ApiException) as gone:
        cluster.core.read_namespace(NAMESPACE)
    assert gone.value.status == 404
    try:
        experiment = tmp_path / "kubelet-kill.json"
        experiment.write_text(json.dumps(KUBELET_KILL_EXPERIMENT))
        run = chaoskit(
            "run", str(experiment), "--cluster", cluster.name, "--namespace", namespace,
            "--output", str(tmp_path / "result.json"), timeout=900,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        doc = json.loads((tmp_path / "result.json").read_text())
        (step,) = doc["journal"]["run"]
        assert step["status"] == "succeeded", step
        assert step["output"]["details"][0]["restarted_after_s"] < 30
        with pytest.raises(ApiException) as gone:
            cluster.core.read_namespace(NAMESPACE)
        assert gone.value.status == 404, "the run that installed the agent removes it"
    finally:
        again = chaoskit("agent", "install", "--cluster", cluster.name, timeout=900)
        assert again.returncode == 0, f"{again.stdout}\n{again.stderr}"
