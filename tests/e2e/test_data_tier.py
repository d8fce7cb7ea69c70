"""The replicated data tier (topology ``ecommerce-ha``) as its users see it: three Galera
members behind one writer Service, three Kafka brokers with replicated order topics, and
no acknowledged order lost or duplicated when a member, a broker or their node dies under
a burst of orders. One test proves that the ledger does catch a loss when the data tier is
deliberately made unsafe.

The module deploys ``ecommerce-ha`` over whatever the namespace ``shop`` held (deploy
replaces another topology); the ``shop`` fixture of later modules deploys the default one
back. The node-loss tests need kind-config.yaml (3 control planes + 2 workers): one member
per node, none on the node that publishes the ports.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from chaoskit.cluster.access import access
from chaoskit.settings import Settings
from chaoskit.topology import datatier
from chaoskit.topology.catalog import ECOMMERCE_HA
from chaoskit.topology.client import OrderRun, order_burst
from chaoskit.topology.deploy import endpoints
from chaoskit.topology.shopdb import ledger
from tests.e2e.harness import Cluster, Shop, chaoskit
from tests.e2e.workloads import ready_pods, wait_for

NAMESPACE = ECOMMERCE_HA.namespace


@pytest.fixture(scope="module")
def shop_ha(cluster: Cluster) -> Shop:
    proc = chaoskit("deploy", "--name", cluster.name, "--topology", ECOMMERCE_HA.name, timeout=3600)
    assert proc.returncode == 0, f"chaoskit deploy failed:\n{proc.stdout}\n{proc.stderr}"
    cluster_access = access(Settings.from_env(), cluster.name)
    urls = endpoints(cluster_access, ECOMMERCE_HA)
    return Shop(access=cluster_access, ingress=urls.ingress, prometheus=urls.prometheus)


def sql(cluster: Cluster, pod: str, statement: str) -> str:
    """Runs SQL as root through the member's local socket; its tab-separated output."""
    return datatier.exec_output(
        cluster.api,
        NAMESPACE,
        pod,
        "mariadb",
        ["mariadb", "--user=root", "--batch", "--skip-column-names", f"--execute={statement}"],
    )


def writer(cluster: Cluster) -> Any:
    pod = datatier.galera_writer(cluster.api, NAMESPACE)
    assert pod is not None, "no Galera member is labelled writer"
    return pod


def wait_data_tier_ready(cluster: Cluster, timeout: float = 420) -> None:
    """Three Ready members with one writer, three Ready brokers."""

    def ready() -> bool:
        members = ready_pods(cluster.core, NAMESPACE, datatier.GALERA_SELECTOR)
        brokers = ready_pods(cluster.core, NAMESPACE, datatier.KAFKA_SELECTOR)
        writers = ready_pods(cluster.core, NAMESPACE, datatier.GALERA_WRITER_SELECTOR)
        return len(members) == 3 and len(brokers) == 3 and len(writers) == 1

    wait_for("3 Galera members (1 writer) and 3 Kafka brokers Ready", ready, timeout, poll=2)


@dataclass
class Outcome:
    run: OrderRun
    experiment: Any
    seconds: float


def burst_during(shop: Shop, cluster: Cluster, experiment: str, count: int = 400) -> Outcome:
    """Runs ``experiment`` with ``chaoskit run`` while a burst of orders is under way."""
    run = OrderRun()
    burst = threading.Thread(
        target=order_burst,
        args=(shop.ingress,),
        kwargs={"count": count, "concurrency": 6, "run": run},
    )
    started = time.monotonic()
    burst.start()
    time.sleep(3)
    proc = chaoskit("run", f"experiments/{experiment}", "--cluster", cluster.name, timeout=1200)
    burst.join(timeout=900)
    assert not burst.is_alive(), "the burst did not finish"
    return Outcome(run, proc, time.monotonic() - started)


def assert_nothing_lost(shop: Shop, outcome: Outcome) -> None:
    proc = outcome.experiment
    assert proc.returncode == 0, f"experiment failed:\n{proc.stdout}\n{proc.stderr}"
    assert len(outcome.run.acks) > 0, outcome.run.failures
    report = ledger(shop.access, shop.namespace, outcome.run)
    assert report.lost_orders == (), report.summary()
    assert report.duplicated == (), report.summary()
    assert report.ok, report.summary()


