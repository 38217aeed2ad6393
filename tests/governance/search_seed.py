"""Recordings seeded straight into the database with chosen times, department and caller,
for the governance search and retention overview tests."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from app.callers.numbers import protect_caller
from app.platforms.simulator.resources import new_call_sid
from app.runtime.services import Services
from app.storage.db import unit_of_work
from app.storage.models import Call, Recording, utcnow


def add_recording(
    services: Services,
    *,
    started_at: datetime | None = None,
    department: str = "contact-harlow",
    caller: str | None = None,
    completed: bool = True,
    destroy_after: datetime | None = None,
    destroyed_at: datetime | None = None,
    recording_sid: str | None = None,
) -> str:
    """One recording on a call of its own; completed five minutes after it started, due
    130 days after that unless `destroy_after` says otherwise; `recording_sid` when a
    platform holds it under that SID."""
    started_at = started_at or utcnow()
    completed_at = started_at + timedelta(minutes=5) if completed else None
    if destroy_after is None and completed_at is not None:
        destroy_after = completed_at + timedelta(days=130)
    call_sid, sid = new_call_sid(), recording_sid or f"RE{uuid.uuid4().hex}"
    with unit_of_work(services.sessions) as session:
        call = Call(
            call_sid=call_sid,
            department=department,
            queued=True,
            ended=completed,
            status="completed" if completed else "in-progress",
            started_at=started_at,
        )
        if caller:
            settings = services.settings
            protect_caller(call, caller, settings.number_key, settings.default_region)
        session.add(call)
        session.flush()
        session.add(
            Recording(
                recording_sid=sid,
                call_sid=call_sid,
                department=department,
                status="completed" if completed else "in-progress",
                retention="P130D",
                started_at=started_at,
                completed_at=completed_at,
                destroy_after=destroy_after,
                destroyed_at=destroyed_at,
            )
        )
    return sid
