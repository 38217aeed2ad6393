"""Appending and reading audit events. Events name calls by sid, never by phone number."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.chain import plain
from app.audit.sequencer import queued
from app.storage.models import AuditEvent, utcnow


class EventType(StrEnum):
    CALL_STARTED = "call.started"
    CALL_STATUS = "call.status"
    CALL_STATUS_IGNORED = "call.status_ignored"
    CALL_ENDED = "call.ended"
    CALL_ROUTED = "call.routed"
    CALL_QUEUED = "call.queued"
    OPT_OUT_REQUESTED = "opt_out.requested"
    DECISION = "decision"
    RECORDING_START_REQUESTED = "recording.start_requested"
    RECORDING_STARTED = "recording.started"
    RECORDING_START_FAILED = "recording.start_failed"
    RECORDING_PAUSE_REQUESTED = "recording.pause_requested"
    RECORDING_PAUSED = "recording.paused"
    RECORDING_PAUSE_FAILED = "recording.pause_failed"
    RECORDING_RESUME_REQUESTED = "recording.resume_requested"
    RECORDING_RESUMED = "recording.resumed"
    RECORDING_RESUME_FAILED = "recording.resume_failed"
    RECORDING_STOP_REQUESTED = "recording.stop_requested"
    RECORDING_STOPPED = "recording.stopped"
    RECORDING_STOP_FAILED = "recording.stop_failed"
    RECORDING_STATUS = "recording.status"
    PROVIDER_RETRY = "provider.retry"
    PAYMENT_STARTED = "payment.started"
    PAYMENT_ENDED = "payment.ended"
    PAYMENT_PAUSE_UNCONFIRMED = "payment.pause_unconfirmed"
    TRANSFER_REQUESTED = "transfer.requested"
    TRANSFERRED = "transfer.completed"
    TRANSFER_FAILED = "transfer.failed"
    NON_RECORDED_TRANSFER = "transfer.non_recorded_line"
    CALL_ASSIGNED = "call.assigned"
    FAIL_SAFE_ANSWERED = "call.fail_safe_answered"
    ASSIGNMENT_UNMATCHED = "call.assignment_unmatched"
    RECORDING_STATUS_IGNORED = "recording.status_ignored"
    RECORDING_COMPLETED = "recording.completed"
    POLICY_ACTIVATED = "policy.activated"
    USER_ADDED = "user.added"
    USER_DISABLED = "user.disabled"
    # governance (issue 4)
    HOLD_PLACED = "hold.placed"
    HOLD_RELEASED = "hold.released"
    NOTIFICATION_DONE = "notification.done"
    RECORDING_ACCESSED = "recording.accessed"
    RECORDING_MEDIA_FETCHED = "recording.media_fetched"
    # evidence (issue 16 item 3): the audio's SHA-256 and length, and an alert when what
    # was served whole does not match them
    RECORDING_FINGERPRINTED = "recording.fingerprinted"
    RECORDING_FINGERPRINT_MISMATCH = "recording.fingerprint_mismatch"
    EVIDENCE_EXPORTED = "evidence.exported"  # an evidence pack, for a case (issue 16 item 4)
    DISCLOSURE_RECORDED = "disclosure.recorded"
    RECORDING_DESTROYED = "recording.destroyed"
    RECORDING_DESTROY_FAILED = "recording.destroy_failed"
    RETENTION_RUN = "retention.run"
    NUMBER_ERASED = "call.number_erased"
    NUMBERS_REKEYED = "numbers.rekeyed"
    SUBJECT_ACCESS_EXPORTED = "subject_access.exported"
    AUDIT_FORMAT_CHANGED = "audit.format_changed"  # written by migration 0005


def append(
    session: Session,
    type_: EventType,
    *,
    actor: str,
    call_sid: str | None = None,
    recording_sid: str | None = None,
    reasons: Sequence[str] = (),
    policy_version: int | None = None,
    occurred_at: datetime | None = None,
    received_at: datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Queue an event; it is placed in the log as the transaction commits
    (app/audit/sequencer.py), and a rolled-back transaction leaves no event and no gap."""
    received_at = received_at or utcnow()
    queued(session).append(
        {
            "type": str(type_),
            "actor": actor,
            "call_sid": call_sid,
            "recording_sid": recording_sid,
            "reasons": [str(r) for r in reasons],
            "policy_version": policy_version,
            "occurred_at": occurred_at or received_at,
            "received_at": received_at,
            "detail": plain(detail or {}),
        }
    )


def events_for(
    session: Session,
    *,
    call_sid: str | None = None,
    recording_sid: str | None = None,
    after: int | None = None,
    limit: int = 1000,
) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.sequence).limit(limit)
    if call_sid is not None:
        query = query.where(AuditEvent.call_sid == call_sid)
    if recording_sid is not None:
        query = query.where(AuditEvent.recording_sid == recording_sid)
    if after is not None:
        query = query.where(AuditEvent.sequence > after)
    return list(session.scalars(query))
