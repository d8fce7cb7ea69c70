"""Reading the shop's database from the host: SQL run inside the MySQL pod with kubectl exec.

The database is not published on the host; running the client in its own pod needs no port
mapping and reads exactly what the shop committed.
"""

from __future__ import annotations

import time

from chaoskit.cluster.access import ClusterAccess
from chaoskit.errors import OperationFailed
from chaoskit.proc import capture
from chaoskit.topology.client import OrderRun
from chaoskit.topology.ledger import LedgerReport, StoredOrder, reconcile

MYSQL_POD = "mysql-0"
MYSQL_CONTAINER = "mariadb"
WRITER_SELECTOR = "app.kubernetes.io/name=mysql,chaoskit.io/galera-role=writer"
"""The Galera member that takes writes (topology ecommerce-ha); absent elsewhere."""


def database_pod(access: ClusterAccess, namespace: str) -> str:
    """The pod to read from: the Galera writer where there is one, else ``mysql-0``.

    Any Galera member would do (reads wait until the member has applied every earlier
    commit), but mysql-0 may be the member a fault just took away.
    """
    proc = capture(
        access.kubectl_cmd(
            "get",
            "pods",
            "-n",
            namespace,
            "-l",
            WRITER_SELECTOR,
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ),
        timeout=30,
    )
    names = proc.stdout.split() if proc.returncode == 0 else []
    return sorted(names)[0] if names else MYSQL_POD


TRANSIENT_RETRY_S = 90.0
"""Seconds ``query`` keeps retrying while the database pod cannot be reached (kubectl exec
fails while a fault restarts its container runtime, its container or the API server)."""


def query(access: ClusterAccess, namespace: str, sql: str, timeout: float = 60) -> list[list[str]]:
    """Rows of ``sql`` as lists of strings (tab-separated output of the mariadb client).

    A failing ``kubectl exec`` is retried for up to :data:`TRANSIENT_RETRY_S` seconds: right
    after a fault the pod's container may be between two lives; an SQL error is not retried.
    """
    deadline = time.monotonic() + TRANSIENT_RETRY_S
    while True:
        pod = database_pod(access, namespace)
        proc = capture(
            access.kubectl_cmd(
                "exec",
                "-n",
                namespace,
                pod,
                "-c",
                MYSQL_CONTAINER,
                "--",
                "mariadb",
                "--user=shop",
                "--password=shop",
                "--database=shop",
                "--batch",
                "--skip-column-names",
                "--execute",
                sql,
            ),
            timeout=timeout,
        )
        if proc.returncode == 0:
            return [line.split("\t") for line in proc.stdout.splitlines() if line]
        error = proc.stderr.strip()
        if error.startswith("ERROR ") or time.monotonic() > deadline:
            raise OperationFailed(f"query on {namespace}/{pod} failed: {error}")
        time.sleep(3)


def _key_filter(key_prefix: str) -> str:
    if not all(c.isalnum() or c == "-" for c in key_prefix):
        raise ValueError(f"key prefix {key_prefix!r}: letters, digits and '-' only")
    return f"o.idempotency_key LIKE '{key_prefix}%'"


def stored_orders(access: ClusterAccess, namespace: str, key_prefix: str) -> list[StoredOrder]:
    """The orders whose idempotency key starts with ``key_prefix`` (one client run)."""
    rows = query(
        access,
        namespace,
        f"SELECT o.id, o.idempotency_key FROM orders o WHERE {_key_filter(key_prefix)}",  # noqa: S608
    )
    return [StoredOrder(order_id=row[0], idempotency_key=row[1]) for row in rows]


def notified_order_ids(access: ClusterAccess, namespace: str, key_prefix: str) -> list[str]:
    """One entry per notification recorded for an order of that run."""
    rows = query(
        access,
        namespace,
        "SELECT n.order_id FROM notifications n JOIN orders o ON o.id = n.order_id "  # noqa: S608
        f"WHERE {_key_filter(key_prefix)}",
    )
    return [row[0] for row in rows]


def ledger(
    access: ClusterAccess, namespace: str, run: OrderRun, *, settle: float = 60
) -> LedgerReport:
    """Reconciles the orders ``run`` was told about with the database, once caught up.

    Events travel through Kafka after the commit, so a notification may lag its order; the
    ledger waits (up to ``settle`` seconds) until every stored order is notified or
    the deadline passes, then reports whatever is still missing as lost.
    """
    deadline = time.monotonic() + settle
    while True:
        report = reconcile(
            run.acks,
            stored_orders(access, namespace, run.run_id),
            notified_order_ids(access, namespace, run.run_id),
        )
        if not report.lost_events or time.monotonic() >= deadline:
            return report
        time.sleep(2)
