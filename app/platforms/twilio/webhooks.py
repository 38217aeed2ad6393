"""Twilio's webhooks. Every one is signature-checked before anything is read or stored,
translated into callguard's inputs (forms.py), handed to the call-control service, and
answered in TwiML (answers.py). While the database is unreachable each is journalled and
answered at once: a waiting caller gets the fail-safe TwiML (P7), a status callback a 2xx."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError, DBAPIError
from starlette.datastructures import ImmutableMultiDict

from app.api.deps import ServicesDep, get_services
from app.calls.events import Reply
from app.errors import Forbidden
from app.platforms.twilio import forms
from app.platforms.twilio.answers import TwimlAnswers, assignment_instruction
from app.platforms.twilio.signature import SignedForm, valid_signature
from app.runtime.services import Services
from app.storage.db import run_transactions

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/webhooks/twilio", tags=["platform webhooks"])
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])

TWIML = "application/xml"
DEPARTMENT_ID = r"^([a-z0-9]+(-[a-z0-9]+)*)?$"  # a policy's department slug, or none
_PLAIN_PATH = re.compile(r"(?!//)[A-Za-z0-9/_.~+-]*")
CALLER_WAITING = {"/webhooks/twilio/voice", "/webhooks/twilio/ivr", "/webhooks/twilio/transfer"}


async def signed_form(request: Request) -> ImmutableMultiDict[str, str]:
    """The form, once its X-Twilio-Signature is right for the public URL the platform
    called (CALLGUARD_PUBLIC_BASE_URL + path + raw query, so it holds behind a TLS proxy
    and on non-default ports) and it is a form Twilio could send (forms.check_form).

    On every webhook's path, so it takes the services from the app itself rather than as
    a dependency of its own (FastAPI solves each one anew, cached or not)."""
    services: Services = request.app.state.services
    body = (await request.body()).decode("utf-8", errors="replace")
    pairs = forms.parse_form(body)
    form = SignedForm(pairs)
    query = request.scope.get("query_string", b"").decode("latin-1")
    url = services.settings.public_base_url + _path(request) + (f"?{query}" if query else "")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not valid_signature(services.webhook_token, url, form, signature):
        raise Forbidden("bad or missing X-Twilio-Signature")
    forms.check_form(form, len(pairs))
    return form


def _path(request: Request) -> str:
    """request.url.path, which builds and parses the whole URL: the same as the routed
    path itself unless that holds a character the URL escapes or drops."""
    path: str = request.scope["path"]
    return path if _PLAIN_PATH.fullmatch(path) else request.url.path


Form = Annotated[ImmutableMultiDict[str, str], Depends(signed_form)]


class SignedOnly(APIRoute):
    """The route of an async webhook that takes exactly (request, form: Form, services:
    ServicesDep): called with those three directly, not through FastAPI's solving of its
    dependencies and its response handling, which cost ~0.3 ms of CPU a request (~10 % of
    the voice webhook; issue 17, README How far it goes). The endpoint keeps its declared
    signature, so the OpenAPI description and the routes' audit (every signed route
    depends on signed_form: tests/api/test_agent_isolation.py) still read it; a signature
    that asks FastAPI for anything more fails here, when the app is built, rather than be
    handed nothing."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant
        asked = [(d.name, d.call) for d in dependant.dependencies]
        params = [
            *dependant.path_params,
            *dependant.query_params,
            *dependant.header_params,
            *dependant.cookie_params,
            *dependant.body_params,
        ]
        if (
            dependant.request_param_name != "request"
            or asked != [("form", signed_form), ("services", get_services)]
            or params
            or not inspect.iscoroutinefunction(self.endpoint)
        ):
            raise TypeError(f"{self.path}: SignedOnly takes async (request, form, services)")
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            form = await signed_form(request)
            response: Response = await endpoint(request, form, request.app.state.services)
            return response

        return handle


