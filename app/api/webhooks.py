"""Twilio's webhooks. Every one is signature-checked before anything is read or stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import parse_qsl

import structlog
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator

from app.api.deps import ServicesDep
from app.calls.platform import Reply
from app.errors import Forbidden
from app.services import Services

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/webhooks/twilio", tags=["platform webhooks"])

TWIML = "application/xml"


async def signed_form(request: Request, services: ServicesDep) -> ImmutableMultiDict[str, str]:
    """The form, once its X-Twilio-Signature is right for the public URL the platform
    called: CALLGUARD_PUBLIC_BASE_URL + path + raw query, so it holds behind a TLS
    proxy and on non-default ports."""
    body = (await request.body()).decode("utf-8", errors="replace")
    form = ImmutableMultiDict(parse_qsl(body, keep_blank_values=True))
    query = request.scope.get("query_string", b"").decode("latin-1")
    url = services.settings.public_base_url + request.url.path + (f"?{query}" if query else "")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not RequestValidator(services.webhook_token).validate(url, form, signature):
        raise Forbidden("bad or missing X-Twilio-Signature")
    return form


Form = Annotated[ImmutableMultiDict[str, str], Depends(signed_form)]


def _token(request: Request) -> str | None:
    return request.headers.get("I-Twilio-Idempotency-Token") or None


def _render(reply: Reply) -> Response:
    if reply.twiml is None:
        return Response(status_code=204)
    return Response(reply.twiml, media_type=TWIML)


def _answer_call(services: Services, handler: Callable[[], Reply]) -> Response:
    """A caller is waiting: if the database is unreachable they still get an answer, the
    fail-safe one (P7), within the platform's timeout."""
    try:
        return _render(handler())
    except DBAPIError as exc:
        log.error("database_unavailable_fail_safe", error=type(exc).__name__)
        return Response(services.platform.fail_safe_twiml(), media_type=TWIML)


@router.post("/voice")
def voice(request: Request, form: Form, services: ServicesDep) -> Response:
    return _answer_call(services, lambda: services.platform.voice(form, _token(request)))


@router.post("/ivr")
def ivr(
    request: Request,
    form: Form,
    services: ServicesDep,
    step: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> Response:
    return _answer_call(services, lambda: services.platform.ivr(form, step, _token(request)))


@router.post("/transfer")
def transfer(
    request: Request,
    form: Form,
    services: ServicesDep,
    kind: str = "department",
    transfer: Annotated[int, Query(ge=1)] = 1,
    department: str = "",
) -> Response:
    return _answer_call(
        services,
        lambda: services.transfers.webhook(form, kind, transfer, department, _token(request)),
    )


@router.post("/assignment")
def assignment(request: Request, form: Form, services: ServicesDep) -> JSONResponse:
    """TaskRouter's assignment callback: answers its JSON instruction."""
    return JSONResponse(services.assignments.handle(form, _token(request)))


@router.post("/call-status")
def call_status(request: Request, form: Form, services: ServicesDep) -> Response:
    return _render(services.platform.call_status(form, _token(request)))


@router.post("/recording-status")
def recording_status(request: Request, form: Form, services: ServicesDep) -> Response:
    return _render(services.platform.recording_status(form, _token(request)))
