"""The replicated data tier (topology ``ecommerce-ha``) as its users see it: three Galera
members behind one writer Service, three Kafka brokers with replicated order topics, and
no acknowledged order lost or duplicated when the writer is deleted, or the writer or the
Kafka controller leader's broker is cut off from its peers, under a burst of orders
(Jepsen-style: the cut-off writer refuses writes, no split brain). Two tests prove that the
ledger does catch a loss when the data tier is deliberately made unsafe.

The module deploys ``ecommerce-ha`` over whatever the namespace ``shop`` held (deploy
replaces another topology); tests/conftest.py runs it after every other e2e module, so
that the heavier topology is deployed once, last, and burdens no other test. Each fault
once in CI: node stops run in test_example_kvstore.py; the data tier's own (the Galera
writer's node, the Kafka controller leader's) and a broker deleted run in
suites/data-tier.yaml (``benchmarks/suite_bench.py --suite ...``). On kind-config.yaml
(3 control planes + 2 workers) the members run one per node, none on the node that
publishes the ports.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from chaoskit.cluster.access import access
from chaoskit.settings import Settings
from chaoskit.topology import datatier
from chaoskit.topology.catalog import ECOMMERCE_HA
from chaoskit.topology.client import OrderRun, order_burst, place_order
from chaoskit.topology.deploy import endpoints
from chaoskit.topology.shopdb import key_filter, ledger
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


def orders_during(
    shop: Shop, cluster: Cluster, experiment: str, *, hold: float = 20, workers: int = 4
) -> Outcome:
    """Runs ``experiment`` with ``chaoskit run`` while ``workers`` clients place orders, one
    after another with a short pause, from 3 s before it starts until 3 s after it ends
    (a partition is held for a while: a fixed burst would be over before it bites)."""
    run = OrderRun()
    stop = threading.Event()

    def client_loop() -> None:
        while not stop.is_set():
            ack, failure = place_order(shop.ingress, key=run.key())
            run.record(ack, failure)
            stop.wait(0.2)

    clients = [threading.Thread(target=client_loop, daemon=True) for _ in range(workers)]
    started = time.monotonic()
    for thread in clients:
        thread.start()
    try:
        time.sleep(3)
        proc = chaoskit(
            "run",
            f"experiments/{experiment}",
            "--cluster",
            cluster.name,
            "--var",
            f"hold={hold:g}",
            timeout=1200,
        )
        time.sleep(3)
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in clients), "an order client did not stop"
    return Outcome(run, proc, time.monotonic() - started)


def assert_nothing_lost(shop: Shop, outcome: Outcome) -> None:
    proc = outcome.experiment
    assert proc.returncode == 0, f"experiment failed:\n{proc.stdout}\n{proc.stderr}"
    assert len(outcome.run.acks) > 0, outcome.run.failures
    report = ledger(shop.access, shop.namespace, outcome.run)
    assert report.lost_orders == (), report.summary()
    assert report.duplicated == (), report.summary()
    assert report.ok, report.summary()


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
    # Every member's shop sessions are cut, not only the writer's: a pooled connection
    # opened while an earlier test had made another member the writer still writes there,
    # replicated, and would keep those orders alive.
    for member in ready_pods(cluster.core, NAMESPACE, datatier.GALERA_SELECTOR):
        ids = sql(
            cluster,
            member.metadata.name,
            "SELECT IFNULL(GROUP_CONCAT(ID), '') FROM information_schema.PROCESSLIST "
            "WHERE USER = 'shop'",
        ).strip()
        for session in filter(None, ids.split(",")):
            sql(cluster, member.metadata.name, f"KILL {int(session)}")
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
    peers = [
        p.metadata.name
        for p in ready_pods(cluster.core, NAMESPACE, datatier.GALERA_SELECTOR)
        if p.metadata.name != unreplicated_writer
    ]
    on_peer = sql(
        cluster,
        peers[0],
        f"SELECT COUNT(*) FROM shop.orders o WHERE {key_filter(run.run_id)}",
    ).strip()
    assert on_peer == "0", (
        f"{on_peer} of the burst's orders reached {peers[0]}: the writes were replicated, "
        "so the unsafe setting did not take"
    )
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


# ------------------------------------------------------------------------- partitions (issue 15)

PROBE_TABLE = "chaoskit_probe.writes"


@dataclass
class MemberWatch:
    """What one Galera member said each second while a partition ran: its component status,
    the size of its component, and whether a write of its own went through ("ok") or was
    refused (the error)."""

    member: str
    seen: list[tuple[str, int, str]]

    def writes(self, status: str, size: int | None = None) -> list[str]:
        return [w for st, n, w in self.seen if st == status and size in (None, n)]


def probe_write(cluster: Cluster, member: str) -> str:
    """One row written straight into ``member`` (not through the Service); "ok" or the error."""
    out = sql(cluster, member, f"INSERT INTO {PROBE_TABLE} (member) VALUES ('{member}')")
    return "ok" if not out.strip() else out.strip().splitlines()[-1]


@contextmanager
def watch_member(cluster: Cluster, member: str) -> Iterator[MemberWatch]:
    """Polls ``member`` every second (through the API, not the pod network) until the block
    ends: wsrep_cluster_status, and a probe write into it."""
    sql(
        cluster,
        member,
        "CREATE DATABASE IF NOT EXISTS chaoskit_probe; CREATE TABLE IF NOT EXISTS "
        f"{PROBE_TABLE} (id INT AUTO_INCREMENT PRIMARY KEY, member VARCHAR(64) NOT NULL)",
    )
    watch = MemberWatch(member, [])
    done = threading.Event()

    def poll() -> None:
        while not done.wait(1):
            try:
                out = sql(
                    cluster,
                    member,
                    "SET SESSION wsrep_sync_wait = 0; SHOW GLOBAL STATUS WHERE Variable_name "
                    "IN ('wsrep_cluster_status', 'wsrep_cluster_size')",
                )
                status = dict(line.split("\t", 1) for line in out.strip().splitlines())
                size = int(status.get("wsrep_cluster_size", "0"))
                state = status.get("wsrep_cluster_status", "?")
                watch.seen.append((state, size, probe_write(cluster, member)))
            except Exception as e:  # noqa: BLE001 - the pod between two lives: recorded
                watch.seen.append(("unreachable", 0, str(e)[:200]))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        yield watch
    finally:
        done.set()
        poller.join(timeout=120)


def drop_probe(cluster: Cluster) -> None:
    sql(cluster, writer(cluster).metadata.name, "DROP DATABASE IF EXISTS chaoskit_probe")


def test_the_galera_writer_partitioned_from_its_peers_stops_taking_writes_and_loses_no_order(
    cluster: Cluster, shop_ha: Shop
) -> None:
    """Jepsen-style: the writer is cut off from the other two members while clients still
    reach it. Quorum must stop it taking writes (one of three is no primary component), the
    other two go on with a new writer, and the burst's ledger is clean after the heal."""
    wait_data_tier_ready(cluster)
    old = writer(cluster).metadata.name
    try:
        with watch_member(cluster, old) as watch:
            outcome = orders_during(shop_ha, cluster, "galera-partition-writer.yaml")
        assert_nothing_lost(shop_ha, outcome)
        assert f"network-partition: pod {old}" in outcome.experiment.stdout, outcome.experiment
        refused = watch.writes("non-Primary", 1)
        # Refused: 1047 (not prepared for use) mostly; a write already under way when the
        # component was lost fails at commit (1180) instead.
        assert refused, watch.seen
        assert all(write.startswith("ERROR") for write in refused), [
            write for write in refused if not write.startswith("ERROR 1047")
        ]
        assert "ok" in watch.writes("Primary"), watch.seen  # it took writes before and after
        wait_data_tier_ready(cluster)
        # No split brain: every member holds the same probe rows (those of the primary).
        counts = {
            pod.metadata.name: sql(
                cluster, pod.metadata.name, f"SELECT COUNT(*) FROM {PROBE_TABLE}"
            )
            for pod in ready_pods(cluster.core, NAMESPACE, datatier.GALERA_SELECTOR)
        }
        assert len(set(counts.values())) == 1, counts
    finally:
        drop_probe(cluster)


