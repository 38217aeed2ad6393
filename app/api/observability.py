"""Request ids, one JSON access line per request, webhook metrics and /metrics."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from app.metrics import WEBHOOKS

log = structlog.get_logger("callguard.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_OUTCOMES = {403: "rejected", 400: "invalid", 413: "invalid", 422: "invalid"}


def install(app: FastAPI, state_registry: CollectorRegistry) -> None:
    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        offered = request.headers.get("X-Request-ID", "")
        request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            response.headers["X-Request-ID"] = request_id
            return response
        finally:
            path = request.url.path  # never the query: it may hold a phone number
            if path.startswith("/webhooks/"):
                outcome = getattr(request.state, "webhook_outcome", None)
                WEBHOOKS.labels(path, outcome or _OUTCOMES.get(status, "applied")).inc()
            log.info(
                "request",
                method=request.method,
                path=path,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        body = generate_latest(REGISTRY) + generate_latest(state_registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
