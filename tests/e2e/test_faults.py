"""Faults on a real cluster, as a user runs them: a killed pod's recovery is split by
component, a deliberately broken run fails with the oracle's diff, the same
seed picks the same victims, bad input is refused with exit 2, a killed harness leaves
nothing behind that `chaoskit recover` cannot undo, and `chaos run` works with the
installed extension.

Each test deploys 3 probe servers behind a Service in its own namespace (the allowlist)
and leaves the cluster as it found it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from chaoskit.faults.state import StateFile, Undo
from chaoskit.settings import Settings
from tests.e2e.harness import REPO, Cluster, chaoskit, pending_changes
from tests.e2e.workloads import ready_pods, service, wait_for, web_deployment

LABELS = {"app": "web"}
SELECTOR = "app=web"


@pytest.fixture
def web(cluster: Cluster, namespace: str, probe_loaded: None) -> str:
    """3 Ready probe servers behind a Service, and a ConfigMap; returns the namespace."""
    cluster.apps.create_namespaced_deployment(namespace, web_deployment("web", 3, LABELS))
    cluster.core.create_namespaced_service(namespace, service("web", LABELS))
    cluster.core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"a": "1"}),
    )
    wait_for(
        "3 Ready web pods", lambda: len(ready_pods(cluster.core, namespace, SELECTOR)) == 3, 180
    )
    return namespace


def run_args(experiment: Path, cluster: Cluster, namespace: str, output: Path) -> list[str]:
    config = yaml.safe_load(experiment.read_text()).get("configuration", {})
    args = ["run", str(experiment), "--cluster", cluster.name, "--namespace", namespace]
    args += ["--seed", "7", "--output", str(output)]
    if "namespace" in config:
        args += ["--var", f"namespace={namespace}"]
    if "selector" in config:
        args += ["--var", f"selector={SELECTOR}"]
    return args


def result_of(output: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(output.read_text())
    return result


def test_a_killed_pod_is_replaced_and_each_component_is_timed(
    cluster: Cluster, web: str, tmp_path: Path
) -> None:
    output = tmp_path / "result.json"
    proc = chaoskit(*run_args(REPO / "experiments/pod-kill.yaml", cluster, web, output))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (recovery,) = result_of(output)["chaoskit"]["recovery"]
    (pod,) = recovery["pods"]
    assert pod["pod"].startswith(f"pod/{web}/web-")
    assert pod["replacement"].startswith(f"pod/{web}/web-")
    phases = pod["phases"]
    for phase in ("controller_manager", "scheduler", "kubelet", "endpoints"):
        assert phases[phase] is not None and phases[phase] >= 0, phases
    # Done when the replacement is Ready and has a ready endpoint, whichever came last
    # (the endpoint slice and the pod arrive on different streams, in either order).
    assert pod["total"] == pytest.approx(max(pod["ready"], pod["endpoint"]), abs=0.01)
    assert "controller-manager" in proc.stdout and "scheduler" in proc.stdout


def test_the_controller_manager_held_down_fails_with_the_missing_replica_named(
    cluster: Cluster, web: str, tmp_path: Path
) -> None:
    output = tmp_path / "result.json"
    experiment = REPO / "experiments/broken/controller-manager-held-down.yaml"
    proc = chaoskit(*run_args(experiment, cluster, web, output), timeout=600)
    assert proc.returncode == 1, proc.stdout
    result = result_of(output)
    assert result["deviated"] is True
    after = result["chaoskit"]["verdicts"][-1]
    assert after["ok"] is False
    assert any(
        p.startswith("deployment/web: 2 of 3 replicas Ready, 1 pod(s) missing")
        for p in after["problems"]
    ), after["problems"]
    assert "deployment/web: 2 of 3 replicas Ready" in proc.stdout
    # The rollbacks brought the controller managers back: the replica returns.
    assert pending_changes(cluster) == []
    wait_for("the replica back", lambda: len(ready_pods(cluster.core, web, SELECTOR)) == 3, 180)


def test_the_same_seed_picks_the_same_victims(cluster: Cluster, web: str) -> None:
    def plan(fault: str, seed: str, *sets: str) -> str:
        args = ["faults", "plan", fault, "--cluster", cluster.name, "--namespace", web]
        args += ["--seed", seed]
        for item in sets:
            args += ["--set", item]
        proc = chaoskit(*args, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    pods = (f"namespace={web}", f"selector={SELECTOR}", "count=2")
    first = plan("pod-kill", "11", *pods)
    assert len(first.splitlines()) == 2
    assert plan("pod-kill", "11", *pods) == first
    assert len({plan("pod-kill", str(seed), *pods) for seed in range(8)}) > 1
    nodes = plan("kubelet-stop", "11", "role=any")
    assert plan("kubelet-stop", "11", "role=any") == nodes


def test_a_selector_that_matches_nothing_fails_clearly(
    cluster: Cluster, web: str, tmp_path: Path
) -> None:
    output = tmp_path / "result.json"
    args = run_args(REPO / "experiments/pod-kill.yaml", cluster, web, output)
    args[args.index(f"selector={SELECTOR}")] = "selector=app=nothing"
    proc = chaoskit(*args)
    assert proc.returncode == 1
    assert "failed: delete-pods: pod-kill: selector 'app=nothing'" in proc.stdout
    assert "matches nothing" in proc.stdout
    assert result_of(output)["status"] == "interrupted"


def test_bad_input_exits_2_naming_the_file_the_path_and_the_reason(
    cluster: Cluster, tmp_path: Path
) -> None:
    doc = yaml.safe_load((REPO / "experiments/pod-kill.yaml").read_text())
    doc["method"][0]["provider"]["arguments"]["count"] = "two"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    proc = chaoskit("run", str(bad), "--cluster", cluster.name)
    assert proc.returncode == 2
    assert (
        f"{bad}: method[0].provider.arguments.count: must be an integer, not 'two'" in proc.stderr
    )
    assert "Traceback" not in proc.stderr

    doc["method"][0]["provider"]["func"] = "explode_pods"
    bad.write_text(yaml.safe_dump(doc))
    proc = chaoskit("run", str(bad), "--cluster", cluster.name)
    assert proc.returncode == 2
    assert "method[0].provider.func: unknown chaoskit action 'explode_pods' (valid:" in proc.stderr
    assert "kill_pods" in proc.stderr

    proc = chaoskit("faults", "plan", "pod-explode", "--cluster", cluster.name)
    assert proc.returncode == 2
    assert "unknown fault 'pod-explode' (valid:" in proc.stderr and "pod-kill" in proc.stderr


def test_a_context_that_is_not_chaoskits_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
    kubeconfig["contexts"][0]["name"] = "production"
    kubeconfig["current-context"] = "production"
    foreign = tmp_path / "kubeconfig"
    foreign.write_text(yaml.safe_dump(kubeconfig))
    env = {**os.environ, "CHAOSKIT_KUBECONFIG": str(foreign)}
    proc = subprocess.run(
        [sys.executable, "-m", "chaoskit", "run", "experiments/pod-kill.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "kube context 'production' is not one of chaoskit's kind clusters" in proc.stderr
    assert "--allow-context production" in proc.stderr


def test_power_faults_are_refused_on_an_allowed_context_and_recover_finds_its_record(
    cluster: Cluster, tmp_path: Path
) -> None:
    # The same cluster under another context name: allowed, but not chaoskit's kind cluster
    # as far as the guard can tell, so no docker verb may touch its nodes.
    kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
    kubeconfig["contexts"][0]["name"] = "production"
    kubeconfig["current-context"] = "production"
    foreign = tmp_path / "kubeconfig"
    foreign.write_text(yaml.safe_dump(kubeconfig))
    target = ("--kubeconfig", str(foreign), "--allow-context", "production")

    def nodes() -> dict[str, str]:
        names = subprocess.run(
            [
                "docker",
                "ps",
                "-a",
                "--filter",
                f"label=io.x-k8s.kind.cluster={cluster.name}",
                "--format",
                "{{.Names}}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return {name: _node_state(name) for name in names}

    before = nodes()
    assert before and set(before.values()) == {"running"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaoskit",
            "run",
            "experiments/node-stop.yaml",
            "--output",
            str(tmp_path / "r.json"),
            *target,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "node-stop is a power fault (docker stop of a kind node container)" in run.stderr
    assert "not on context 'production'" in run.stderr
    plan = chaoskit("faults", "plan", "node-kill", *target)
    assert plan.returncode == 2, plan.stderr
    assert "node-kill is a power fault" in plan.stderr
    assert nodes() == before
    recover = chaoskit("recover", *target)
    assert recover.returncode == 0, recover.stderr
    assert "nothing to recover on context 'production'" in recover.stdout


def _start_pause_run(
    cluster: Cluster, namespace: str, output: Path, *, hold: float = 120
) -> subprocess.Popen[str]:
    """A node-pause run; ``hold`` long enough for a test that stops it early."""
    args = run_args(REPO / "experiments/node-pause.yaml", cluster, namespace, output)
    return subprocess.Popen(
        [sys.executable, "-m", "chaoskit", *args, "--var", f"hold={hold:g}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _node_state(node: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Status}}", node],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


def test_sigterm_rolls_the_fault_back(cluster: Cluster, web: str, tmp_path: Path) -> None:
    run = _start_pause_run(cluster, web, tmp_path / "result.json")
    try:
        wait_for("a paused node", lambda: pending_changes(cluster), 180, poll=0.5)
        (undo,) = pending_changes(cluster)
        node = undo.split()[-1]
        wait_for(f"{node} paused", lambda: _node_state(node) == "paused", 60)
        run.send_signal(signal.SIGTERM)
        out, _ = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1, out
    assert _node_state(node) == "running"
    assert pending_changes(cluster) == []


def test_recover_undoes_what_a_killed_harness_left(
    cluster: Cluster, web: str, tmp_path: Path
) -> None:
    run = _start_pause_run(cluster, web, tmp_path / "result.json")
    try:
        wait_for("a paused node", lambda: pending_changes(cluster), 180, poll=0.5)
        (undo,) = pending_changes(cluster)
        node = undo.split()[-1]
        wait_for(f"{node} paused", lambda: _node_state(node) == "paused", 60)
        run.kill()  # SIGKILL: no finally block, no rollback
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert _node_state(node) == "paused"
    proc = chaoskit("recover", "--cluster", cluster.name, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"undone: docker unpause {node}" in proc.stdout
    assert _node_state(node) == "running"
    assert pending_changes(cluster) == []
    wait_for("3 Ready web pods", lambda: len(ready_pods(cluster.core, web, SELECTOR)) == 3, 180)


def test_chaos_run_works_with_the_installed_extension(
    cluster: Cluster, web: str, tmp_path: Path
) -> None:
    chaos = Path(sys.executable).parent / "chaos"
    journal = tmp_path / "journal.json"
    env = {
        **os.environ,
        "CHAOSKIT_CLUSTER": cluster.name,
        "CHAOSKIT_NAMESPACES": web,
        "CHAOSKIT_NAMESPACE": web,
        "CHAOSKIT_SELECTOR": SELECTOR,
    }
    started = time.monotonic()
    proc = subprocess.run(
        [str(chaos), "run", "experiments/pod-kill.yaml", "--journal-path", str(journal)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(journal.read_text())
    assert doc["status"] == "completed"
    (recovery,) = doc["chaoskit"]["recovery"]
    pod_events = [e for e in doc["chaoskit"]["timeline"] if f"/{web}/" in e.get("subject", "")]
    assert recovery["pods"][0]["replacement"], json.dumps(
        {"recovery": recovery, "events": pod_events}, indent=1
    )[-6000:]
    assert recovery["recovered_after_s"] < time.monotonic() - started


def test_a_rollback_that_fails_is_a_failed_run_that_says_how_to_recover(
    cluster: Cluster, web: str, tmp_path: Path
) -> None:
    """A change in the run's state file that cannot be undone: the run exits 1, names it
    and says 'chaoskit recover --cluster NAME'; the node it paused is back all the same."""
    state = StateFile.of(Settings.from_env(), cluster.name)
    output = tmp_path / "result.json"
    run = _start_pause_run(cluster, web, output, hold=10)  # this run ends by itself
    try:
        wait_for("a paused node", lambda: pending_changes(cluster), 180, poll=0.5)
        ((run_id, node),) = [(c.run_id, c.undo.description.split()[-1]) for c in state.pending()]
        stuck = state.record(
            run_id, "test", "nothing", Undo("no-such-undo", {}, "an undo that cannot work")
        )
        out, _ = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
        for change in state.pending():
            if change.undo.op == "no-such-undo":
                state.mark(change, "undone")
                state.end_run(change.run_id)
    assert run.returncode == 1, out
    assert "rollback failed" in out, out
    assert "still changed: nothing: an undo that cannot work" in out, out
    assert f"chaoskit recover --cluster {cluster.name}" in out, out
    doc = result_of(output)
    assert doc["chaoskit"]["rollback_error"] and stuck.id
    assert doc["chaoskit"]["still_changed"] == ["nothing: an undo that cannot work"]
    assert _node_state(node) == "running"
    assert pending_changes(cluster) == []


def test_a_failed_step_stops_the_run_before_the_next_fault(
    cluster: Cluster, web: str, tmp_path: Path
) -> None:
    """Marking the Kafka leader fails in a namespace without Kafka: the pod kill after it
    must not run (it would act on a stale or missing label)."""
    doc = yaml.safe_load((REPO / "experiments/pod-kill.yaml").read_text())
    kill = doc["method"][0]
    doc["method"] = [
        {
            "type": "action",
            "name": "mark-kafka-leader",
            "provider": {
                "type": "python",
                "module": "chaoskit.ctk.datatier",
                "func": "mark_kafka_controller_leader",
                "arguments": {"namespace": "${namespace}"},
            },
        },
        kill,
    ]
    experiment = tmp_path / "mark-then-kill.yaml"
    experiment.write_text(yaml.safe_dump(doc))
    output = tmp_path / "result.json"
    proc = chaoskit(*run_args(experiment, cluster, web, output), timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = result_of(output)
    assert result["status"] == "interrupted"
    assert result["chaoskit"]["injections"] == []  # the pod kill never ran
    assert len(ready_pods(cluster.core, web, SELECTOR)) == 3
