"""The order service: places orders exactly once, and relays their events to Kafka.

POST /orders (header Idempotency-Key) runs one MySQL transaction:

1. insert the order row (status ``pending``); the UNIQUE idempotency key makes a
   concurrent retry with the same key wait here, then find the committed order;
2. charge the payment service (a decline rolls everything back: 402, no order);
3. reserve stock with a conditional UPDATE (none left: 409, rolled back);
4. mark the order ``confirmed`` and insert its event into the outbox;
5. commit — the order, the stock and the event become visible together.

A request whose key is already stored is answered with the stored order (200, with
``"replayed": true``) and charges nothing. The outbox relay (``outbox.py``) runs in the
background of every replica; one of them, the lock holder, publishes.

Also: GET /orders/{order_id}; GET /admin/relay (relay status of this replica);
GET/POST /admin/drop-events (fault switch shared by all replicas, see ``outbox.py``).
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

import httpx
import pymysql
from fastapi import FastAPI, Header, Path
from fastapi.responses import JSONResponse

from . import metrics
from .background import Loop
from .config import Settings
from .db import Database, DbConnection, is_duplicate_key
from .models import (
    DropEventsRequest,
    OrderRequest,
    StoredOrder,
    replay,
    require_idempotency_key,
)
from .outbox import OutboxRelay, event_payload
from .schema import SchemaSetup
from .web import ApiError, create_app

log = logging.getLogger(__name__)

OrderId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]

_SELECT_ORDER = (
    "SELECT o.id, o.idempotency_key, o.product_id, o.quantity, o.amount, o.status, o.created_at"
)


def _stored(row: dict[str, Any], with_notified: bool = False) -> StoredOrder:
    return StoredOrder(
        order_id=str(row["id"]),
        idempotency_key=str(row["idempotency_key"]),
        product_id=str(row["product_id"]),
        quantity=int(row["quantity"]),
        amount=int(row["amount"]),
        status=str(row["status"]),
        created_at=row["created_at"].isoformat() if row.get("created_at") else "",
        notified=bool(row["notified"]) if with_notified else None,
    )


class PaymentClient:
    """Calls the payment service; one retry when the connection was refused (nothing sent)."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.payment_url + "/payments"
        self.client = httpx.Client(
            timeout=httpx.Timeout(settings.backend_timeout_s, connect=0.5),
            limits=httpx.Limits(max_connections=50, keepalive_expiry=2.0),
        )

    def charge(self, order_id: str, key: str, amount: int) -> str:
        body = {"amount": amount, "order_id": order_id}
        headers = {"Idempotency-Key": f"pay-{key}"}
        for attempt in (1, 2):
            try:
                response = self.client.post(self.url, json=body, headers=headers)
                break
            except httpx.ConnectError as exc:
                if attempt == 2:
                    raise ApiError(503, "payment_unavailable", f"payment service: {exc}") from exc
            except httpx.HTTPError as exc:
                raise ApiError(503, "payment_unavailable", f"payment service: {exc}") from exc
        if response.status_code == 402:
            raise ApiError(402, "payment_declined", "the payment was declined; no order was placed")
        if response.status_code != 200:
            raise ApiError(
                503, "payment_unavailable", f"payment service answered {response.status_code}"
            )
        return str(response.json().get("payment_id", ""))


