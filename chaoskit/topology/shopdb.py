"""Reading the shop's database from the host: SQL run inside the MySQL pod with kubectl exec.

The database is not published on the host; running the client in its own pod needs no port
mapping and reads exactly what the shop committed.
"""

from __future__ import annotations

import time

from chaoskit.cluster.access import ClusterAccess
from chaoskit.errors import OperationFailed
from chaoskit.proc import capture
from chaoskit.topology.client import OrderRun, key_prefix, owns_key
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


LIKE_ESCAPE = "!"


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching what starts with ``prefix``, its wildcards escaped."""
    escaped = "".join(f"{LIKE_ESCAPE}{c}" if c in f"%_{LIKE_ESCAPE}" else c for c in prefix)
    return f"{escaped}%"


def key_filter(run_id: str, column: str = "o.idempotency_key") -> str:
    """SQL narrowing ``column`` to the keys of ``run_id`` (with the index on the keys).

    The LIKE is only a filter: the table's collation may ignore case, so callers keep the
    rows whose key :func:`~chaoskit.topology.client.owns_key` exactly.
    """
    if not run_id or not all(c.isascii() and (c.isalnum() or c == "-") for c in run_id):
        raise ValueError(f"run id {run_id!r}: letters, digits and '-' only")
    return f"{column} LIKE '{like_prefix(key_prefix(run_id))}' ESCAPE '{LIKE_ESCAPE}'"


def stored_orders(access: ClusterAccess, namespace: str, run_id: str) -> list[StoredOrder]:
    """The orders whose idempotency key belongs to ``run_id`` (one client run)."""
    rows = query(
        access,
        namespace,
        f"SELECT o.id, o.idempotency_key FROM orders o WHERE {key_filter(run_id)}",  # noqa: S608
    )
    return [
        StoredOrder(order_id=row[0], idempotency_key=row[1])
        for row in rows
        if owns_key(run_id, row[1])
    ]


def notified_order_ids(access: ClusterAccess, namespace: str, run_id: str) -> list[str]:
    """One entry per notification recorded for an order of that run."""
    rows = query(
        access,
        namespace,
        "SELECT n.order_id, o.idempotency_key FROM notifications n "  # noqa: S608
        f"JOIN orders o ON o.id = n.order_id WHERE {key_filter(run_id)}",
    )
    return [row[0] for row in rows if owns_key(run_id, row[1])]


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
