"""Request ids, one JSON access line per request, webhook metrics and /metrics.

A plain ASGI middleware: Starlette's BaseHTTPMiddleware adds a task and a stream per
request, which costs more than everything this does.

Nothing a client writes reaches a log line or a label: both name the matched route's
template (`/api/v1/media/{token}`, never the token) or `other` when no route matched, so
the label set is fixed by the code and a path holding a number or a newline stays out."""

from __future__ import annotations

import os
import re
import time

import structlog
from fastapi import FastAPI, Response
from fastapi.routing import iter_route_contexts
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.runtime.logging import AccessLog
from app.runtime.metrics import WEBHOOKS

log = AccessLog("callguard.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
UNMATCHED = "other"


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: dict[int, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = _header(scope, b"x-request-id")
        request_id = offered if _REQUEST_ID.match(offered) else new_request_id()
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
            route = self.route_of(scope)
            if route.startswith("/webhooks/") or (
                route == UNMATCHED and scope["path"].startswith("/webhooks/")
            ):
                outcome = scope.get("state", {}).get("webhook_outcome")
                count_webhook(route, outcome or _outcome(route, status))
            log.info(
                "request",
                method=scope["method"],
                path=route,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    def route_of(self, scope: Scope) -> str:
        """The full template of the route that handled the request (the router sets
        scope["route"], also on a 405), or `other`: a 404, a trailing-slash redirect, a 413
        refused before routing. FastAPI puts the route as declared in its APIRouter there,
        without the include prefix, so the full template is looked up by that object."""
        if self._templates is None:
            self._templates = {
                id(context.original_route): context.path
                for context in iter_route_contexts(scope["app"].routes)
                if context.path
            }
        route = scope.get("route")
        return self._templates.get(id(getattr(route, "original_route", route)), UNMATCHED)


# uuid4's version and variant bits (RFC 4122), as uuid.UUID(bytes=..., version=4) sets them.
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def new_request_id() -> str:
    """`uuid.uuid4().hex` without building the UUID object, once per request."""
    return f"{int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET:032x}"


_webhook_counters: dict[tuple[str, str], Counter] = {}


def count_webhook(route: str, outcome: str) -> None:
    """WEBHOOKS.labels(route, outcome).inc(), its child kept: the labels are route
    templates and a fixed set of outcomes, so a few dozen at most."""
    counter = _webhook_counters.get((route, outcome))
    if counter is None:
        counter = _webhook_counters[route, outcome] = WEBHOOKS.labels(route, outcome)
    counter.inc()


def _outcome(route: str, status: int) -> str:
    """What a webhook's status says happened, when the handler did not say (duplicate,
    journaled): only a matched route's success is `applied` (not a 404 or a redirect)."""
    if route == UNMATCHED:
        return "invalid"
    if status < 400:
        return "applied"
    if status == 403:
        return "rejected"
    return "invalid" if status < 500 else "failed"


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