def needs_node_per_member(cluster: Cluster) -> None:
    if len(cluster.core.list_node().items) < 5:
        pytest.skip("node loss needs kind-config.yaml (3 control planes + 2 workers)")


def test_the_data_tier_is_three_galera_members_and_three_brokers(
    cluster: Cluster, shop_ha: Shop
) -> None:
    wait_data_tier_ready(cluster)
    member = writer(cluster)
    status = sql(
        cluster,
        member.metadata.name,
        "SHOW GLOBAL STATUS WHERE Variable_name IN "
        "('wsrep_cluster_size', 'wsrep_cluster_status', 'wsrep_local_state_comment')",
    )
    assert dict(line.split("\t") for line in status.strip().splitlines()) == {
        "wsrep_cluster_size": "3",
        "wsrep_cluster_status": "Primary",
        "wsrep_local_state_comment": "Synced",
    }
    # The writers' Service routes to the writer and nothing else.
    slices = client.DiscoveryV1Api(cluster.api).list_namespaced_endpoint_slice(
        NAMESPACE, label_selector="kubernetes.io/service-name=mysql"
    )
    addresses = {a for s in slices.items for e in s.endpoints or [] for a in e.addresses}
    assert addresses == {member.status.pod_ip}
    topic = datatier.exec_output(
        cluster.api,
        NAMESPACE,
        "kafka-0",
        "kafka",
        ["kafka-topics", "--bootstrap-server", "localhost:9092", "--describe", "--topic", "orders"],
    )
    assert "ReplicationFactor: 3" in topic and "min.insync.replicas=2" in topic, topic
    isr = re.findall(r"Isr: ([0-9,]+)", topic)
    assert isr and all(len(entry.split(",")) == 3 for entry in isr), topic
    nodes = {p.spec.node_name for p in ready_pods(cluster.core, NAMESPACE, datatier.KAFKA_SELECTOR)}
    if len(cluster.core.list_node().items) >= 5:
        assert len(nodes) == 3, f"brokers share nodes: {nodes}"


def test_deleting_the_galera_writer_during_a_burst_loses_no_order(
    cluster: Cluster, shop_ha: Shop
) -> None:
    wait_data_tier_ready(cluster)
    before = writer(cluster).metadata.name
    outcome = burst_during(shop_ha, cluster, "galera-kill-writer.yaml")
    assert_nothing_lost(shop_ha, outcome)
    assert f"pod-kill: pod {before}" in outcome.experiment.stdout


def test_deleting_a_kafka_broker_during_a_burst_loses_no_order_or_event(
    cluster: Cluster, shop_ha: Shop
) -> None:
    wait_data_tier_ready(cluster)
    outcome = burst_during(shop_ha, cluster, "kafka-kill-broker.yaml")
    assert_nothing_lost(shop_ha, outcome)


def test_stopping_the_galera_writers_node_during_a_burst_loses_no_order(
    cluster: Cluster, shop_ha: Shop
) -> None:
    needs_node_per_member(cluster)
    wait_data_tier_ready(cluster)
    node = writer(cluster).spec.node_name
    outcome = burst_during(shop_ha, cluster, "galera-stop-writer-node.yaml")
    assert_nothing_lost(shop_ha, outcome)
    assert f"node {node}" in outcome.experiment.stdout


def test_stopping_the_kafka_controller_leaders_node_during_a_burst_loses_no_order(
    cluster: Cluster, shop_ha: Shop
) -> None:
    needs_node_per_member(cluster)
    wait_data_tier_ready(cluster)
    outcome = burst_during(shop_ha, cluster, "kafka-stop-controller-leader-node.yaml")
    assert_nothing_lost(shop_ha, outcome)


def test_a_victim_selector_that_finds_no_member_fails_clearly(
    cluster: Cluster, shop_ha: Shop
) -> None:
    proc = chaoskit(
        "faults",
        "plan",
        "node-stop",
        "--cluster",
        cluster.name,
        "--set",
        f"holding={NAMESPACE}/app.kubernetes.io/name=mysql,chaoskit.io/galera-role=nobody",
        timeout=120,
    )
    assert proc.returncode != 0
    assert "no node runs a pod matching" in proc.stderr + proc.stdout


def destroy_member(cluster: Cluster, name: str) -> None:
    """Deletes a Galera member's volume claim and pod at once (its disk is gone)."""
    core = cluster.core
    try:
        core.delete_namespaced_persistent_volume_claim(f"data-{name}", NAMESPACE)
    except client.ApiException as e:
        if e.status != 404:
            raise
    try:
        core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
    except client.ApiException as e:
        if e.status != 404:
            raise


