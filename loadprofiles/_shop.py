"""The shop's customers for Locust, and what chaoskit records about them.

``ShopUser`` browses products, prices a cart and checks out the limited-stock item
``flash-1``. Every order carries a fresh idempotency key that starts with the run's id
(``CHAOSKIT_RUN_ID``) and ``.``; an order that fails in transit (no answer, or a 5xx) is retried once
with the *same* key, as a careful client would, so the shop can never take it twice.

What chaoskit records of it comes from :mod:`chaoskit.load.recorder`, imported here (as
chaoskit's load runner also loads it beside any Locust file): the per-second series
(``seconds-*.jsonl``), and through it this module writes one line per acknowledged order
(2xx with an order id) to ``acks-<host>-<pid>.jsonl`` when ``CHAOSKIT_LOAD_OUT`` names a
directory, ``{"idempotency_key", "order_id", "t"}``, flushed at once: the integrity
ledger's input. Worker pods relay both to their master (see the recorder).

Business refusals (402 payment declined, 409 sold out) are the shop working as designed:
they count as successes, but they are not acknowledged orders.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from typing import Any

import gevent
from locust import FastHttpUser, events, task

from chaoskit.load.recorder import ACKS, FILES, REQUEST_TIMEOUT_S

PRODUCTS = ("flash-1", "sku-1", "sku-2", "sku-3", "sku-4", "sku-5")
FLASH_SALE_PRODUCT = "flash-1"
RUN_ID = os.environ.get("CHAOSKIT_RUN_ID") or f"run-{uuid.uuid4().hex[:12]}"
KEY_SEPARATOR = "."
"""Between the run id and the rest of a key: never in a run id, so the ledger's prefix of
one run matches no other run's keys (chaoskit.topology.client.KEY_SEPARATOR)."""
REFUSALS = {402: "payment_declined", 409: "out_of_stock"}
"""Answers that are the shop's rules at work, not failures (the order was not placed)."""
CONNECT_TIMEOUT_S = min(5.0, REQUEST_TIMEOUT_S)
RETRY_PAUSE = 0.5
"""Seconds before the one retry of an order that failed in transit."""


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    group = parser.add_argument_group("chaoskit shop profiles")
    group.add_argument(
        "--sale-start",
        type=float,
        default=None,
        env_var="LOCUST_SALE_START",
        help="flash_sale: seconds of baseline before the x10 spike (default: 20%% of --run-time)",
    )
    group.add_argument(
        "--sale-hold",
        type=float,
        default=None,
        env_var="LOCUST_SALE_HOLD",
        help="flash_sale: seconds the peak is held before it decays (default: 50%% of --run-time)",
    )
    group.add_argument(
        "--think-time",
        type=float,
        default=1.0,
        env_var="LOCUST_THINK_TIME",
        help="mean seconds a user waits between actions (0: as fast as the shop answers)",
    )


class ShopUser(FastHttpUser):
    """A customer of the flash sale: mostly browsing, sometimes buying the limited item."""

    network_timeout = REQUEST_TIMEOUT_S
    connection_timeout = CONNECT_TIMEOUT_S

    def wait_time(self) -> float:
        mean = getattr(self.environment.parsed_options, "think_time", 1.0)
        return random.uniform(0.5 * mean, 1.5 * mean)  # noqa: S311 - jitter, not secrets

    @task(3)
    def browse(self) -> None:
        self.client.get("/products", name="/products")

    @task(3)
    def view_product(self) -> None:
        self.client.get(f"/products/{random.choice(PRODUCTS)}", name="/products/[id]")  # noqa: S311

    @task(2)
    def add_to_cart(self) -> None:
        items = [
            {"product_id": random.choice(PRODUCTS), "quantity": random.randint(1, 3)}  # noqa: S311
            for _ in range(random.randint(1, 3))  # noqa: S311
        ]
        self.client.post("/cart", json={"items": items}, name="/cart")

    @task(2)
    def checkout(self) -> None:
        key = f"{RUN_ID}{KEY_SEPARATOR}{uuid.uuid4()}"
        if not self._order(key, name="/orders"):
            gevent.sleep(RETRY_PAUSE)
            self._order(key, name="/orders (retry)")

    def _order(self, key: str, *, name: str) -> bool:
        """Places the order; False if it failed in transit and is worth one retry."""
        with self.client.post(
            "/orders",
            json={"product_id": FLASH_SALE_PRODUCT, "quantity": 1},
            headers={"Idempotency-Key": key},
            name=name,
            catch_response=True,
        ) as response:
            status = response.status_code or 0
            body = _json(response)
            if 200 <= status < 300 and body.get("order_id"):
                FILES.write(
                    ACKS,
                    {"idempotency_key": key, "order_id": str(body["order_id"]), "t": time.time()},
                )
                response.success()
                return True
            if status in REFUSALS and body.get("error") == REFUSALS[status]:
                response.success()
                return True
            if status == 0:
                response.failure(f"transport: {type(response.error).__name__}")
                return False
            if status >= 500:
                response.failure(f"HTTP {status} {body.get('error', '')}".strip())
                return False
            response.failure(f"HTTP {status} {body.get('error', '')}".strip())
            return True


def _json(response: Any) -> dict[str, Any]:
    try:
        body = json.loads(response.content or b"{}")
    except (ValueError, TypeError):
        return {}
    return body if isinstance(body, dict) else {}
