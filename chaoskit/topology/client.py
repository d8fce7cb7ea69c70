"""A small shop client that records what it was told: the acknowledged orders.

Tests and the deploy check place orders with it; every order the shop acknowledged (2xx
with an order id) is kept as an :class:`Ack` for the integrity ledger, and every failure is
counted by its kind. Requests carry idempotency keys, and a request that failed in transit
is retried with the same key, as a careful client would.
"""

from __future__ import annotations

import hashlib
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


RUN_ID_LIMIT = 64
"""Characters a run id may have (letters, digits and '-'): with the separator and a UUID,
an idempotency key stays within the shop's 128."""
KEY_SEPARATOR = "."
"""Between the run id and the rest of an idempotency key. Run ids never hold it, so the
prefix of run ``r-1`` (``r-1.``) cannot match the keys of run ``r-10`` (``r-10.…``).
``loadprofiles/_shop.py`` spells the same character (the profiles do not import chaoskit)."""


def new_run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


def bounded_id(text: str, limit: int = RUN_ID_LIMIT) -> str:
    """``text`` if it fits in ``limit`` characters, else its head and a short hash of all of
    it: still readable, and two long ids that share their head stay apart."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{text[: limit - len(digest) - 1].rstrip('-')}-{digest}"


def key_prefix(run_id: str) -> str:
    """What every idempotency key of ``run_id`` starts with, and no other run's key does."""
    return f"{run_id}{KEY_SEPARATOR}"


def order_key(run_id: str, suffix: str | None = None) -> str:
    """A fresh idempotency key of ``run_id`` (``suffix`` instead of a UUID: a fixed one)."""
    return f"{key_prefix(run_id)}{suffix or uuid.uuid4()}"


def owns_key(run_id: str, key: str) -> bool:
    """Whether ``key`` was made for ``run_id`` (an exact, case-sensitive prefix match)."""
    return key.startswith(key_prefix(run_id))


@dataclass
class OrderRun:
    """What a run of orders saw, from the client's side.

    Every idempotency key of a run starts with its ``run_id`` and :data:`KEY_SEPARATOR`
    (:func:`order_key`), so that the ledger can tell this run's orders from everything else
    in the shop's database.
    """

    run_id: str = field(default_factory=new_run_id)
    acks: list[Ack] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def key(self, suffix: str | None = None) -> str:
        """A fresh idempotency key of this run (see :func:`order_key`)."""
        return order_key(self.run_id, suffix)

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
        ack, failure = place_order(base_url, key=result.key())
        result.record(ack, failure)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(count)))
    return result
