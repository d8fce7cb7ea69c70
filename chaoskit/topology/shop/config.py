"""Settings of a shop service, read once from the environment.

Every name and default is the topology contract's; a Deployment overrides what differs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

SERVICES = ("gateway", "product", "order", "payment", "notification")


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={value}: must be >= {minimum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: not a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value}: must be between {low} and {high}")
    return value


@dataclass(frozen=True)
class Settings:
    service: str
    """Which service this process runs (SERVICE_NAME, else the command-line argument)."""
    port: int = 8080

    mysql_host: str = "mysql"
    mysql_port: int = 3306
    mysql_user: str = "shop"
    mysql_password: str = "shop"  # noqa: S105 - the contract's test credentials
    mysql_database: str = "shop"
    db_pool_size: int = 10
    """Most MySQL connections one process holds at once (idle ones are kept for reuse)."""

    kafka_bootstrap: str = "kafka:9092"
    orders_topic: str = "orders"
    kafka_replication_factor: int = 1
    orders_partitions: int = 6

    product_url: str = "http://product:8080"
    order_url: str = "http://order:8080"
    payment_url: str = "http://payment:8080"

    payment_latency_ms: int = 20
    payment_failure_rate: float = 0.0
    flash_sale_stock: int = 1_000_000
    """Stock of the flash-sale product 'flash-1' when the schema is first created."""

    backend_timeout_s: float = 2.0
    """The gateway's (and the order service's) time limit for one call to a backend."""
    backend_attempts: int = 3
    """Tries per gateway call when a retry is safe (GET, or an Idempotency-Key was sent)."""

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return cls(
            service=e.get("SERVICE_NAME", "").strip() or service,
            port=_int(e, "PORT", 8080, 1),
            mysql_host=e.get("MYSQL_HOST", "mysql"),
            mysql_port=_int(e, "MYSQL_PORT", 3306, 1),
            mysql_user=e.get("MYSQL_USER", "shop"),
            mysql_password=e.get("MYSQL_PASSWORD", "shop"),
            mysql_database=e.get("MYSQL_DATABASE", "shop"),
            db_pool_size=_int(e, "DB_POOL_SIZE", 10, 1),
            kafka_bootstrap=e.get("KAFKA_BOOTSTRAP", "kafka:9092"),
            orders_topic=e.get("ORDERS_TOPIC", "orders"),
            kafka_replication_factor=_int(e, "KAFKA_REPLICATION_FACTOR", 1, 1),
            orders_partitions=_int(e, "ORDERS_PARTITIONS", 6, 1),
            product_url=e.get("PRODUCT_URL", "http://product:8080").rstrip("/"),
            order_url=e.get("ORDER_URL", "http://order:8080").rstrip("/"),
            payment_url=e.get("PAYMENT_URL", "http://payment:8080").rstrip("/"),
            payment_latency_ms=_int(e, "PAYMENT_LATENCY_MS", 20, 0),
            payment_failure_rate=_float(e, "PAYMENT_FAILURE_RATE", 0.0, 0.0, 1.0),
            flash_sale_stock=_int(e, "FLASH_SALE_STOCK", 1_000_000, 0),
            backend_timeout_s=_float(e, "BACKEND_TIMEOUT_S", 2.0, 0.05, 60.0),
            backend_attempts=_int(e, "BACKEND_ATTEMPTS", 3, 1),
        )
