"""The gateway: the shop's public HTTP API, in front of the product, order and payment services.

Routes: GET /products, GET /products/{id}, POST /cart (priced by the product service),
POST /orders (Idempotency-Key required), GET /orders/{id}, POST /payments (for tests).

Every backend call has a time limit; requests that may be repeated safely (GET, or those
carrying an Idempotency-Key) are retried on transport failures and 502/503/504, within one
deadline (see ``policy.py``). A backend that refuses connections gives a 503 in a few tens
of milliseconds; one that keeps failing trips a circuit breaker and is answered with 503 at
once for a moment. Backend answers, errors included, are passed through unchanged.

/readyz is always ready: the gateway can answer (with 503s) even when backends are down,
and taking it out of the ingress because a backend is down would only turn a partial
outage into a total one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Header, Path
from fastapi.responses import Response

from . import metrics
from .config import Settings
from .models import (
    IDEMPOTENCY_HEADER,
    CartRequest,
    OrderRequest,
    PaymentRequest,
    require_idempotency_key,
)
from .policy import (
    CircuitBreaker,
    Outcome,
    RetryPolicy,
    classify_status,
    failure_status,
    worth_retrying,
)
from .web import create_app, error_response

log = logging.getLogger(__name__)

SafeId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
PASSED_HEADERS = ("content-type", "idempotent-replayed")


@dataclass
class Backend:
    name: str
    base_url: str
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)


class BackendCaller:
    """Calls backends under a :class:`RetryPolicy`, with one circuit breaker per backend."""

    def __init__(self, client: httpx.AsyncClient, policy: RetryPolicy) -> None:
        self.client = client
        self.policy = policy

    async def call(
        self,
        backend: Backend,
        method: str,
        path: str,
        json_body: Any = None,
        idempotency_key: str | None = None,
    ) -> Response:
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else {}
        attempts = self.policy.attempts_for(method, idempotency_key is not None)
        start = time.monotonic()
        outcome: Outcome = "error"
        response: httpx.Response | None = None
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                metrics.BACKEND_RETRIES.labels(backend.name).inc()
            outcome, response = await self._attempt(
                backend,
                method=method,
                path=path,
                json_body=json_body,
                headers=headers,
                elapsed=time.monotonic() - start,
            )
            metrics.BACKEND_CALLS.labels(backend.name, outcome).inc()
            status = response.status_code if response is not None else None
            if outcome == "ok" or not worth_retrying(outcome, status) or attempt == attempts:
                break
            pause = self.policy.next_pause(attempt, time.monotonic() - start)
            if pause is None:
                break
            await asyncio.sleep(pause)
        if response is not None:
            return _passthrough(response)
        status, error = failure_status(outcome)
        return error_response(
            status,
            error,
            f"{backend.name} service: {outcome.replace('_', ' ')}",
            backend=backend.name,
        )

    async def _attempt(
        self,
        backend: Backend,
        *,
        method: str,
        path: str,
        json_body: Any,
        headers: Mapping[str, str],
        elapsed: float,
    ) -> tuple[Outcome, httpx.Response | None]:
        if not backend.breaker.allow():
            metrics.CIRCUIT_OPEN.labels(backend.name).set(1)
            return "circuit_open", None
        limit = self.policy.timeout_for(elapsed)
        timeout = httpx.Timeout(limit, connect=min(limit, self.policy.connect_timeout_s))
        try:
            response = await self.client.request(
                method, backend.base_url + path, json=json_body, headers=headers, timeout=timeout
            )
        except httpx.ConnectError:
            backend.breaker.record(transport_ok=False)
            return "refused", None
        except httpx.TimeoutException:
            backend.breaker.record(transport_ok=False)
            return "timeout", None
        except httpx.TransportError as exc:
            log.info("%s %s%s: %s", method, backend.name, path, exc)
            backend.breaker.record(transport_ok=False)
            return "error", None
        backend.breaker.record(transport_ok=True)
        metrics.CIRCUIT_OPEN.labels(backend.name).set(0)
        return classify_status(response.status_code), response


def _passthrough(response: httpx.Response) -> Response:
    headers = {k: v for k, v in response.headers.items() if k.lower() in PASSED_HEADERS}
    return Response(response.content, status_code=response.status_code, headers=headers)


def create(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The gateway app; ``transport`` replaces the network in tests."""
    policy = RetryPolicy(
        attempts=settings.backend_attempts, attempt_timeout_s=settings.backend_timeout_s
    )
    client = httpx.AsyncClient(
        transport=transport,
        limits=httpx.Limits(
            max_connections=200, max_keepalive_connections=50, keepalive_expiry=2.0
        ),
    )
    caller = BackendCaller(client, policy)
    product = Backend("product", settings.product_url)
    order = Backend("order", settings.order_url)
    payment = Backend("payment", settings.payment_url)

    app = create_app("gateway")

    @app.get("/products")
    async def list_products() -> Response:
        return await caller.call(product, "GET", "/products")

    @app.get("/products/{product_id}")
    async def get_product(product_id: SafeId) -> Response:
        return await caller.call(product, "GET", f"/products/{product_id}")

    @app.post("/cart")
    async def post_cart(cart: CartRequest) -> Response:
        return await caller.call(product, "POST", "/quote", json_body=cart.model_dump())

    @app.post("/orders")
    async def post_order(
        body: OrderRequest,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> Response:
        key = require_idempotency_key(idempotency_key)
        return await caller.call(order, "POST", "/orders", body.model_dump(), key)

    @app.get("/orders/{order_id}")
    async def get_order(order_id: SafeId) -> Response:
        return await caller.call(order, "GET", f"/orders/{order_id}")

    @app.post("/payments")
    async def post_payment(
        body: PaymentRequest,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> Response:
        key = require_idempotency_key(idempotency_key) if idempotency_key else None
        return await caller.call(payment, "POST", "/payments", body.model_dump(), key)

    return app