class OrderService:
    def __init__(self, settings: Settings, db: Database, payments: PaymentClient) -> None:
        self.settings = settings
        self.db = db
        self.payments = payments

    def find_by_key(self, key: str) -> StoredOrder | None:
        with self.db.transaction() as cursor:
            cursor.execute(_SELECT_ORDER + " FROM orders o WHERE o.idempotency_key = %s", (key,))
            row = cursor.fetchone()
        return _stored(row) if row else None

    def get(self, order_id: str) -> StoredOrder | None:
        with self.db.transaction() as cursor:
            cursor.execute(
                _SELECT_ORDER + ", n.order_id IS NOT NULL AS notified "
                "FROM orders o LEFT JOIN notifications n ON n.order_id = o.id WHERE o.id = %s",
                (order_id,),
            )
            row = cursor.fetchone()
        return _stored(row, with_notified=True) if row else None

    def place(self, request: OrderRequest, key: str) -> tuple[StoredOrder, bool]:
        """The order for this key and whether it was created now (False: a replay)."""
        existing = self.find_by_key(key)
        if existing is not None:
            return replay(existing, request), False
        order_id = str(uuid.uuid4())
        try:
            order = self._create(order_id, request, key)
        except pymysql.err.IntegrityError as exc:
            if not is_duplicate_key(exc):
                raise
            # A concurrent request with the same key committed first.
            existing = self.find_by_key(key)
            if existing is None:
                raise ApiError(409, "conflict", "concurrent request with the same key") from exc
            return replay(existing, request), False
        return order, True

    def _create(self, order_id: str, request: OrderRequest, key: str) -> StoredOrder:
        with self.db.transaction() as cursor:
            cursor.execute(
                "SELECT price_cents, stock FROM products WHERE id = %s", (request.product_id,)
            )
            product = cursor.fetchone()
            if product is None:
                raise ApiError(404, "unknown_product", f"no product {request.product_id!r}")
            if int(product["stock"]) < request.quantity:
                raise ApiError(409, "out_of_stock", f"{request.product_id} is sold out")
            amount = int(product["price_cents"]) * request.quantity
            cursor.execute(
                "INSERT INTO orders (id, idempotency_key, product_id, quantity, amount, status) "
                "VALUES (%s, %s, %s, %s, %s, 'pending')",
                (order_id, key, request.product_id, request.quantity, amount),
            )
            payment_id = self.payments.charge(order_id, key, amount)
            reserved = cursor.execute(
                "UPDATE products SET stock = stock - %s WHERE id = %s AND stock >= %s",
                (request.quantity, request.product_id, request.quantity),
            )
            if reserved != 1:
                raise ApiError(409, "out_of_stock", f"{request.product_id} is sold out")
            cursor.execute(
                "UPDATE orders SET status = 'confirmed', payment_id = %s WHERE id = %s",
                (payment_id, order_id),
            )
            cursor.execute(
                "INSERT INTO outbox (order_id, topic, payload) VALUES (%s, %s, %s)",
                (
                    order_id,
                    self.settings.orders_topic,
                    event_payload(order_id, request.product_id, request.quantity, amount, key),
                ),
            )
            cursor.execute(_SELECT_ORDER + " FROM orders o WHERE o.id = %s", (order_id,))
            row = cursor.fetchone()
        assert row is not None
        return _stored(row)

    def drop_events(self, enabled: bool | None = None) -> bool:
        with self.db.connection() as conn:
            return set_flag(conn, "drop_events", enabled)


def set_flag(conn: DbConnection, name: str, enabled: bool | None) -> bool:
    """Sets a shared flag (unless ``enabled`` is None) and returns its value."""
    with conn.cursor() as cursor:
        if enabled is not None:
            cursor.execute(
                "INSERT INTO shop_flags (name, enabled) VALUES (%s, %s) "
                "ON DUPLICATE KEY UPDATE enabled = VALUES(enabled)",
                (name, 1 if enabled else 0),
            )
        cursor.execute("SELECT enabled FROM shop_flags WHERE name = %s", (name,))
        row = cursor.fetchone()
    conn.commit()
    return bool(row and row["enabled"])


def create(settings: Settings) -> FastAPI:
    db = Database(settings)
    schema = SchemaSetup(settings, db)
    relay = OutboxRelay(settings, db)
    relay_loop = Loop(
        "outbox-relay",
        lambda stopping: relay.step(stopping) if schema.done else 0.5,
        on_stop=relay.close,
    )
    service = OrderService(settings, db, PaymentClient(settings))

    def ready() -> dict[str, bool]:
        return {"schema": schema.done, "mysql": db.ping()}

    app = create_app("order", ready, [schema.loop, relay_loop])

    @app.post("/orders", status_code=201)
    def post_order(
        body: OrderRequest,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> JSONResponse:
        key = require_idempotency_key(idempotency_key)
        try:
            order, created = service.place(body, key)
        except ApiError as exc:
            metrics.ORDERS.labels(exc.error).inc()
            raise
        metrics.ORDERS.labels("created" if created else "replayed").inc()
        return JSONResponse(
            order.body(replayed=not created),
            status_code=201 if created else 200,
            headers={} if created else {"Idempotent-Replayed": "true"},
        )

    @app.get("/orders/{order_id}")
    def get_order(order_id: OrderId) -> dict[str, object]:
        order = service.get(order_id)
        if order is None:
            raise ApiError(404, "order_not_found", f"no order {order_id!r}")
        return order.body()

    @app.get("/admin/relay")
    def relay_status() -> dict[str, Any]:
        return {**relay.status(), "loop_failures": relay_loop.failures}

    @app.get("/admin/drop-events")
    def get_drop_events() -> dict[str, bool]:
        return {"enabled": service.drop_events()}

    @app.post("/admin/drop-events")
    def post_drop_events(body: DropEventsRequest) -> dict[str, bool]:
        enabled = service.drop_events(body.enabled)
        log.warning("drop-events fault switched %s", "ON" if enabled else "off")
        return {"enabled": enabled}

    return app
