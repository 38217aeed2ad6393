"""Retention at a glance (GET /api/v1/retention/overview): what is due in the next 7 and
30 days, what is overdue and why (a legal hold, or a deletion that failed, with its last
error), and what the last retention run did."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.audit.log import EventType
from app.retention import iso
from app.retention.search import held_clause
from app.storage.models import AuditEvent, LegalHold, Recording, utcnow

LIST_LIMIT = 50  # items per list; the counts are always whole
DAY = timedelta(days=1)


def _failed_event() -> ColumnElement[bool]:
    """The retention run has failed to destroy it at least once. As IN (not a correlated
    EXISTS) both databases start from the few failure events, not from every overdue row."""
    return Recording.recording_sid.in_(
        select(AuditEvent.recording_sid).where(
            AuditEvent.type == str(EventType.RECORDING_DESTROY_FAILED)
        )
    )


def _row(recording: Recording, now: datetime, **extra: Any) -> dict[str, Any]:
    assert recording.destroy_after is not None  # every list is selected on it
    return {
        "recording_sid": recording.recording_sid,
        "call_sid": recording.call_sid,
        "department": recording.department,
        "completed_at": iso(recording.completed_at),
        "destroy_after": iso(recording.destroy_after),
        "destroy_in_days": math.floor((recording.destroy_after - now) / DAY),
        **extra,
    }


def _count(session: Session, where: list[ColumnElement[bool]]) -> int:
    return session.scalar(select(func.count()).select_from(Recording).where(*where)) or 0


def _rows(session: Session, where: list[ColumnElement[bool]], order: Any) -> list[Recording]:
    return list(session.scalars(select(Recording).where(*where).order_by(*order).limit(LIST_LIMIT)))


def _bucket(
    session: Session, where: list[ColumnElement[bool]], order: Any
) -> tuple[int, list[Recording]]:
    return _count(session, where), _rows(session, where, order)


def _last_errors(session: Session, sids: list[str]) -> dict[str, dict[str, Any]]:
    """Each recording's newest `recording.destroy_failed` event, as its last error."""
    errors: dict[str, dict[str, Any]] = {}
    for event in session.scalars(
        select(AuditEvent)
        .where(AuditEvent.recording_sid.in_(sids))
        .where(AuditEvent.type == str(EventType.RECORDING_DESTROY_FAILED))
        .order_by(AuditEvent.sequence.desc())
    ):
        if event.recording_sid in errors:
            continue
        detail = event.detail
        errors[str(event.recording_sid)] = {
            "failed_at": iso(event.occurred_at),
            "stage": detail.get("stage"),
            "error": detail.get("error"),
            "status": detail.get("status"),
            "code": detail.get("code"),
            "sequence": event.sequence,
        }
    return errors


def _held_cases(session: Session, sids: list[str]) -> dict[str, list[str]]:
    """Each recording's unreleased holds' case references, oldest first."""
    cases: dict[str, list[str]] = {sid: [] for sid in sids}
    for sid, case in session.execute(
        select(LegalHold.recording_sid, LegalHold.case_reference)
        .where(LegalHold.recording_sid.in_(sids), LegalHold.released_at.is_(None))
        .order_by(LegalHold.id)
    ):
        cases[sid].append(case)
    return cases


def _last_run(session: Session) -> dict[str, Any] | None:
    runs = list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.type == str(EventType.RETENTION_RUN))
            .order_by(AuditEvent.sequence.desc())
            .limit(2)
        )
    )
    if not runs:
        return None
    last, detail = runs[0], runs[0].detail
    after = runs[1].sequence if len(runs) > 1 else 0
    # Its own destructions: the events between the run before and its summary, by its worker.
    destroyed = []
    for event in session.scalars(
        select(AuditEvent)
        .where(AuditEvent.type == str(EventType.RECORDING_DESTROYED))
        .where(AuditEvent.sequence > after, AuditEvent.sequence < last.sequence)
        .order_by(AuditEvent.sequence.desc())
    ):
        if event.detail.get("worker") != detail.get("worker"):
            continue
        destroyed.append(
            {"recording_sid": event.recording_sid, "destroyed_at": iso(event.occurred_at)}
        )
        if len(destroyed) == LIST_LIMIT:
            break
    failed = int(detail.get("failed", 0))
    return {
        "at": iso(last.occurred_at),
        "result": "ok" if failed == 0 else "failed",
        "worker": detail.get("worker"),
        "as_of": detail.get("now"),
        "due": detail.get("due"),
        "held": detail.get("held"),
        "destroyed": detail.get("destroyed"),
        "failed": failed,
        "numbers_erased": detail.get("numbers_erased"),
        "destroyed_items": destroyed,
    }


def overview(session: Session, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    live = Recording.destroyed_at.is_(None)
    soonest = (Recording.destroy_after, Recording.recording_sid)
    due: dict[str, Any] = {}
    for days in (7, 30):
        where = [live, Recording.destroy_after > now, Recording.destroy_after <= now + days * DAY]
        count, rows = _bucket(session, where, soonest)
        due[f"{days}_days"] = {"count": count, "items": [_row(r, now) for r in rows]}

    overdue = [live, Recording.destroy_after <= now]
    # Most recently overdue first: the newest problems lead.
    newest = (Recording.destroy_after.desc(), Recording.recording_sid.desc())
    overdue_count = _count(session, overdue)
    held_count, held_rows = _bucket(session, [*overdue, held_clause(True)], newest)
    # Failures are few and found from their events; whatever is neither held nor failed is
    # waiting for the next run (counted by difference: no scan of every overdue row).
    failed_where = [*overdue, held_clause(False), _failed_event()]
    failed_count, failed_rows = _bucket(session, failed_where, newest)
    waiting_where = [*overdue, held_clause(False), ~_failed_event()]
    waiting_rows = _rows(session, waiting_where, newest)
    cases = _held_cases(session, [r.recording_sid for r in held_rows])
    held_items = [
        _row(r, now, reason="held", case_references=cases[r.recording_sid]) for r in held_rows
    ]
    errors = _last_errors(session, [r.recording_sid for r in failed_rows])
    failed_items = [
        _row(r, now, reason="failed", last_error=errors[r.recording_sid]) for r in failed_rows
    ]
    return {
        "now": now.isoformat(),
        "failed": failed_count,
        "due": due,
        "overdue": {
            "count": overdue_count,
            "held": {"count": held_count, "items": held_items},
            "failed": {"count": failed_count, "items": failed_items},
            "awaiting_run": {
                "count": overdue_count - held_count - failed_count,
                "items": [_row(r, now, reason="awaiting_run") for r in waiting_rows],
            },
        },
        "last_run": _last_run(session),
    }
