"""Liveness and readiness: no token needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import ServicesDep
from app.storage.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:
        current = current_revision(services.engine)
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        current = None
        checks["database"] = f"unreachable: {type(exc).__name__}"
    head = head_revision()
    checks["migrations"] = "ok" if current == head else f"at {current}, head is {head}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "checks": checks,
            # Webhooks kept while the database was away, not yet replayed.
            "journal_backlog": services.journal.backlog(),
        },
        status_code=200 if ready else 503,
    )