def _signed_post(path: str) -> Callable[[Endpoint], Endpoint]:
    def register(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(path, endpoint, methods=["POST"], route_class_override=SignedOnly)
        return endpoint

    return register


def _token(request: Request) -> str | None:
    return request.headers.get("I-Twilio-Idempotency-Token") or None


def answers(services: Services) -> TwimlAnswers:
    settings = services.settings
    return TwimlAnswers(settings.public_base_url, settings.taskrouter_workflow_sid)


def _render(reply: Reply, request: Request) -> Response:
    if reply.duplicate:
        request.state.webhook_outcome = "duplicate"
    if reply.body is None:
        return Response(status_code=204)
    return Response(reply.body, media_type=TWIML)


def _durably(
    request: Request,
    form: ImmutableMultiDict[str, str],
    services: Services,
    handler: Callable[[], Response],
    fallback: Callable[[], Response],
) -> Response:
    """If the database is unreachable, the webhook is journalled (to be replayed once it is
    back) and answered at once: a caller gets the fail-safe TwiML (P7), a status callback a
    2xx, within the platform's timeout."""
    try:
        return handler()
    except DataError:
        raise  # a value the database cannot hold: the content's fault, a 400 (errors.py)
    except DBAPIError as exc:
        query = request.scope.get("query_string", b"").decode("latin-1")
        path = request.url.path + (f"?{query}" if query else "")
        try:
            services.journal.append(path, dict(form), _token(request))
        except OSError:
            log.exception("journal_write_failed", path=request.url.path)
            if request.url.path in CALLER_WAITING:
                return fallback()
            raise  # nowhere to keep it: 503, so the platform sends it again
        request.state.webhook_outcome = "journaled"
        log.error("database_unavailable_journaled", path=request.url.path, error=type(exc).__name__)
        return fallback()


async def _database_only(
    request: Request,
    form: ImmutableMultiDict[str, str],
    services: Services,
    handler: Callable[[], Response],
    fallback: Callable[[], Response],
) -> Response:
    """_durably, for a webhook whose handler does nothing but units of work (no provider
    call): run where app/storage/db.py's run_transactions says, on SQLite mostly on the
    event loop itself. The others stay plain `def` endpoints, on FastAPI's thread pool."""
    return await run_transactions(
        services.engine, partial(_durably, request, form, services, handler, fallback)
    )


def _fail_safe(services: Services) -> Callable[[], Response]:
    """Nothing can be logged without the database, so only CALLGUARD_FAIL_SAFE decides."""
    record = services.calls.fail_safe_records
    return lambda: Response(answers(services).fail_safe(record), media_type=TWIML)


def _accepted() -> Response:
    return Response(status_code=204)


@_signed_post("/voice")
async def voice(request: Request, form: Form, services: ServicesDep) -> Response:
    render = answers(services).render
    return await _database_only(
        request,
        form,
        services,
        lambda: _render(
            services.calls.arrived(forms.voice(form, _token(request)), render), request
        ),
        _fail_safe(services),
    )


@router.post("/ivr")
def ivr(
    request: Request,
    form: Form,
    services: ServicesDep,
    step: Annotated[int, Query(ge=1, le=1000)] = 1,
) -> Response:
    render = answers(services).render
    return _durably(
        request,
        form,
        services,
        lambda: _render(
            services.calls.menu_answered(forms.ivr(form, step, _token(request)), render), request
        ),
        _fail_safe(services),
    )


@router.post("/transfer")
def transfer(
    request: Request,
    form: Form,
    services: ServicesDep,
    kind: str = "department",
    transfer: Annotated[int, Query(ge=1)] = 1,
    # A department id (the URL is ours): anything else would end up in the TwiML.
    department: Annotated[str, Query(max_length=64, pattern=DEPARTMENT_ID)] = "",
) -> Response:
    render = answers(services).render
    return _durably(
        request,
        form,
        services,
        lambda: _render(
            services.transfers.leg_arrived(
                forms.transfer(form, kind, transfer, department, _token(request)), render
            ),
            request,
        ),
        _fail_safe(services),
    )


@router.post("/assignment")
def assignment(request: Request, form: Form, services: ServicesDep) -> Response:
    """TaskRouter's assignment callback: answers its JSON instruction."""

    def handle() -> Response:
        offer, worker = forms.assignment(form, _token(request))
        body = services.assignments.offered(offer, assignment_instruction(worker))
        return Response(body, media_type="application/json")

    return _durably(
        request, form, services, handle, lambda: JSONResponse({"instruction": "dequeue"})
    )


@_signed_post("/call-status")
async def call_status(request: Request, form: Form, services: ServicesDep) -> Response:
    return await _database_only(
        request,
        form,
        services,
        lambda: _render(
            services.calls.progressed(forms.call_status(form, _token(request))), request
        ),
        _accepted,
    )


@_signed_post("/recording-status")
async def recording_status(request: Request, form: Form, services: ServicesDep) -> Response:
    return await _database_only(
        request,
        form,
        services,
        lambda: _render(
            services.calls.recording_reported(forms.recording_status(form, _token(request))),
            request,
        ),
        _accepted,
    )
