"""The people's API: read routes of the foundation (policy, calls, recordings, audit)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.api.deps import AnyRole, CallActor, GovernancePlus, ServicesDep, Sid
from app.api.errors import error_responses
from app.audit import log as audit
from app.audit.verify import verify_log
from app.calls import views
from app.errors import Unavailable
from app.storage.db import read_only_session, unit_of_work
from app.storage.policy_versions import active_policy

router = APIRouter(
    prefix="/api/v1", tags=["people"], responses=error_responses(400, 401, 403, 404, 422, 429, 503)
)


@router.get("/me")
def me(user: AnyRole) -> dict[str, Any]:
    """Who the token belongs to (the console shows the agent's or the supervisor's view)."""
    return {"name": user.name, "role": user.role}


@router.get("/policy")
def get_policy(_user: AnyRole, services: ServicesDep) -> dict[str, Any]:
    with unit_of_work(services.sessions) as session:
        active = active_policy(session)
    if active is None:
        raise Unavailable("no valid policy is active: calls are handled by the fail-safe")
    return {"version": active.version, **active.policy.to_public_dict()}


@router.get("/calls")
def list_calls(
    user: CallActor, services: ServicesDep, active: bool | None = None
) -> dict[str, Any]:
    with unit_of_work(services.sessions) as session:
        calls = views.calls_for(session, user, active)
        return {"items": [views.call_object(c) for c in calls]}


@router.get("/calls/{call_sid}")
def get_call(call_sid: Sid, user: CallActor, services: ServicesDep) -> dict[str, Any]:
    with unit_of_work(services.sessions) as session:
        return views.call_object(views.call_for(session, user, call_sid))


@router.get("/calls/{call_sid}/events")
def call_events(call_sid: Sid, user: CallActor, services: ServicesDep) -> dict[str, Any]:
    """The call's audit events in order: its timeline (an agent: their own calls only)."""
    with unit_of_work(services.sessions) as session:
        views.call_for(session, user, call_sid)
        events = audit.events_for(session, call_sid=call_sid)
        return {"items": [views.event_object(e) for e in events]}


@router.get("/recordings/{recording_sid}")
def get_recording(
    recording_sid: Sid, _user: GovernancePlus, services: ServicesDep
) -> dict[str, Any]:
    with unit_of_work(services.sessions) as session:
        return views.recording_object(views.recording_by_sid(session, recording_sid))


@router.get("/audit/verify")
def verify_audit(_user: GovernancePlus, services: ServicesDep) -> dict[str, Any]:
    """Walk the whole hash chain; the first broken link if there is one."""
    with read_only_session(services.engine) as session:
        return verify_log(session).as_dict()


@router.get("/audit")
def list_audit(
    _user: GovernancePlus,
    services: ServicesDep,
    call_sid: str | None = None,
    recording_sid: str | None = None,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,  # SQLite's integers
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> dict[str, Any]:
    with unit_of_work(services.sessions) as session:
        events = audit.events_for(
            session, call_sid=call_sid, recording_sid=recording_sid, after=after, limit=limit
        )
        # What an auditor re-verifies: the hashed body and the links (README, Evidence).
        return {"items": [views.event_object(e) | views.event_seal(e) for e in events]}