def test_the_kafka_controller_leaders_broker_partitioned_loses_no_order_or_event(
    cluster: Cluster, shop_ha: Shop
) -> None:
    wait_data_tier_ready(cluster)
    before = datatier.kafka_controller_leader(cluster.api, NAMESPACE)
    outcome = orders_during(shop_ha, cluster, "kafka-partition-controller-leader.yaml")
    assert_nothing_lost(shop_ha, outcome)
    assert f"network-partition: pod {before}" in outcome.experiment.stdout, outcome.experiment


@pytest.fixture
def split_brain_allowed(cluster: Cluster, shop_ha: Shop) -> Iterator[str]:
    """The unsafe setting: ``pc.ignore_quorum=TRUE`` on every member, so that a component
    that lost quorum carries on as a primary one (``pc.ignore_sb`` would not do: it covers
    only a split into halves of equal weight; 1 of 3 still stops). Yields the writer;
    afterwards the setting is switched off, that member (the minority of the partition) is
    destroyed with its volume and rebuilt from the other two, and the cluster must be whole
    again."""
    wait_data_tier_ready(cluster)
    members = [
        p.metadata.name for p in ready_pods(cluster.core, NAMESPACE, datatier.GALERA_SELECTOR)
    ]
    name = writer(cluster).metadata.name
    claim = cluster.core.read_namespaced_persistent_volume_claim(f"data-{name}", NAMESPACE)
    for member in members:
        sql(cluster, member, "SET GLOBAL wsrep_provider_options = 'pc.ignore_quorum=TRUE'")
    try:
        yield name
    finally:
        for member in members:
            with suppress(client.ApiException):  # gone: rebuilt below, or back without it
                sql(cluster, member, "SET GLOBAL wsrep_provider_options = 'pc.ignore_quorum=FALSE'")
        destroy_member(cluster, name)
        rebuild_member(cluster, name, claim.metadata.uid)
        drop_probe(cluster)


def test_with_split_brain_allowed_the_partitioned_writer_takes_writes_and_orders_are_lost(
    cluster: Cluster, shop_ha: Shop, split_brain_allowed: str
) -> None:
    """The partition experiment against the unsafe setting: the cut-off writer stays a
    primary component of one and keeps acknowledging the orders of the shop's sessions
    on it, while the other two go on without them. The split can only be resolved by
    throwing one side away: the minority is rebuilt from the majority, and the ledger must
    name the orders that were acknowledged and are gone."""
    with watch_member(cluster, split_brain_allowed) as watch:
        outcome = orders_during(shop_ha, cluster, "galera-partition-writer.yaml")
    assert "ok" in watch.writes("Primary", 1), watch.seen  # split brain: it took writes alone
    destroy_member(cluster, split_brain_allowed)

    def new_writer() -> bool:
        pod = datatier.galera_writer(cluster.api, NAMESPACE)
        return pod is not None and pod.metadata.name != split_brain_allowed

    wait_for("another member to be the writer", new_writer, 90, poll=1)
    report = ledger(shop_ha.access, shop_ha.namespace, outcome.run, settle=5)
    print(f"split brain: {report.summary()}")
    assert not report.ok
    assert report.lost_orders, report.summary()
    kept = report.stored - len(report.orphaned)
    assert len(report.lost_orders) + kept == report.acknowledged, report.summary()
