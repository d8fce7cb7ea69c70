"""Error bodies and probes every shop service shares."""

from __future__ import annotations

from fastapi.testclient import TestClient

from chaoskit.topology.shop.web import ApiError, create_app


def test_errors_leave_as_json_with_a_code() -> None:
    app = create_app("test", ready=lambda: {"mysql": False, "schema": True})

    @app.get("/declined")
    def declined() -> None:
        raise ApiError(402, "payment_declined", "no", order_id="o1")

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/declined")
        assert response.status_code == 402
        assert response.json() == {"error": "payment_declined", "message": "no", "order_id": "o1"}
        response = client.get("/boom")
        assert response.status_code == 500
        assert response.json()["error"] == "internal"
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"] == {"mysql": False, "schema": True}
        assert client.get("/healthz").status_code == 200
        page = client.get("/metrics").text
        assert 'http_request_errors_total{method="GET",route="/boom",service="test"} 1.0' in page
