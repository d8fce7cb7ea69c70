"""Locust workers as pods inside the cluster, their master on the host: what ``chaoskit load
run --worker-mode pods`` gives is what the local modes give (a per-second series on the
host's clock, the acknowledged orders the ledger reconciles with MySQL), and no worker pod
outlives its run, also when the run is interrupted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from kubernetes import client

from chaoskit.load.pods import NAMESPACE
from chaoskit.load.timeseries import AGGREGATED, read_timeseries
from chaoskit.topology.client import OrderRun
from chaoskit.topology.ledger import Ack
from chaoskit.topology.shopdb import ledger
from tests.e2e.harness import REPO, Cluster, Shop, chaoskit

WORKERS = "app.kubernetes.io/name=locust-worker"


def _orders(out: Path) -> OrderRun:
    summary = json.loads((out / "summary.json").read_text())
    acks = [json.loads(line) for line in (out / "acks.jsonl").read_text().splitlines()]
    return OrderRun(
        run_id=summary["run_id"],
        acks=[Ack(a["idempotency_key"], a["order_id"]) for a in acks],
    )


def _leftovers(cluster: Cluster) -> list[str]:
    """Every worker pod, Job and ConfigMap of any load run still in the cluster."""
    batch = client.BatchV1Api(cluster.api)
    found = [f"pod/{p.metadata.name}" for p in cluster.core.list_namespaced_pod(NAMESPACE).items]
    found += [
        f"job/{j.metadata.name}"
        for j in batch.list_namespaced_job(NAMESPACE, label_selector=WORKERS).items
    ]
    found += [
        f"configmap/{c.metadata.name}"
        for c in cluster.core.list_namespaced_config_map(NAMESPACE, label_selector=WORKERS).items
    ]
    return found


def test_a_flash_sale_from_two_worker_pods_reconciles_and_leaves_no_pod(
    cluster: Cluster, shop: Shop, tmp_path: Path
) -> None:
    out = tmp_path / "pods"
    started = time.time()
    proc = chaoskit(
        "load", "run", "flash_sale", "--cluster", cluster.name, "--worker-mode", "pods",
        "--workers", "2", "--duration", "40", "--users", "30", "--out", str(out),
        timeout=600,
    )  # fmt: skip
    ended = time.time()
    assert proc.returncode == 0, proc.stderr
    assert "svc.cluster.local" in proc.stdout  # the workers' target: the in-cluster ingress
    print(proc.stdout)

    # Each worker pod sent its records to the master, which wrote them here.
    pod_acks = [p for p in out.glob("acks-locust-*.jsonl") if p.stat().st_size]
    assert len(pod_acks) == 2, sorted(p.name for p in out.iterdir())
    assert len(list(out.glob("seconds-locust-*.jsonl"))) == 2

    series = read_timeseries(out / "timeseries.csv")
    assert not series.empty
    # One row per second of the run, on the host's wall clock.
    assert started - 1 <= series.index[0] and series.index[-1] <= ended + 1
    assert list(series.index) == list(range(series.index[0], series.index[-1] + 1))
    assert len(series) >= 38
    users = series[(AGGREGATED, "users")]
    assert users.max() == 30  # the spike: ten times the baseline of 3
    rates = series[(AGGREGATED, "rps")]
    assert rates.iloc[:3].max() > 0  # the series starts with the load, not with the master
    # Requests in nearly every second (a machine shared with other clusters stalls at times).
    assert (rates > 0).sum() >= 30
    for endpoint in ("GET /products", "POST /orders", AGGREGATED):
        assert (endpoint, "p95_ms") in series.columns

    run = _orders(out)
    assert len(run.acks) > 20
    report = ledger(shop.access, shop.namespace, run)
    assert report.lost_orders == (), report.summary()
    assert report.duplicated == (), report.summary()
    assert report.ok, report.summary()

    assert _leftovers(cluster) == []


def test_an_unreachable_in_cluster_target_fails_fast_with_the_url(
    cluster: Cluster, shop: Shop, tmp_path: Path
) -> None:
    url = f"http://nothing.{shop.namespace}.svc.cluster.local"
    started = time.monotonic()
    proc = chaoskit(
        "load", "run", "steady", "--cluster", cluster.name, "--worker-mode", "pods",
        "--workers", "2", "--host", url, "--duration", "30", "--out", str(tmp_path / "none"),
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert f"{url}/products" in proc.stderr
    assert time.monotonic() - started < 30
    assert not (tmp_path / "none").exists()
    assert _leftovers(cluster) == []


def test_ctrl_c_removes_the_worker_pods(cluster: Cluster, shop: Shop, tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "chaoskit", "load", "run", "steady", "--cluster", cluster.name,
            "--worker-mode", "pods", "--workers", "2", "--duration", "300", "--users", "4",
            "--out", str(out),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        running = 0
        while time.monotonic() < deadline and proc.poll() is None:
            pods = cluster.core.list_namespaced_pod(NAMESPACE, label_selector=WORKERS).items
            running = sum(p.status.phase == "Running" for p in pods)
            if running == 2 and list(out.glob("seconds-locust-*.jsonl")):
                break
            time.sleep(1)
        assert running == 2, proc.stderr.read() if proc.poll() is not None else "pods not Running"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert _leftovers(cluster) == []
