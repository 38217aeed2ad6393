"""Retrieving a recording (R4): only for a purpose the notice names, by a role allowed it,
logged with who and why. The answer is a short-lived link to our own media route, so
nobody handling recordings ever needs the provider's credentials.

The link serves one recording for MEDIA_TOKEN_TTL and at most MEDIA_FETCH_LIMIT fetches,
each a byte range or the whole, each audited: not single-use, because an audio player asks
again for every seek (and Safari probes a range before it plays); bounded, so a link copied
from a proxy log or a browser's history after use is worth little."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.calls.views import recording_by_sid
from app.errors import Conflict, Forbidden, NotFound
from app.people.users import Role
from app.retention import iso
from app.retention.errors import Gone
from app.storage.models import Recording, RecordingAccess, User, utcnow

MEDIA_TOKEN_TTL = timedelta(minutes=5)
MEDIA_FETCH_LIMIT = 20
MEDIA_PATH = "/api/v1/media/"
_NO_LINK = (
    "this media link is unknown, has expired or has been used "
    f"{MEDIA_FETCH_LIMIT} times: ask for a new one (POST /api/v1/recordings/{{sid}}/access)"
)


class Purpose(StrEnum):
    """The uses the privacy notice lists, and subject access."""

    QUALITY_MONITORING = "quality_monitoring"
    COMPLAINT = "complaint"
    CRIME_PREVENTION = "crime_prevention"
    STAFF_SAFETY = "staff_safety"
    SUBJECT_ACCESS = "subject_access"


# Supervisors and admins review calls; crime and subject access are governance's.
_ALLOWED: dict[str, frozenset[Purpose]] = {
    Role.SUPERVISOR: frozenset(
        {Purpose.QUALITY_MONITORING, Purpose.COMPLAINT, Purpose.STAFF_SAFETY}
    ),
    Role.GOVERNANCE: frozenset(Purpose),
}
_ALLOWED[Role.ADMIN] = _ALLOWED[Role.SUPERVISOR]


def may_access(role: str, purpose: Purpose) -> bool:
    return purpose in _ALLOWED.get(role, frozenset())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def ensure_not_destroyed(recording: Recording) -> None:
    if recording.destroyed_at is not None:
        raise Gone(
            f"recording {recording.recording_sid} was destroyed at {iso(recording.destroyed_at)}"
        )


def grant_access(
    session: Session, recording_sid: str, purpose: Purpose, user: User
) -> tuple[RecordingAccess, str]:
    """Log the access and return it with its media token (shown once, stored hashed)."""
    if not may_access(user.role, purpose):
        raise Forbidden(f"a {user.role} may not retrieve a recording for {purpose}")
    recording = recording_by_sid(session, recording_sid)
    ensure_not_destroyed(recording)
    if recording.status != "completed":
        raise Conflict(f"recording {recording_sid} has no media (status {recording.status})")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    access = RecordingAccess(
        recording_sid=recording_sid,
        purpose=str(purpose),
        accessed_by=user.name,
        accessed_at=now,
        expires_at=now + MEDIA_TOKEN_TTL,
        token_sha256=_digest(token),
    )
    session.add(access)
    session.flush()
    audit.append(
        session,
        audit.EventType.RECORDING_ACCESSED,
        actor=user.name,
        call_sid=recording.call_sid,
        recording_sid=recording_sid,
        reasons=[str(purpose)],
        detail={
            "access_id": access.id,
            "purpose": str(purpose),
            "role": user.role,
            "expires_at": access.expires_at.isoformat(),
        },
    )
    return access, token


def redeem(session: Session, token: str) -> tuple[RecordingAccess, Recording]:
    """The access a media token belongs to, while it is valid and the recording exists.
    An unknown, an expired and a used-up token are the same 404."""
    access = session.scalars(
        select(RecordingAccess).where(RecordingAccess.token_sha256 == _digest(token))
    ).one_or_none()
    if access is None or access.expires_at <= utcnow() or access.fetches >= MEDIA_FETCH_LIMIT:
        raise NotFound(_NO_LINK)
    recording = recording_by_sid(session, access.recording_sid)
    ensure_not_destroyed(recording)
    return access, recording


def log_media_fetched(
    session: Session, access: RecordingAccess, recording: Recording, byte_range: str | None
) -> None:
    """Count the fetch and audit it; NotFound if the link expired or was used up since
    redeem() (concurrent fetches: the conditional UPDATE lets exactly the limit through)."""
    fetch = session.scalar(
        update(RecordingAccess)
        .where(
            RecordingAccess.id == access.id,
            RecordingAccess.fetches < MEDIA_FETCH_LIMIT,
            RecordingAccess.expires_at > utcnow(),
        )
        .values(fetches=RecordingAccess.fetches + 1)
        .returning(RecordingAccess.fetches)
    )
    if fetch is None:
        raise NotFound(_NO_LINK)
    audit.append(
        session,
        audit.EventType.RECORDING_MEDIA_FETCHED,
        actor=access.accessed_by,
        call_sid=recording.call_sid,
        recording_sid=recording.recording_sid,
        reasons=[access.purpose],
        detail={
            "access_id": access.id,
            "purpose": access.purpose,
            "fetch": fetch,
            "range": byte_range,
        },
    )


def access_object(access: RecordingAccess) -> dict[str, object]:
    return {
        "id": access.id,
        "recording_sid": access.recording_sid,
        "purpose": access.purpose,
        "accessed_by": access.accessed_by,
        "accessed_at": iso(access.accessed_at),
        "expires_at": iso(access.expires_at),
    }