def rebuild_member(cluster: Cluster, name: str, old_claim_uid: str) -> None:
    """Waits until the destroyed member is back, rebuilt from its peers (SST).

    A replacement pod made while the old claim was still being deleted waits for that
    claim forever: it is deleted once more, and the StatefulSet makes a claim and a pod.
    """
    core = cluster.core

    def claim_gone() -> bool:
        try:
            claim = core.read_namespaced_persistent_volume_claim(f"data-{name}", NAMESPACE)
        except client.ApiException as e:
            if e.status == 404:
                return True
            raise
        return bool(claim.metadata.uid != old_claim_uid)

    wait_for(f"the old volume claim of {name} to be deleted", claim_gone, 120, poll=1)
    time.sleep(5)
    try:
        pod = core.read_namespaced_pod(name, NAMESPACE)
        if pod.status.phase == "Pending":
            core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
    except client.ApiException as e:
        if e.status != 404:
            raise
    wait_data_tier_ready(cluster, timeout=600)


UNREPLICATED = "mysql.chaoskit_unreplicated"


@pytest.fixture
def unreplicated_writer(cluster: Cluster, shop_ha: Shop) -> Iterator[str]:
    """The writer with replication switched off for the shop's sessions, which are cut so
    that the shop reconnects into that; afterwards the member is destroyed with its volume
    and rebuilt from its peers, and the cluster must be whole again.

    ``SET GLOBAL wsrep_on = OFF`` would not do: the member then stops being ready, and the
    writer moves to a member that replicates. A session switch keeps the member Synced and
    the writer, so it acknowledges commits that only it has, as an asynchronous primary
    does. The shop's user may not set wsrep_on itself: ``init_connect`` calls a procedure
    that runs with root's rights.
    """
    wait_data_tier_ready(cluster)
    name = writer(cluster).metadata.name
    claim = cluster.core.read_namespaced_persistent_volume_claim(f"data-{name}", NAMESPACE)
    sql(
        cluster,
        name,
        f"CREATE OR REPLACE DEFINER = 'root'@'localhost' PROCEDURE {UNREPLICATED}() "
        "SQL SECURITY DEFINER SET SESSION wsrep_on = OFF; "
        f"GRANT EXECUTE ON PROCEDURE {UNREPLICATED} TO 'shop'@'%'; "
        f"SET GLOBAL init_connect = 'CALL {UNREPLICATED}()'",
    )
    ids = sql(
        cluster,
        name,
        "SELECT IFNULL(GROUP_CONCAT(ID), '') FROM information_schema.PROCESSLIST "
        "WHERE USER = 'shop'",
    ).strip()
    for session in filter(None, ids.split(",")):
        sql(cluster, name, f"KILL {int(session)}")
    try:
        yield name
    finally:
        destroy_member(cluster, name)
        rebuild_member(cluster, name, claim.metadata.uid)
        sql(cluster, writer(cluster).metadata.name, f"DROP PROCEDURE IF EXISTS {UNREPLICATED}")


def test_unreplicated_writes_are_lost_with_their_member_and_the_ledger_says_so(
    cluster: Cluster, shop_ha: Shop, unreplicated_writer: str
) -> None:
    """The unsafe setting: the writer commits without replicating (the shop's sessions
    have wsrep_on=OFF, as an asynchronous primary acknowledges before shipping), then it
    dies with its disk. Clients were told their orders succeeded; the member that takes
    over never had them."""
    run = order_burst(shop_ha.ingress, count=30, concurrency=3)
    assert len(run.acks) >= 20, run.failures
    destroy_member(cluster, unreplicated_writer)

    def new_writer() -> bool:
        pod = datatier.galera_writer(cluster.api, NAMESPACE)
        return pod is not None and pod.metadata.name != unreplicated_writer

    wait_for("another member to become the writer", new_writer, 90, poll=1)
    report = ledger(shop_ha.access, shop_ha.namespace, run, settle=5)
    assert not report.ok
    # Every acknowledged order the writer took while unreplicated is gone with it; how
    # many that is depends on how the burst's sessions were spread (some may reach the
    # new writer once the old one is failing), so: some lost, and each one accounted for.
    assert report.lost_orders, report.summary()
    kept = report.stored - len(report.orphaned)
    assert len(report.lost_orders) + kept == report.acknowledged, report.summary()
