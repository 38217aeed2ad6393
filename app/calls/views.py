"""Read models of CONTRACT.md: the call object, recordings, audit events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.people.users import Role
from app.retention.holds import hold_object
from app.storage.models import AuditEvent, Call, Recording, User


def _visible(user: User) -> Any:
    """Agents see only the calls assigned to them."""
    return Call.agent == user.name if user.role == Role.AGENT else True


def call_object(call: Call) -> dict[str, Any]:
    return {
        "call_sid": call.call_sid,
        "status": call.status,
        "department": call.department,
        "agent": call.agent,
        "recording": call.recording,
        "desired": call.desired,
        "reasons": list(call.reasons),
        "policy_version": call.policy_version,
        "payment_in_progress": call.payment_in_progress,
        "opted_out": call.opted_out,
        "non_recorded_line": call.non_recorded_line,
    }


def call_for(session: Session, user: User, call_sid: str, *, lock: bool = False) -> Call:
    """The call if this person may see it; another agent's call is the same 404 as a
    call that does not exist, so its existence is not revealed."""
    query = select(Call).where(Call.call_sid == call_sid).where(_visible(user))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    call = session.scalars(query).one_or_none()
    if call is None:
        raise NotFound(f"no call {call_sid}")
    return call


def calls_for(session: Session, user: User, active: bool | None, limit: int = 500) -> list[Call]:
    query = select(Call).where(_visible(user)).order_by(Call.started_at.desc()).limit(limit)
    if active is not None:
        query = query.where(Call.ended.is_(not active))
    return list(session.scalars(query))


def recording_object(recording: Recording) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "recording_sid": recording.recording_sid,
        "call_sid": recording.call_sid,
        "department": recording.department,
        "status": recording.status,
        "retention": recording.retention,
        "policy_version": recording.policy_version,
        "started_at": iso(recording.started_at),
        "completed_at": iso(recording.completed_at),
        "destroy_after": iso(recording.destroy_after),
        "destroyed_at": iso(recording.destroyed_at),
        "holds": [hold_object(h) for h in recording.holds],
    }


def recording_by_sid(session: Session, recording_sid: str) -> Recording:
    recording = session.get(Recording, recording_sid)
    if recording is None:
        raise NotFound(f"no recording {recording_sid}")
    return recording


def event_seal(event: AuditEvent) -> dict[str, str]:
    return {"prev_hash": event.prev_hash, "hash": event.hash, "body": event.body.decode()}


def event_object(event: AuditEvent) -> dict[str, Any]:
    return {
        "sequence": event.sequence,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "received_at": event.received_at.isoformat(),
        "actor": event.actor,
        "call_sid": event.call_sid,
        "recording_sid": event.recording_sid,
        "reasons": list(event.reasons),
        "policy_version": event.policy_version,
        "detail": dict(event.detail),
    }
