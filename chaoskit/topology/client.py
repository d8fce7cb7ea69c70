"""A small shop client that records what it was told: the acknowledged orders.

Tests and the deploy check place orders with it; every order the shop acknowledged (2xx
with an order id) is kept as an :class:`Ack` for the integrity ledger, and every failure is
counted by its kind. Requests carry idempotency keys, and a request that failed in transit
is retried with the same key, as a careful client would.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from chaoskit.topology.ledger import Ack

FLASH_SALE_PRODUCT = "flash-1"


def new_run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


@dataclass
class OrderRun:
    """What a run of orders saw, from the client's side.

    Every idempotency key of a run starts with its ``run_id``, so that the ledger can tell
    this run's orders from everything else in the shop's database.
    """

    run_id: str = field(default_factory=new_run_id)
    acks: list[Ack] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, ack: Ack | None, failure: str | None) -> None:
        with self._lock:
            if ack is not None:
                self.acks.append(ack)
            if failure is not None:
                self.failures[failure] += 1


def place_order(
    base_url: str,
    *,
    key: str | None = None,
    product_id: str = FLASH_SALE_PRODUCT,
    quantity: int = 1,
    attempts: int = 3,
    timeout: float = 5,
) -> tuple[Ack | None, str | None]:
    """One order, retried with the same idempotency key; (ack, None) or (None, failure)."""
    key = key or str(uuid.uuid4())
    body = json.dumps({"product_id": product_id, "quantity": quantity}).encode()
    failure = "no attempt"
    for attempt in range(attempts):
        request = urllib.request.Request(  # noqa: S310 - an http URL on loopback
            f"{base_url}/orders",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": key},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                answer = json.loads(response.read())
            return Ack(idempotency_key=key, order_id=str(answer["order_id"])), None
        except urllib.error.HTTPError as e:
            failure = f"HTTP {e.code}"
            if e.code < 500:
                return None, failure  # the shop refused it: retrying will not help
        except (urllib.error.URLError, OSError) as e:
            failure = type(getattr(e, "reason", e)).__name__
        except (ValueError, KeyError):
            return None, "bad answer"
        time.sleep(0.2 * (attempt + 1))
    return None, failure


def order_burst(
    base_url: str, *, count: int, concurrency: int = 8, run: OrderRun | None = None
) -> OrderRun:
    """Places ``count`` orders from ``concurrency`` threads; returns what was acknowledged."""
    result = run if run is not None else OrderRun()

    def one(_: int) -> None:
        ack, failure = place_order(base_url, key=f"{result.run_id}-{uuid.uuid4()}")
        result.record(ack, failure)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(count)))
    return result
