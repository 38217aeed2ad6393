"""Callers to be told (R7): the notice promises that a caller whose recording is kept for
an investigation is informed. A task is closed only with how and when they were told."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.callers.numbers import NumberVault
from app.errors import Conflict, NotFound
from app.retention import iso
from app.retention.errors import Invalid
from app.storage.models import Call, LegalHold, Notification, Recording, utcnow

INFORM_CALLER_OF_HOLD = "inform_caller_of_hold"


def inform_caller_of_hold(session: Session, recording: Recording, hold: LegalHold) -> Notification:
    notification = Notification(
        kind=INFORM_CALLER_OF_HOLD,
        call_sid=recording.call_sid,
        recording_sid=recording.recording_sid,
        hold_id=hold.id,
        created_at=utcnow(),
    )
    session.add(notification)
    session.flush()
    return notification


def notification_object(
    notification: Notification, call: Call, vault: NumberVault
) -> dict[str, Any]:
    return {
        "id": notification.id,
        "kind": notification.kind,
        "call_sid": notification.call_sid,
        "recording_sid": notification.recording_sid,
        "hold_id": notification.hold_id,
        # Who to tell: null when the number was withheld or has been erased.
        "caller_number": vault.reveal(call),
        "created_at": iso(notification.created_at),
        "pending": notification.done_at is None,
        "done_at": iso(notification.done_at),
        "done_by": notification.done_by,
        "method": notification.method,
        "told_at": iso(notification.told_at),
        "note": notification.note,
    }


def notifications(
    session: Session, vault: NumberVault, *, pending: bool | None = None, call_sids: Any = None
) -> list[dict[str, Any]]:
    query = (
        select(Notification, Call)
        .join(Call, Call.call_sid == Notification.call_sid)
        .order_by(Notification.id)
    )
    if pending is not None:
        query = query.where(
            Notification.done_at.is_(None) if pending else Notification.done_at.is_not(None)
        )
    if call_sids is not None:
        query = query.where(Notification.call_sid.in_(call_sids))
    return [notification_object(n, c, vault) for n, c in session.execute(query)]


def complete(
    session: Session,
    notification_id: int,
    *,
    method: str,
    note: str | None,
    told_at: datetime | None,
    actor: str,
) -> Notification:
    now = utcnow()
    if not method.strip():
        raise Invalid("method: how the caller was told is required")
    if told_at is not None and told_at > now:
        raise Invalid("told_at: cannot be in the future")
    notification = session.scalars(
        select(Notification).where(Notification.id == notification_id).with_for_update()
    ).one_or_none()
    if notification is None:
        raise NotFound(f"no notification {notification_id}")
    if notification.done_at is not None:
        raise Conflict(f"notification {notification_id} was already closed")
    notification.method = method.strip()
    notification.note = note
    notification.told_at = told_at or now
    notification.done_at = now
    notification.done_by = actor
    audit.append(
        session,
        audit.EventType.NOTIFICATION_DONE,
        actor=actor,
        call_sid=notification.call_sid,
        recording_sid=notification.recording_sid,
        detail={
            "notification_id": notification_id,
            "kind": notification.kind,
            "hold_id": notification.hold_id,
            "method": notification.method,
            "told_at": notification.told_at.isoformat(),
        },
    )
    return notification
