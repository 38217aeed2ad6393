"""Request ids, one JSON access line per request, webhook metrics and /metrics.

A plain ASGI middleware: Starlette's BaseHTTPMiddleware adds a task and a stream per
request, which costs more than everything this does."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.runtime.metrics import WEBHOOKS

log = structlog.get_logger("callguard.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_OUTCOMES = {403: "rejected", 400: "invalid", 413: "invalid", 422: "invalid"}


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = _header(scope, b"x-request-id")
        request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope["path"]  # never the query: it may hold a phone number
            if path.startswith("/webhooks/"):
                outcome = scope.get("state", {}).get("webhook_outcome")
                WEBHOOKS.labels(path, outcome or _OUTCOMES.get(status, "applied")).inc()
            log.info(
                "request",
                method=scope["method"],
                path=path,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")


def _header(scope: Scope, name: bytes) -> str:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return ""


def install(app: FastAPI, state_registry: CollectorRegistry) -> None:
    app.add_middleware(Observe)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        body = generate_latest(REGISTRY) + generate_latest(state_registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
