"""Disclosures (R4): sharing a recording with another organisation needs a data sharing
agreement; a sensitive matter also needs the caller's consent or a legal basis."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.audit import log as audit
from app.calls.views import recording_by_sid
from app.retention import iso
from app.retention.access import ensure_not_destroyed
from app.retention.errors import Invalid
from app.storage.models import Disclosure, utcnow


def _given(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def record_disclosure(
    session: Session,
    recording_sid: str,
    *,
    recipient: str,
    agreement_reference: str,
    sensitive: bool,
    consent_reference: str | None,
    legal_basis: str | None,
    actor: str,
) -> Disclosure:
    for name, value in (("recipient", recipient), ("agreement_reference", agreement_reference)):
        if not _given(value):
            raise Invalid(f"{name}: is required", field=name)
    consent, basis = _given(consent_reference), _given(legal_basis)
    if sensitive and not (consent or basis):
        raise Invalid(
            "consent_reference or legal_basis: one is required when sensitive is true",
            field="consent_reference",
        )
    recording = recording_by_sid(session, recording_sid)
    ensure_not_destroyed(recording)
    disclosure = Disclosure(
        recording_sid=recording_sid,
        recipient=recipient.strip(),
        agreement_reference=agreement_reference.strip(),
        sensitive=sensitive,
        consent_reference=consent,
        legal_basis=basis,
        disclosed_by=actor,
        disclosed_at=utcnow(),
    )
    session.add(disclosure)
    session.flush()
    # The legal basis is free text and stays in its row; the log says which kind it was.
    audit.append(
        session,
        audit.EventType.DISCLOSURE_RECORDED,
        actor=actor,
        call_sid=recording.call_sid,
        recording_sid=recording_sid,
        detail={
            "disclosure_id": disclosure.id,
            "recipient": disclosure.recipient,
            "agreement_reference": disclosure.agreement_reference,
            "sensitive": sensitive,
            "consent_reference": consent,
            "legal_basis_given": basis is not None,
        },
    )
    return disclosure


def disclosure_object(disclosure: Disclosure) -> dict[str, Any]:
    return {
        "id": disclosure.id,
        "recording_sid": disclosure.recording_sid,
        "recipient": disclosure.recipient,
        "agreement_reference": disclosure.agreement_reference,
        "sensitive": disclosure.sensitive,
        "consent_reference": disclosure.consent_reference,
        "legal_basis": disclosure.legal_basis,
        "disclosed_by": disclosure.disclosed_by,
        "disclosed_at": iso(disclosure.disclosed_at),
    }
