"""Legal holds (R2): many per recording; while one is unreleased the recording is never
destroyed. Placing one also creates the task of telling the caller (R7)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.errors import Conflict, NotFound
from app.retention import iso
from app.retention.errors import Gone
from app.retention.notifications import inform_caller_of_hold
from app.storage.models import LegalHold, Recording, utcnow


def hold_object(hold: LegalHold) -> dict[str, Any]:
    return {
        "id": hold.id,
        "recording_sid": hold.recording_sid,
        "case_reference": hold.case_reference,
        "reason": hold.reason,
        "placed_by": hold.placed_by,
        "placed_at": iso(hold.placed_at),
        "released_by": hold.released_by,
        "released_at": iso(hold.released_at),
        "active": hold.released_at is None,
    }


def lock_recording(session: Session, recording_sid: str) -> Recording:
    """The recording row, locked: hold changes and retention claims on it are serialised."""
    recording = session.scalars(
        select(Recording)
        .where(Recording.recording_sid == recording_sid)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if recording is None:
        raise NotFound(f"no recording {recording_sid}")
    return recording


def _count_active(session: Session, recording: Recording) -> None:
    session.flush()
    recording.active_holds = (
        session.scalar(
            select(func.count())
            .select_from(LegalHold)
            .where(LegalHold.recording_sid == recording.recording_sid)
            .where(LegalHold.released_at.is_(None))
        )
        or 0
    )


def place_hold(
    session: Session, recording_sid: str, case_reference: str, reason: str, actor: str
) -> tuple[LegalHold, int]:
    """Returns the hold and the id of the notification to tell the caller."""
    recording = lock_recording(session, recording_sid)
    if recording.destroyed_at is not None:
        raise Gone(f"recording {recording_sid} was destroyed at {iso(recording.destroyed_at)}")
    if recording.claimed_until is not None and recording.claimed_until > utcnow():
        # A retention worker may be deleting it at the provider right now.
        raise Conflict(
            f"recording {recording_sid} is being destroyed by retention run "
            f"{recording.claimed_by}; try again after {iso(recording.claimed_until)}"
        )
    hold = LegalHold(
        recording_sid=recording_sid,
        case_reference=case_reference,
        reason=reason,
        placed_by=actor,
        placed_at=utcnow(),
    )
    session.add(hold)
    _count_active(session, recording)
    notification = inform_caller_of_hold(session, recording, hold)
    # The reason is free text and stays in the hold's row; the log names the case.
    audit.append(
        session,
        audit.EventType.HOLD_PLACED,
        actor=actor,
        call_sid=recording.call_sid,
        recording_sid=recording_sid,
        detail={
            "hold_id": hold.id,
            "case_reference": case_reference,
            "active_holds": recording.active_holds,
            "notification_id": notification.id,
        },
    )
    return hold, notification.id


def release_hold(
    session: Session, hold_id: int, actor: str, recording_sid: str | None = None
) -> LegalHold:
    """Release one hold; when it was the last, an overdue recording goes at the next run."""
    found = session.get(LegalHold, hold_id)
    if found is None or recording_sid not in (None, found.recording_sid):
        raise NotFound(f"no hold {hold_id}" + (f" on {recording_sid}" if recording_sid else ""))
    recording = lock_recording(session, found.recording_sid)
    session.refresh(found)
    if found.released_at is not None:
        raise Conflict(f"hold {hold_id} was already released by {found.released_by}")
    found.released_by = actor
    found.released_at = utcnow()
    _count_active(session, recording)
    audit.append(
        session,
        audit.EventType.HOLD_RELEASED,
        actor=actor,
        call_sid=recording.call_sid,
        recording_sid=recording.recording_sid,
        detail={
            "hold_id": hold_id,
            "case_reference": found.case_reference,
            "active_holds": recording.active_holds,
        },
    )
    return found
