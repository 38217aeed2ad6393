"""Liveness and readiness: no token needed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import ServicesDep
from app.audit.sequencer import WAIT_BOUND_SECONDS, oldest_wait
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
    if current == head:
        checks["audit_sequencing"] = _sequencing(services)
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


def _sequencing(services: ServicesDep) -> str:
    """Whether audited events get their place in the log in time (app/audit/sequencer.py):
    an event waiting longer than the bound means no sequencer is getting through."""
    try:
        with services.engine.connect() as connection:
            waited = oldest_wait(connection)
    except SQLAlchemyError as exc:
        return f"unreadable: {type(exc).__name__}"
    if waited is not None and waited > WAIT_BOUND_SECONDS:
        return f"events waiting {waited:.1f} s for their place (bound {WAIT_BOUND_SECONDS} s)"
    return "ok"
