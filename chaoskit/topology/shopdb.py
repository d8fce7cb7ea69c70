"""Reading the shop's database from the host: SQL run inside the MySQL pod with kubectl exec.

The database is not published on the host; running the client in its own pod needs no port
mapping and reads exactly what the shop committed.
"""

from __future__ import annotations

from chaoskit.cluster.access import ClusterAccess
from chaoskit.errors import OperationFailed
from chaoskit.proc import capture
from chaoskit.topology.ledger import StoredOrder

MYSQL_POD = "mysql-0"
MYSQL_CONTAINER = "mysql"


def query(access: ClusterAccess, namespace: str, sql: str, timeout: float = 60) -> list[list[str]]:
    """Rows of ``sql`` as lists of strings (tab-separated output of the mariadb client)."""
    proc = capture(
        access.kubectl_cmd(
            "exec",
            "-n",
            namespace,
            MYSQL_POD,
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
    if proc.returncode != 0:
        raise OperationFailed(f"query on {namespace}/{MYSQL_POD} failed: {proc.stderr.strip()}")
    return [line.split("\t") for line in proc.stdout.splitlines() if line]


def stored_orders(access: ClusterAccess, namespace: str) -> list[StoredOrder]:
    rows = query(access, namespace, "SELECT id, idempotency_key FROM orders")
    return [StoredOrder(order_id=row[0], idempotency_key=row[1]) for row in rows]


def notified_order_ids(access: ClusterAccess, namespace: str) -> list[str]:
    return [row[0] for row in query(access, namespace, "SELECT order_id FROM notifications")]
