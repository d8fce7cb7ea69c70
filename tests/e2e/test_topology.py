"""The e-commerce topology as its users see it: orders through the ingress end up in MySQL
and as notifications, no acknowledged order is lost when replicas die, Prometheus has the
gateway's numbers, and the integrity ledger catches a real loss."""

from __future__ import annotations

import threading
import time

from prometheus_api_client import PrometheusConnect

from chaoskit.topology.client import OrderRun, order_burst, place_order
from chaoskit.topology.shopdb import ledger
from tests.e2e.harness import Cluster, Shop, chaoskit
from tests.e2e.workloads import exec_in, ready_pods, wait_for

STATELESS = ("gateway", "product", "order", "payment", "notification")


def test_deploy_check_verifies_the_running_topology(cluster: Cluster, shop: Shop) -> None:
    proc = chaoskit("deploy", "--name", cluster.name, "--check", timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "serves" in proc.stdout


def test_orders_through_the_ingress_reach_mysql_and_notifications(shop: Shop) -> None:
    run = order_burst(shop.ingress, count=40, concurrency=4)
    assert len(run.acks) == 40, run.failures
    report = ledger(shop.access, shop.namespace, run)
    assert report.ok, report.summary()
    assert report.lost_orders == () and report.duplicated == ()


def test_a_retried_order_with_the_same_key_is_not_created_twice(shop: Shop) -> None:
    run = OrderRun()
    key = run.key("retried")
    first, _ = place_order(shop.ingress, key=key)
    again, _ = place_order(shop.ingress, key=key)
    assert first is not None and again is not None
    assert first.order_id == again.order_id
    run.acks += [first, again]
    report = ledger(shop.access, shop.namespace, run)
    assert report.stored == 1
    assert report.duplicated == ()


def test_killing_one_replica_of_each_service_during_a_burst_loses_no_order(
    cluster: Cluster, shop: Shop
) -> None:
    run = OrderRun()
    burst = threading.Thread(
        target=order_burst,
        args=(shop.ingress,),
        kwargs={"count": 300, "concurrency": 6, "run": run},
    )
    burst.start()
    time.sleep(2)
    for service in STATELESS:
        pods = ready_pods(cluster.core, shop.namespace, f"app.kubernetes.io/name={service}")
        assert len(pods) >= 2, f"{service} has {len(pods)} Ready replicas"
        cluster.core.delete_namespaced_pod(
            pods[0].metadata.name, shop.namespace, grace_period_seconds=0
        )
    burst.join(timeout=600)
    assert not burst.is_alive()
    assert len(run.acks) > 0, run.failures
    report = ledger(shop.access, shop.namespace, run)
    assert report.lost_orders == (), report.summary()
    assert report.lost_events == (), report.summary()
    assert report.duplicated == (), report.summary()
    print(f"{len(run.acks)} acknowledged of 300; failures: {dict(run.failures)}")
    for service in STATELESS:
        wait_for(
            f"{service} back to full strength",
            lambda s=service: (
                len(ready_pods(cluster.core, shop.namespace, f"app.kubernetes.io/name={s}")) >= 2
            ),
            180,
        )


def test_prometheus_has_the_gateway_request_rate(shop: Shop) -> None:
    order_burst(shop.ingress, count=20, concurrency=2)
    prom = PrometheusConnect(url=shop.prometheus, disable_ssl=True)

    def rate() -> list[object]:
        result = prom.custom_query('sum(rate(http_requests_total{service="gateway"}[1m]))')
        return [r for r in result if float(r["value"][1]) > 0]

    found = wait_for("a non-zero gateway request rate in Prometheus", rate, 120, poll=5)
    assert found


def test_the_ledger_catches_events_the_order_service_drops(cluster: Cluster, shop: Shop) -> None:
    def set_drop(enabled: bool) -> None:
        # The switch is on each order pod, not routed through the gateway.
        script = (
            "import json, urllib.request; urllib.request.urlopen(urllib.request.Request("
            "'http://127.0.0.1:8080/admin/drop-events', method='POST', "
            "headers={'Content-Type': 'application/json'}, "
            f"data=json.dumps({{'enabled': {enabled}}}).encode()), timeout=5)"
        )
        for pod in ready_pods(cluster.core, shop.namespace, "app.kubernetes.io/name=order"):
            exec_in(cluster.core, shop.namespace, pod.metadata.name, ["python3", "-c", script])

    set_drop(True)
    try:
        run = order_burst(shop.ingress, count=10, concurrency=2)
        assert run.acks, run.failures
        report = ledger(shop.access, shop.namespace, run, settle=20)
    finally:
        set_drop(False)
    assert not report.ok
    assert len(report.lost_events) >= len(run.acks), report.summary()
