"""What every shop service's HTTP side shares: the app factory, errors, probes, metrics.

Every error leaves as JSON, ``{"error": <code>, "message": <text>, ...}``: malformed
requests get a 4xx (422 for a body or parameter that fails validation), a dependency that
does not answer a 503, anything unexpected a 500. ``/healthz`` says only that the process
serves; ``/readyz`` runs the service's own checks of its dependencies.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import metrics

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], dict[str, bool]]
"""Returns each dependency's name and whether it answers; run in a worker thread."""


class ApiError(Exception):
    """An error with its HTTP status and a stable, machine-readable code."""

    def __init__(self, status: int, error: str, message: str = "", **extra: Any) -> None:
        super().__init__(message or error)
        self.status = status
        self.error = error
        self.message = message or error.replace("_", " ")
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "message": self.message, **self.extra}


class Worker(Protocol):
    """A background loop (outbox relay, consumer, schema set-up) tied to the app's life."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    415: "unsupported_media_type",
}


def error_response(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.status >= 500:
        log.warning("%s: %s", exc.error, exc.message)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
        for e in exc.errors()
    ]
    return error_response(422, "invalid_request", "the request is malformed", detail=problems)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return error_response(exc.status_code, code, str(exc.detail))


async def _unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error: %s", exc)
    return error_response(500, "internal", "unexpected error")


def create_app(
    service: str,
    ready: ReadyCheck | None = None,
    workers: Sequence[Worker] = (),
) -> FastAPI:
    """A FastAPI app with the shop's error format, probes, metrics and background workers."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for worker in workers:
            worker.start()
        try:
            yield
        finally:
            for worker in reversed(workers):
                await run_in_threadpool(worker.stop)

    app = FastAPI(title=f"shop {service}", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(metrics.MetricsMiddleware, service=service)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz")
    async def readyz() -> Response:
        checks = await run_in_threadpool(ready) if ready else {}
        ok = all(checks.values())
        body = {"ready": ok, "service": service, "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def metrics_page() -> Response:
        content, content_type = metrics.render()
        return Response(content, media_type=content_type)

    return app
