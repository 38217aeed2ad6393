"""Subject access (R5): everything held for a phone number, found by its keyed hash.

A withheld number names nobody and is refused; a number already erased (R6) has no hash
left and so matches nothing. The export itself is logged, naming calls by sid only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.callers.numbers import NumberVault, normalise
from app.calls import views
from app.retention import iso
from app.retention.access import access_object
from app.retention.disclosures import disclosure_object
from app.retention.errors import Invalid
from app.retention.notifications import notifications
from app.storage.models import AuditEvent, Call, Disclosure, Recording, RecordingAccess, utcnow


def e164_or_refuse(phone: str, region: str) -> str:
    e164 = normalise(phone, region)
    if e164 is None:
        raise Invalid(
            "phone: not a number that can be matched (withheld or anonymous numbers match nobody)"
        )
    return e164


def calls_for_number(session: Session, vault: NumberVault, e164: str) -> list[Call]:
    return list(
        session.scalars(
            select(Call)
            .where(Call.caller_number_hash == vault.lookup_hash(e164))
            .order_by(Call.started_at, Call.call_sid)
        )
    )


def _by_recording(session: Session, model: Any, sids: list[str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {sid: [] for sid in sids}
    for row in session.scalars(
        select(model).where(model.recording_sid.in_(sids)).order_by(model.id)
    ):
        found[row.recording_sid].append(row)
    return found


def gather(
    session: Session, vault: NumberVault, phone: str, region: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The export and the detail of its audit event, not yet logged (the bundle logs it
    once its archive is complete, with what it holds)."""
    e164 = e164_or_refuse(phone, region)
    calls = calls_for_number(session, vault, e164)
    call_sids = [c.call_sid for c in calls]
    recordings = list(
        session.scalars(
            select(Recording)
            .where(Recording.call_sid.in_(call_sids))
            .order_by(Recording.started_at, Recording.recording_sid)
        )
    )
    recording_sids = [r.recording_sid for r in recordings]
    owner = {r.recording_sid: r.call_sid for r in recordings}
    accesses = _by_recording(session, RecordingAccess, recording_sids)
    disclosures = _by_recording(session, Disclosure, recording_sids)
    events = list(
        session.scalars(
            select(AuditEvent)
            .where(
                or_(
                    AuditEvent.call_sid.in_(call_sids),
                    AuditEvent.recording_sid.in_(recording_sids),
                )
            )
            .order_by(AuditEvent.sequence)
        )
    )
    tasks = notifications(session, vault, call_sids=call_sids)

    def recording_export(recording: Recording) -> dict[str, Any]:
        sid = recording.recording_sid
        return {
            **views.recording_object(recording),
            "accesses": [access_object(a) for a in accesses[sid]],
            "disclosures": [disclosure_object(d) for d in disclosures[sid]],
        }

    def call_export(call: Call) -> dict[str, Any]:
        return {
            **views.call_object(call),
            "caller_number": vault.reveal(call),
            "dialled_number": call.dialled_number,
            "started_at": iso(call.started_at),
            "ended_at": iso(call.ended_at),
            "recordings": [recording_export(r) for r in recordings if r.call_sid == call.call_sid],
            "notifications": [t for t in tasks if t["call_sid"] == call.call_sid],
            "events": [
                views.event_object(e)
                for e in events
                if (e.call_sid or owner.get(e.recording_sid or "")) == call.call_sid
            ],
        }

    result = {
        "phone": e164,
        "generated_at": utcnow().isoformat(),
        "calls": [call_export(c) for c in calls],
    }
    return result, {"calls": call_sids, "recordings": len(recordings), "events": len(events)}


def export(
    session: Session, vault: NumberVault, phone: str, region: str, actor: str
) -> dict[str, Any]:
    result, detail = gather(session, vault, phone, region)
    audit.append(session, audit.EventType.SUBJECT_ACCESS_EXPORTED, actor=actor, detail=detail)
    return result
