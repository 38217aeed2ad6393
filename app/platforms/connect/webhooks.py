"""Amazon Connect's two endpoints (CONTRACT.md): POST /webhooks/connect/flow, the contact
flow's Lambda forwarding Connect's ContactFlowEvent, answered with the flat JSON the flow
reads; and POST /webhooks/connect/events, EventBridge's contact events, answered 204.

Both need X-Callguard-Token (compared in constant time: missing 401, wrong 403) before the
body is read, and every field used is checked (flow.py, contact_events.py): a bad one is a
400 and nothing is stored. While the database is unreachable each is journalled (replayed
once it is back, replay.py) and answered at once: the flow with the fail-safe answer (P7),
an event with 204."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.exc import DataError, DBAPIError

from app.api.deps import ServicesDep
from app.calls.completion import Completions
from app.calls.events import Reply
from app.calls.inputs import SegmentArrived
from app.calls.provider import ProviderError
from app.calls.store import find_call
from app.errors import BadRequest, Forbidden, Unauthorized, Unavailable
from app.platforms.connect import contact_events, flow
from app.platforms.connect.client import ConnectClient
from app.runtime.services import Services
from app.storage.db import unit_of_work

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/webhooks/connect", tags=["platform webhooks"])

TOKEN_HEADER = "X-Callguard-Token"  # noqa: S105  (a header name, not a secret)
FLOW_PATH = "/webhooks/connect/flow"
EVENTS_PATH = "/webhooks/connect/events"
ANSWER = "application/json"
# Marks a journalled flow call whose fail-safe answer started a recording (CALLGUARD_FAIL_SAFE
# =record): the replay makes callguard track it like any other.
FAIL_SAFE_RECORDING = "callguard_fail_safe_recording"


async def authenticated(request: Request, services: ServicesDep) -> Any:
    """The JSON body, once the token is right."""
    token = request.headers.get(TOKEN_HEADER)
    if not token:
        raise Unauthorized(f"{TOKEN_HEADER} is required")
    expected = services.webhook_token.encode()
    if not hmac.compare_digest(token.encode("utf-8", "replace"), expected):
        raise Forbidden(f"bad {TOKEN_HEADER}")
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested past any Connect's
        raise BadRequest("the body is not JSON") from None


Payload = Annotated[Any, Depends(authenticated)]


def connect_of(services: Services) -> ConnectClient:
    client: ConnectClient = services.provider
    return client


def completions(services: Services) -> Completions:
    return Completions(services.sessions, connect_of(services).contacts, services.calls)


def _durably(
    request: Request,
    payload: Any,
    services: Services,
    handler: Callable[[], Response],
    fallback: Callable[[], Response],
) -> Response:
    """The database unreachable: journal the payload (replayed once it is back) and
    answer at once."""
    try:
        return handler()
    except DataError:
        raise  # a value the database cannot hold: the content's fault, a 400 (errors.py)
    except DBAPIError as exc:
        answer = fallback()  # first: it may start a recording the journal must name
        if getattr(request.state, "fail_safe_recording", False):
            payload = {**payload, FAIL_SAFE_RECORDING: True}
        try:
            services.journal.append(request.url.path, payload, None)
        except OSError:
            log.exception("journal_write_failed", path=request.url.path)
            if request.url.path == FLOW_PATH:
                return answer  # a caller is waiting: the fail-safe all the same
            raise  # nowhere to keep it: 503, so EventBridge sends it again
        request.state.webhook_outcome = "journaled"
        log.error("database_unavailable_journaled", path=request.url.path, error=type(exc).__name__)
        return answer


def _answered(reply: Reply, request: Request) -> Response:
    if reply.duplicate:
        request.state.webhook_outcome = "duplicate"
    return Response(reply.body or "", media_type=ANSWER)


def _accepted(reply: Reply | None, request: Request) -> Response:
    if reply is not None and reply.duplicate:
        request.state.webhook_outcome = "duplicate"
    return Response(status_code=204)


def current_step(services: Services, call_sid: str) -> int:
    """The menu step the call is at, for a flow that does not pass `menu_step` back."""
    with unit_of_work(services.sessions) as session:
        call = find_call(session, call_sid)
        return max(call.ivr_step, 1) if call else 1


@router.post("/flow")
def flow_call(request: Request, payload: Payload, services: ServicesDep) -> Response:
    connect = connect_of(services)
    call = flow.parse(payload, connect.instance_id)
    if call.queue_name and call.queue_arn:
        connect.queues.learn(call.queue_name, call.queue_arn)
    render = connect.answers.render

    def handle() -> Response:
        if call.step == "digits":
            step = call.menu_step or current_step(services, call.initial_id)
            reply = services.calls.menu_answered(flow.menu_answer(call, step), render)
            return _answered(reply, request)
        arrival = flow.arrival(call)
        if isinstance(arrival, SegmentArrived):
            return _answered(services.segments.arrived(arrival, render), request)
        return _answered(services.calls.arrived(arrival, render), request)

    def fail_safe() -> Response:
        # Nothing can be logged without the database, so only CALLGUARD_FAIL_SAFE decides.
        record = services.calls.fail_safe_records
        if record:
            try:
                services.reconciler.provider.start_recording(call.initial_id, call.contact_id)
            except ProviderError as exc:
                log.warning("fail_safe_recording_not_started", error=str(exc))
                record = False
            request.state.fail_safe_recording = record
        return Response(connect.answers.fail_safe(record), media_type=ANSWER)

    return _durably(request, payload, services, handle, fail_safe)


@router.post("/events", status_code=204)
def contact_event(request: Request, payload: Payload, services: ServicesDep) -> Response:
    connect = connect_of(services)
    event = contact_events.parse(payload, connect.instance_id)
    if event is None:
        return _accepted(None, request)  # a type, channel or contact callguard does not use

    def handle() -> Response:
        return _accepted(apply_event(services, event), request)

    return _durably(request, payload, services, handle, lambda: Response(status_code=204))


def apply_event(services: Services, event: contact_events.ContactEvent) -> Reply:
    """Apply one contact event (live, or replayed from the journal). A contact that ended
    is described first: its successors keep the call alive, and its recording may be there
    already. Connect unable to answer is a 503 (EventBridge sends the event again)."""
    connect = connect_of(services)
    successors: tuple[str, ...] = ()
    if event.ended:
        try:
            successors = connect.contacts.successors(event.contact_id)
        except ProviderError as exc:
            if exc.transient:
                raise Unavailable(
                    f"Amazon Connect cannot describe contact {event.contact_id} now ({exc})"
                ) from exc
            # Refused for good (permissions): the chain as callguard knows it decides.
            log.warning("connect_successors_unknown", contact=event.contact_id, error=str(exc))
    person = None
    if event.agent_id and event.event_type == "CONNECTED_TO_AGENT":
        person = connect.people.name_of(event.agent_id)
    reply = services.segments.progressed(contact_events.progress(event, successors, person))
    if event.ended and not reply.duplicate:
        completions(services).segment_ended(event.contact_id)
    return reply
