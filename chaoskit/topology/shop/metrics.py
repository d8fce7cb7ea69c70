"""Prometheus metrics of the shop services, served on GET /metrics.

HTTP metrics are recorded by :class:`MetricsMiddleware` for every service, labelled with
the route *template* (``/orders/{order_id}``), never the raw path, so that the number of
series stays bounded. Business metrics (orders, outbox, notifications, gateway calls) are
module-level objects the services update directly. The image sets
PROMETHEUS_DISABLE_CREATED_SERIES, so counters have no ``*_created`` companions.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by route template and status code.",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from receiving a request to the end of its response.",
    ["service", "method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_ERRORS = Counter(
    "http_request_errors",
    "Requests answered with a 5xx status (including unhandled exceptions).",
    ["service", "method", "route"],
)

ORDERS = Counter(
    "shop_orders",
    "Order requests handled by the order service, by outcome.",
    ["outcome"],  # created, replayed, payment_declined, payment_unavailable, out_of_stock, ...
)
OUTBOX_EVENTS = Counter(
    "shop_outbox_events",
    "Outbox rows handled by the relay: published (broker acknowledged), failed, dropped.",
    ["outcome"],
)
OUTBOX_PENDING = Gauge(
    "shop_outbox_pending", "Outbox rows not yet marked sent (relay leader only)."
)
RELAY_LEADER = Gauge("shop_outbox_relay_leader", "1 while this replica holds the relay lock.")
RELAY_PRODUCER_RESETS = Counter(
    "shop_outbox_producer_resets",
    "Kafka producers the relay threw away because the broker acknowledged nothing.",
)
DROP_EVENTS = Gauge("shop_outbox_drop_events", "1 while the drop-events fault is switched on.")
NOTIFICATIONS = Counter(
    "shop_notifications",
    "Order events consumed by the notification service: recorded, duplicate, invalid.",
    ["outcome"],
)
CONSUMER_ERRORS = Counter(
    "shop_consumer_errors", "Failed notification batches (database or broker)."
)
BACKEND_CALLS = Counter(
    "gateway_backend_calls",
    "Calls from the gateway to a backend, by outcome of each attempt.",
    ["backend", "outcome"],  # ok, http_5xx, refused, timeout, error, circuit_open
)
BACKEND_RETRIES = Counter("gateway_backend_retries", "Retried attempts, by backend.", ["backend"])
CIRCUIT_OPEN = Gauge(
    "gateway_circuit_open", "1 while the gateway fails fast for a backend.", ["backend"]
)
PAYMENTS = Counter("shop_payments", "Simulated payments, by outcome.", ["outcome"])


def render() -> tuple[bytes, str]:
    """The metrics page and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts and times every HTTP request (ASGI middleware; cheap, no body buffering)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = route_label(scope)
            method = str(scope.get("method", "GET"))
            HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, route).observe(time.perf_counter() - start)
            if status >= 500:
                HTTP_ERRORS.labels(self.service, method, route).inc()


def route_label(scope: Scope) -> str:
    """The matched route's template, or 'unmatched' (so that 404 scans add no series)."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
