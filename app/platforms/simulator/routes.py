"""The simulated platform's own routes (only with CALLGUARD_PROVIDER=simulator): the
caller hangs up, and a look at a call. Signed like webhooks, with the same token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import ServicesDep
from app.audit import log as audit
from app.calls import views
from app.calls.store import find_call, recordings_of
from app.errors import BadRequest
from app.platforms.simulator.callbacks import call_completed
from app.platforms.simulator.provider import SimulatorProvider
from app.platforms.twilio.errors import error_from_response
from app.platforms.twilio.webhooks import Form
from app.storage.db import unit_of_work
from app.storage.policy_versions import active_policy

router = APIRouter(prefix="/simulator", tags=["simulator"])

# The provider's request arguments a call's command log may show: SIDs and our own URLs.
# An allow-list, so an argument added later (a phone number, say) is never shown.
COMMAND_ARGS = ("call_sid", "recording_sid", "url", "status_callback")


def _simulator(services: ServicesDep) -> SimulatorProvider:
    assert isinstance(services.provider, SimulatorProvider)
    return services.provider


@router.post("/calls/{call_sid}/hangup")
def hangup(call_sid: str, _form: Form, services: ServicesDep) -> dict[str, Any]:
    provider = _simulator(services)
    provider.hangup(call_sid)
    provider.outbox.put(
        call_completed(
            provider.account_sid,
            call_sid,
            f"{services.settings.public_base_url}/webhooks/twilio/call-status",
            # The simulated platform sends one call-progress event per call: the end.
            sequence=0,
        )
    )
    return {"call_sid": call_sid, "status": "completed"}


@router.post("/policy")
def policy(_form: Form, services: ServicesDep) -> dict[str, Any]:
    """The active policy, so the simulated caller knows which number to dial."""
    with unit_of_work(services.sessions) as session:
        active = active_policy(session)
    return {"version": active.version, **active.policy.to_public_dict()} if active else {}


@router.post("/faults")
def inject_fault(form: Form, services: ServicesDep) -> dict[str, Any]:
    """Make the simulated platform fail its next `times` requests of `operation` (pause,
    say) with HTTP `status`, classified as the Twilio adapter classifies Twilio's answers
    (5xx and 429 transient, 404 not found): for demonstrations and the browser tests."""
    operation = form.get("operation", "")
    try:
        status = int(form.get("status", "500"))
        times = int(form.get("times", "1"))
    except ValueError:
        raise BadRequest("status and times must be integers") from None
    if not 400 <= status <= 599:
        raise BadRequest("status must be an HTTP error status (400-599)")
    error = error_from_response(status, None, f"simulated platform fault ({status})")
    try:
        _simulator(services).inject_fault(operation, error, times)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return {"operation": operation, "status": status, "times": times}


@router.post("/calls/{call_sid}/inspect")
def inspect(call_sid: str, _form: Form, services: ServicesDep) -> dict[str, Any]:
    """The call, its recordings and events, and the platform commands callguard issued for
    it (start, pause, resume, stop, redirect), in the order the platform received them."""
    commands = _commands(_simulator(services), call_sid)
    with unit_of_work(services.sessions) as session:
        call = find_call(session, call_sid)
        return {
            "call": views.call_object(call) if call else None,
            "recordings": [views.recording_object(r) for r in recordings_of(session, call_sid)],
            "events": [views.event_object(e) for e in audit.events_for(session, call_sid=call_sid)],
            "commands": commands,
        }


def _commands(provider: SimulatorProvider, call_sid: str) -> list[dict[str, Any]]:
    return [
        {"operation": operation, "args": {k: v for k, v in args.items() if k in COMMAND_ARGS}}
        for operation, args in list(provider.requests)  # a copy: requests keep arriving
        if args.get("call_sid") == call_sid
    ]
