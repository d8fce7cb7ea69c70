"""The shop's customers for Locust, and what chaoskit records about them.

``ShopUser`` browses products, prices a cart and checks out the limited-stock item
``flash-1``. Every order carries a fresh idempotency key that starts with the run's id
(``CHAOSKIT_RUN_ID``); an order that fails in transit (no answer, or a 5xx) is retried once
with the *same* key, as a careful client would, so the shop can never take it twice.

When ``CHAOSKIT_LOAD_OUT`` names a directory, each Locust process (master or worker) writes
two files of its own there, named after its host and pid so that workers never clash:

- ``acks-<host>-<pid>.jsonl``: one line per acknowledged order (2xx with an order id),
  ``{"idempotency_key", "order_id", "t"}``, flushed at once: the integrity ledger's input.
- ``seconds-<host>-<pid>.jsonl``: per wall-clock second and endpoint, the request count,
  failures and a histogram of response times (ms), plus the user count; chaoskit merges
  them into an exact per-second time series (Locust's own history averages over ~10 s).

Business refusals (402 payment declined, 409 sold out) are the shop working as designed:
they count as successes, but they are not acknowledged orders.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, TextIO

import gevent
from locust import FastHttpUser, events, task
from locust.runners import WorkerRunner

PRODUCTS = ("flash-1", "sku-1", "sku-2", "sku-3", "sku-4", "sku-5")
FLASH_SALE_PRODUCT = "flash-1"
RUN_ID = os.environ.get("CHAOSKIT_RUN_ID") or f"run-{uuid.uuid4().hex[:12]}"
OUT_DIR = os.environ.get("CHAOSKIT_LOAD_OUT")
REFUSALS = {402: "payment_declined", 409: "out_of_stock"}
"""Answers that are the shop's rules at work, not failures (the order was not placed)."""
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


class _Files:
    """This process's output files, opened on first use (after Locust forked, if it does)."""

    def __init__(self, out_dir: str | None) -> None:
        self.out_dir = Path(out_dir) if out_dir else None
        self._open: dict[str, TextIO] = {}

    def write(self, kind: str, record: dict[str, Any]) -> None:
        if self.out_dir is None:
            return
        handle = self._open.get(kind)
        if handle is None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            name = f"{kind}-{socket.gethostname()}-{os.getpid()}.jsonl"
            handle = self._open[kind] = (self.out_dir / name).open("a", encoding="utf-8")
        handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        handle.flush()


FILES = _Files(OUT_DIR)


def _rounded_ms(ms: float) -> int:
    """Response times bucketed like Locust's own statistics: 2 significant digits or so."""
    digits = 0 if ms < 100 else -1 if ms < 1000 else -2 if ms < 10000 else -3
    return int(round(ms, digits))


class _PerSecond:
    """Requests by completion second and endpoint; complete seconds are written every second."""

    def __init__(self) -> None:
        self.requests: dict[int, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
        self.users: dict[int, int] = {}

    def add(self, method: str, name: str, response_ms: float, failed: bool) -> None:
        second = int(time.time())
        bucket = self.requests[second].setdefault(
            (method, name), {"count": 0, "failures": 0, "times": defaultdict(int)}
        )
        bucket["count"] += 1
        bucket["failures"] += failed
        bucket["times"][_rounded_ms(response_ms)] += 1

    def flush(self, *, everything: bool = False) -> None:
        now = int(time.time())
        for second in sorted(self.requests):
            if second >= now and not everything:
                break
            for (method, name), bucket in self.requests.pop(second).items():
                FILES.write(
                    "seconds",
                    {"t": second, "type": method, "name": name, **bucket},
                )
        for second in sorted(self.users):
            if second >= now and not everything:
                break
            FILES.write("seconds", {"t": second, "users": self.users.pop(second)})


PER_SECOND = _PerSecond()


@events.request.add_listener
def _count(
    request_type: str,
    name: str,
    response_time: float | None,
    exception: BaseException | None = None,
    **_: Any,
) -> None:
    PER_SECOND.add(request_type, name, response_time or 0.0, exception is not None)


@events.init.add_listener
def _start_recording(environment: Any, **_: Any) -> None:
    if FILES.out_dir is None:
        return
    runner = environment.runner

    def every_second() -> None:
        while True:
            # Users are counted where the shape runs (master or local runner), not per worker.
            if runner is not None and not isinstance(runner, WorkerRunner):
                PER_SECOND.users[int(time.time())] = runner.user_count
            PER_SECOND.flush()
            gevent.sleep(1.02 - time.time() % 1.0)

    gevent.spawn(every_second)


@events.quitting.add_listener
def _flush_at_exit(**_: Any) -> None:
    PER_SECOND.flush(everything=True)


class ShopUser(FastHttpUser):
    """A customer of the flash sale: mostly browsing, sometimes buying the limited item."""

    network_timeout = 10.0
    connection_timeout = 5.0

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
        key = f"{RUN_ID}-{uuid.uuid4()}"
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
                    "acks",
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
