"""Request bodies and the idempotency rules shared by the gateway and the order service.

Validation happens at both: the gateway rejects a malformed request before it costs a
backend call, and the order service does not trust its callers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from .web import ApiError

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""1-128 characters, letters, digits and ``._:-`` (UUIDs, ULIDs, 'client-42:7' all fit)."""

ProductId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
Quantity = Annotated[int, Field(ge=1, le=100, strict=True)]


class OrderRequest(BaseModel):
    """Body of POST /orders."""

    model_config = ConfigDict(extra="forbid")
    product_id: ProductId
    quantity: Quantity = 1


class CartItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_id: ProductId
    quantity: Quantity = 1


class CartRequest(BaseModel):
    """Body of POST /cart (gateway) and POST /quote (product service)."""

    model_config = ConfigDict(extra="forbid")
    items: Annotated[list[CartItem], Field(min_length=1, max_length=50)]


class PaymentRequest(BaseModel):
    """Body of POST /payments: an amount in cents, and what it pays for."""

    model_config = ConfigDict(extra="forbid")
    amount: Annotated[int, Field(gt=0, le=100_000_000, strict=True)]
    order_id: Annotated[str | None, Field(max_length=64)] = None


class DropEventsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: Annotated[bool, Field(strict=True)]


def require_idempotency_key(raw: str | None) -> str:
    """The key from the header, or a 400 naming what is wrong with it."""
    if raw is None or not raw.strip():
        raise ApiError(
            400,
            "idempotency_key_required",
            f"POST /orders needs an {IDEMPOTENCY_HEADER} header (retries with the same key "
            "return the same order)",
        )
    key = raw.strip()
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"{IDEMPOTENCY_HEADER} must be 1-128 characters of letters, digits and ._:-",
        )
    return key


@dataclass(frozen=True)
class StoredOrder:
    """An order row as the order service returns it."""

    order_id: str
    idempotency_key: str
    product_id: str
    quantity: int
    amount: int
    status: str
    created_at: str
    notified: bool | None = None

    def body(self, replayed: bool = False) -> dict[str, object]:
        body: dict[str, object] = {
            "order_id": self.order_id,
            "status": self.status,
            "product_id": self.product_id,
            "quantity": self.quantity,
            "amount": self.amount,
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at,
        }
        if self.notified is not None:
            body["notified"] = self.notified
        if replayed:
            body["replayed"] = True
        return body


def replay(existing: StoredOrder, request: OrderRequest) -> StoredOrder:
    """The stored order for a retried request, or 409 if the key was used for another one.

    A key names one purchase: reusing it with another product or quantity is a client bug,
    and answering with the first order would hide it.
    """
    if (existing.product_id, existing.quantity) != (request.product_id, request.quantity):
        raise ApiError(
            409,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different order",
            order_id=existing.order_id,
        )
    return existing
