"""One place renders errors as CONTRACT.md's JSON shape."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import DomainError

log = structlog.get_logger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_request",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    """Every error's body: a code and a sentence; a few add fields (`confirmed`)."""

    model_config = ConfigDict(extra="allow")

    error: str
    detail: str


# What each error status means across the people's API (OpenAPI's `responses`).
_MEANINGS = {
    400: "A value the service cannot use or store (an unknown department or agent, say)",
    401: "No bearer token, or one that is not valid or has been revoked",
    403: "The token's role may not do this",
    404: "No such call, recording, hold, notification or media link (for an agent: "
    "no such call of theirs)",
    409: "The current state forbids it: an ended call, a released hold, no media yet",
    410: "The recording has been destroyed",
    413: "The request body is larger than 64 KiB",
    422: "The request does not validate: `detail` names each field at fault",
    429: "Too many missing, wrong or revoked tokens from this client: see Retry-After",
    502: "The platform failed: a transfer, or the recording's media",
    503: "Unavailable for now: no valid policy, the database, a call busy, or a pause "
    "that was not confirmed",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a router: the errors its routes give, all with ErrorBody."""
    return {s: {"model": ErrorBody, "description": _MEANINGS[s]} for s in statuses}


def error_body(
    status: int,
    code: str | None,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> JSONResponse:
    body = {"error": code or _HTTP_CODES.get(status, "error"), "detail": detail, **extra}
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        return error_body(exc.status, exc.code, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_body(exc.status_code, None, str(exc.detail))

    @app.exception_handler(DBAPIError)
    async def _database(_request: Request, exc: DBAPIError) -> JSONResponse:
        # 503 so the platform retries a callback; nothing was applied.
        log.error("database_error", error=type(exc).__name__)
        return error_body(503, "database_unavailable", "the database cannot be reached")

    @app.exception_handler(DataError)
    async def _unstorable(_request: Request, exc: DataError) -> JSONResponse:
        # The database is there but refuses a value (too long, out of range, a NUL):
        # the request's fault, so not a 503 the platform would retry forever.
        log.warning("unstorable_value", error=type(exc.orig).__name__)
        return error_body(
            400, None, "a value in the request is too long, out of range or holds NUL"
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return error_body(422, "invalid_request", problems)
