"""MySQL access for the shop services: a small connection pool and the schema.

Connections are reused while they work and thrown away at the first connection-level
error; the next request opens a new one, so a restarted or failed-over database is picked
up without restarting the service. Every connection has short connect, read, write and
lock-wait timeouts, so a request never hangs on a database that does not answer: it fails
with :class:`DatabaseUnavailable` (HTTP 503).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeAlias

import pymysql
from pymysql.connections import Connection
from pymysql.cursors import DictCursor

from .config import Settings
from .web import ApiError

log = logging.getLogger(__name__)

SCHEMA_FILE = Path(__file__).with_name("schema.sql")
SCHEMA_LOCK = "shop_schema"
IDLE_CHECK_S = 1.0
"""A pooled connection idle for longer than this is pinged before it is handed out (one
round trip), so that a restarted database costs no request its stale connection."""
DUPLICATE_KEY = 1062

DbConnection: TypeAlias = "Connection[DictCursor]"  # generic only in the type stubs


class DatabaseUnavailable(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(503, "database_unavailable", message)


def is_duplicate_key(exc: BaseException) -> bool:
    return (
        isinstance(exc, pymysql.err.IntegrityError)
        and bool(exc.args)
        and exc.args[0] == DUPLICATE_KEY
    )


class Database:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: queue.LifoQueue[tuple[DbConnection, float]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(settings.db_pool_size)

    def connect(self) -> DbConnection:
        """A new connection (not from the pool), for long-lived users like the relay."""
        s = self.settings
        try:
            return pymysql.connect(
                host=s.mysql_host,
                port=s.mysql_port,
                user=s.mysql_user,
                password=s.mysql_password,
                database=s.mysql_database,
                charset="utf8mb4",
                cursorclass=DictCursor,
                autocommit=False,
                connect_timeout=2,
                read_timeout=10,
                write_timeout=10,
                init_command="SET SESSION innodb_lock_wait_timeout = 5",
            )
        except pymysql.err.MySQLError as exc:
            raise DatabaseUnavailable(
                f"cannot connect to {s.mysql_host}:{s.mysql_port}: {exc}"
            ) from exc

    def _checkout(self) -> DbConnection:
        while True:
            try:
                conn, idle_since = self._idle.get_nowait()
            except queue.Empty:
                return self.connect()
            if time.monotonic() - idle_since < IDLE_CHECK_S:
                return conn
            try:
                conn.ping(reconnect=False)
            except pymysql.err.MySQLError:
                _close_quietly(conn)
                continue
            return conn

    @contextmanager
    def connection(self) -> Iterator[DbConnection]:
        """A pooled connection; given back on success, closed after a connection error."""
        if not self._slots.acquire(timeout=2.0):
            raise DatabaseUnavailable("all database connections are busy")
        try:
            conn = self._checkout()
            try:
                yield conn
            except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
                _close_quietly(conn)
                raise DatabaseUnavailable(f"database error: {exc}") from exc
            except BaseException:
                self._give_back(conn, rollback=True)
                raise
            self._give_back(conn, rollback=False)
        finally:
            self._slots.release()

    def _give_back(self, conn: DbConnection, rollback: bool) -> None:
        if rollback:
            try:
                conn.rollback()
            except (pymysql.err.MySQLError, OSError):
                _close_quietly(conn)
                return
        self._idle.put((conn, time.monotonic()))

    @contextmanager
    def transaction(self) -> Iterator[DictCursor]:
        """A cursor in a transaction: committed when the block ends, rolled back on error."""
        with self.connection() as conn, conn.cursor() as cursor:
            yield cursor
            conn.commit()

    def ping(self) -> bool:
        try:
            with self.transaction() as cursor:
                cursor.execute("SELECT 1")
        except ApiError:
            return False
        return True

    def apply_schema(self, flash_sale_stock: int) -> None:
        """Creates the tables and seed rows if missing; safe to run from every replica."""
        statements = split_sql(SCHEMA_FILE.read_text(encoding="utf-8"))
        with self.connection() as conn, conn.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 30) AS locked", (SCHEMA_LOCK,))
            row = cursor.fetchone()
            if not row or row["locked"] != 1:
                raise DatabaseUnavailable("timed out waiting for the schema lock")
            try:
                cursor.execute("SET @flash_sale_stock = %s", (flash_sale_stock,))
                for statement in statements:
                    cursor.execute(statement)
                conn.commit()
            finally:
                cursor.execute("SELECT RELEASE_LOCK(%s)", (SCHEMA_LOCK,))
        log.info("schema applied (%d statements)", len(statements))


def split_sql(text: str) -> list[str]:
    """Statements of a schema file: ``--`` comments dropped, split at ``;`` ending a line."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    parts = re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE)
    return [p.strip() for p in parts if p.strip()]


def _close_quietly(conn: DbConnection) -> None:
    with suppress(pymysql.err.MySQLError, OSError):
        conn.close()
