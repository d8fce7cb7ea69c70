"""Idempotency keys, request bodies and settings of the shop services."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chaoskit.topology.shop.config import ConfigError, Settings
from chaoskit.topology.shop.models import (
    OrderRequest,
    StoredOrder,
    replay,
    require_idempotency_key,
)
from chaoskit.topology.shop.web import ApiError


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_a_missing_idempotency_key_is_a_400(raw: str | None) -> None:
    with pytest.raises(ApiError) as caught:
        require_idempotency_key(raw)
    assert caught.value.status == 400
    assert caught.value.error == "idempotency_key_required"


@pytest.mark.parametrize("raw", ["has space", "x" * 129, "-leading-dash", "semi;colon", "ü"])
def test_a_malformed_idempotency_key_is_a_400(raw: str) -> None:
    with pytest.raises(ApiError) as caught:
        require_idempotency_key(raw)
    assert caught.value.status == 400
    assert caught.value.error == "invalid_idempotency_key"


@pytest.mark.parametrize(
    "raw", ["k1", "3f2b1c9e-6a8d-4c2e-9f7a-1b2c3d4e5f60", "client-7:42", "a" * 128]
)
def test_good_idempotency_keys_pass(raw: str) -> None:
    assert require_idempotency_key(f" {raw} ") == raw


def _stored(product_id: str = "sku-1", quantity: int = 2) -> StoredOrder:
    return StoredOrder("o1", "k1", product_id, quantity, 1998, "confirmed", "2026-11-24T10:00:00")


def test_a_retry_with_the_same_key_and_body_gets_the_stored_order() -> None:
    stored = _stored()
    assert replay(stored, OrderRequest(product_id="sku-1", quantity=2)) is stored
    assert stored.body(replayed=True)["replayed"] is True
    assert stored.body()["order_id"] == "o1"


@pytest.mark.parametrize(("product_id", "quantity"), [("sku-2", 2), ("sku-1", 3)])
def test_a_key_reused_for_another_order_is_a_409(product_id: str, quantity: int) -> None:
    with pytest.raises(ApiError) as caught:
        replay(_stored(), OrderRequest(product_id=product_id, quantity=quantity))
    assert caught.value.status == 409
    assert caught.value.body()["order_id"] == "o1"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"product_id": "", "quantity": 1},
        {"product_id": "sku-1", "quantity": 0},
        {"product_id": "sku-1", "quantity": 101},
        {"product_id": "sku-1", "quantity": "2"},
        {"product_id": "sku 1", "quantity": 1},
        {"product_id": "sku-1", "quantity": 1, "price": 0},
    ],
)
def test_malformed_order_bodies_are_rejected(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        OrderRequest.model_validate(body)


def test_settings_defaults_are_the_contracts() -> None:
    s = Settings.from_env("order", env={})
    assert (s.mysql_host, s.mysql_port, s.mysql_user, s.mysql_database) == (
        "mysql",
        3306,
        "shop",
        "shop",
    )
    assert (s.kafka_bootstrap, s.orders_topic, s.kafka_replication_factor) == (
        "kafka:9092",
        "orders",
        1,
    )
    assert s.payment_url == "http://payment:8080"
    assert (s.payment_latency_ms, s.payment_failure_rate) == (20, 0.0)
    assert s.flash_sale_stock == 1_000_000


def test_settings_read_the_environment() -> None:
    env = {
        "SERVICE_NAME": "order-canary",
        "KAFKA_REPLICATION_FACTOR": "3",
        "PAYMENT_FAILURE_RATE": "0.25",
        "ORDER_URL": "http://order.shop:8080/",
    }
    s = Settings.from_env("order", env=env)
    assert s.service == "order-canary"
    assert s.kafka_replication_factor == 3
    assert s.payment_failure_rate == 0.25
    assert s.order_url == "http://order.shop:8080"


@pytest.mark.parametrize(
    ("name", "value"),
    [("PAYMENT_FAILURE_RATE", "1.5"), ("MYSQL_PORT", "x"), ("PAYMENT_LATENCY_MS", "-1")],
)
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env("payment", env={name: value})
