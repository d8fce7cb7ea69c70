"""The product service: the catalogue and its stock, straight from MySQL.

GET /products, GET /products/{product_id}, and POST /quote (prices a cart; the gateway's
POST /cart). Stock is reserved by the order service, inside the order's transaction.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import FastAPI, Path

from .config import Settings
from .db import Database
from .models import CartRequest
from .schema import SchemaSetup
from .web import ApiError, create_app

log = logging.getLogger(__name__)

ProductPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


def _product(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": str(row["name"]),
        "price_cents": int(row["price_cents"]),
        "stock": int(row["stock"]),
    }


def quote(products: dict[str, dict[str, Any]], cart: CartRequest) -> dict[str, Any]:
    """Prices a cart from the catalogue rows; unknown products are a 404."""
    unknown = sorted({item.product_id for item in cart.items} - products.keys())
    if unknown:
        raise ApiError(404, "unknown_product", f"no product {', '.join(unknown)}", unknown=unknown)
    lines = []
    for item in cart.items:
        product = products[item.product_id]
        lines.append(
            {
                "product_id": item.product_id,
                "name": product["name"],
                "quantity": item.quantity,
                "unit_price_cents": product["price_cents"],
                "line_total_cents": product["price_cents"] * item.quantity,
                "available": product["stock"] >= item.quantity,
            }
        )
    return {
        "items": lines,
        "total_cents": sum(int(line["line_total_cents"]) for line in lines),
        "available": all(bool(line["available"]) for line in lines),
    }


def create(settings: Settings) -> FastAPI:
    db = Database(settings)
    schema = SchemaSetup(settings, db)

    def ready() -> dict[str, bool]:
        return {"schema": schema.done, "mysql": db.ping()}

    app = create_app("product", ready, [schema.loop])

    @app.get("/products")
    def list_products() -> dict[str, Any]:
        with db.transaction() as cursor:
            cursor.execute("SELECT id, name, price_cents, stock FROM products ORDER BY id")
            rows = cursor.fetchall()
        return {"products": [_product(row) for row in rows]}

    @app.get("/products/{product_id}")
    def get_product(product_id: ProductPath) -> dict[str, Any]:
        with db.transaction() as cursor:
            cursor.execute(
                "SELECT id, name, price_cents, stock FROM products WHERE id = %s", (product_id,)
            )
            row = cursor.fetchone()
        if row is None:
            raise ApiError(404, "unknown_product", f"no product {product_id!r}")
        return _product(row)

    @app.post("/quote")
    def post_quote(cart: CartRequest) -> dict[str, Any]:
        ids = sorted({item.product_id for item in cart.items})
        placeholders = ", ".join(["%s"] * len(ids))
        with db.transaction() as cursor:
            cursor.execute(
                f"SELECT id, name, price_cents, stock FROM products WHERE id IN ({placeholders})",  # noqa: S608
                ids,
            )
            rows = cursor.fetchall()
        return quote({str(row["id"]): _product(row) for row in rows}, cart)

    return app
