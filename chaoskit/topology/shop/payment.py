"""The payment service: a simulated card processor, stateless.

POST /payments {"amount": <cents>, "order_id": ...} waits PAYMENT_LATENCY_MS, then declines
with probability PAYMENT_FAILURE_RATE (402) or captures (200, a new payment id).
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from typing import Annotated, Any

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

from . import metrics
from .config import Settings
from .models import PaymentRequest
from .web import create_app, error_response

log = logging.getLogger(__name__)


def declined(failure_rate: float, rand: float) -> bool:
    return rand < failure_rate


def create(settings: Settings) -> FastAPI:
    app = create_app("payment")
    rng = random.Random()  # noqa: S311 - simulated declines, not security

    @app.post("/payments", response_model=None)
    async def post_payment(
        body: PaymentRequest,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> dict[str, Any] | JSONResponse:
        if settings.payment_latency_ms:
            await asyncio.sleep(settings.payment_latency_ms / 1000)
        if declined(settings.payment_failure_rate, rng.random()):
            metrics.PAYMENTS.labels("declined").inc()
            return error_response(
                402, "payment_declined", "the card was declined", order_id=body.order_id
            )
        metrics.PAYMENTS.labels("captured").inc()
        return {
            "payment_id": str(uuid.uuid4()),
            "status": "captured",
            "amount": body.amount,
            "order_id": body.order_id,
            "idempotency_key": idempotency_key,
        }

    return app
