"""The gateway against fake backends (httpx.MockTransport): no network."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from chaoskit.topology.shop import gateway
from chaoskit.topology.shop.config import Settings

Handler = Callable[[httpx.Request], httpx.Response]


class FakeBackends:
    """Records every request that reached a backend and answers with ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


MakeClient = Callable[[Handler], tuple[TestClient, "FakeBackends"]]


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    clients: list[TestClient] = []

    def make(handler: Handler) -> tuple[TestClient, FakeBackends]:
        backends = FakeBackends(handler)
        app = gateway.create(Settings.from_env("gateway", env={}), httpx.MockTransport(backends))
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client, backends

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


ORDER = {"product_id": "flash-1", "quantity": 1}


def test_post_orders_without_a_key_is_a_json_400_and_reaches_no_backend(
    make_client: MakeClient,
) -> None:
    client, backends = make_client(lambda r: httpx.Response(201, json={}))
    response = client.post("/orders", json=ORDER)
    assert response.status_code == 400
    assert response.json()["error"] == "idempotency_key_required"
    assert backends.requests == []


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"product_id": "flash-1", "quantity": -1}', b"[]"],
)
def test_malformed_bodies_are_json_422s(make_client: MakeClient, content: bytes) -> None:
    client, backends = make_client(lambda r: httpx.Response(201, json={}))
    response = client.post(
        "/orders",
        content=content,
        headers={"Idempotency-Key": "k1", "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert response.json()["detail"]
    assert backends.requests == []


def test_an_order_is_forwarded_with_its_key_and_the_answer_passed_through(
    make_client: MakeClient,
) -> None:
    client, backends = make_client(
        lambda r: httpx.Response(201, json={"order_id": "o1", "status": "confirmed"})
    )
    response = client.post("/orders", json=ORDER, headers={"Idempotency-Key": "k1"})
    assert response.status_code == 201
    assert response.json() == {"order_id": "o1", "status": "confirmed"}
    (request,) = backends.requests
    assert request.url == "http://order:8080/orders"
    assert request.headers["Idempotency-Key"] == "k1"


def test_a_refused_backend_gives_a_fast_503_after_quick_retries(make_client: MakeClient) -> None:
    client, backends = make_client(refused)
    start = time.monotonic()
    response = client.post("/orders", json=ORDER, headers={"Idempotency-Key": "k1"})
    elapsed = time.monotonic() - start
    assert response.status_code == 503
    assert response.json()["error"] == "backend_unavailable"
    assert response.json()["backend"] == "order"
    assert len(backends.requests) == 3
    assert elapsed < 1.0  # no timeout was waited for (a timeout is 2 s)


def test_a_post_without_a_key_is_tried_once(make_client: MakeClient) -> None:
    client, backends = make_client(refused)
    response = client.post("/payments", json={"amount": 100})
    assert response.status_code == 503
    assert len(backends.requests) == 1


def test_a_get_is_retried_after_a_503_and_the_success_returned(make_client: MakeClient) -> None:
    answers = iter([httpx.Response(503, json={"error": "database_unavailable"})])

    def flaky(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(200, json={"products": []}))

    client, backends = make_client(flaky)
    response = client.get("/products")
    assert response.status_code == 200
    assert len(backends.requests) == 2


def test_the_last_backend_error_is_passed_through_when_retries_run_out(
    make_client: MakeClient,
) -> None:
    client, backends = make_client(
        lambda r: httpx.Response(503, json={"error": "database_unavailable"})
    )
    response = client.get("/orders/o1")
    assert response.status_code == 503
    assert response.json()["error"] == "database_unavailable"
    assert len(backends.requests) == 3


@pytest.mark.parametrize("status", [402, 404, 409, 500])
def test_client_errors_and_500s_are_not_retried(make_client: MakeClient, status: int) -> None:
    client, backends = make_client(lambda r: httpx.Response(status, json={"error": "x"}))
    response = client.post("/orders", json=ORDER, headers={"Idempotency-Key": "k1"})
    assert response.status_code == status
    assert len(backends.requests) == 1


def test_a_timeout_is_a_504(make_client: MakeClient) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client, _ = make_client(slow)
    response = client.get("/products/sku-1")
    assert response.status_code == 504
    assert response.json()["error"] == "backend_timeout"


def test_a_backend_that_keeps_failing_trips_the_breaker(make_client: MakeClient) -> None:
    client, backends = make_client(refused)
    for _ in range(4):
        client.get("/products")  # 3 attempts each: the breaker opens after 10 failures
    reached = len(backends.requests)
    response = client.get("/products")
    assert response.status_code == 503
    assert len(backends.requests) == reached  # answered without calling the backend
    assert client.get("/orders/o1").status_code == 503  # other backends are not affected
    assert len(backends.requests) == reached + 3


def test_unknown_routes_and_bad_path_parameters_are_json_4xx(make_client: MakeClient) -> None:
    client, _ = make_client(lambda r: httpx.Response(200, json={}))
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert client.get("/products/" + "x" * 65).status_code == 422
    assert client.delete("/orders/o1").status_code == 405


def test_probes_and_metrics(make_client: MakeClient) -> None:
    client, _ = make_client(lambda r: httpx.Response(200, json={"order_id": "o1"}))
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").status_code == 200
    client.get("/orders/o42")
    page = client.get("/metrics").text
    assert (
        'http_requests_total{method="GET",route="/orders/{order_id}",service="gateway",status="200"}'
        in page
    )
    assert "http_request_duration_seconds_bucket" in page
    assert 'gateway_backend_calls_total{backend="order",outcome="ok"}' in page
