"""Evidence packs (issue 16 item 4): one ZIP that shows a recording, its fingerprint and its
call's history to someone who does not trust callguard, checked by app/evidence/offline.py
with no database and no network.

    statement.txt     what the recording is and who has had it, in plain words
    recording.json    the recording, its fingerprint, the case, the export
    audio/<sid>.<ext> the audio, as the platform holds it
    events.json       every audit event of the call: its stored columns and hashed body,
                      and its inclusion proof in the signed tree head
    tree-head.json    the signed tree head (app/audit/checkpoint.py, format 2) they are
                      proven against

Order matters. The audio is fetched whole into a spooled file and hashed on the way: a
recording not yet fingerprinted is fingerprinted now (as the background pass would, with
its event), and audio that no longer matches its fingerprint is the loud alert of
app/retention/fingerprints.py and no pack (409). Then the export is logged (an
`evidence.exported` event naming the case) and committed, so the pack's own export is
among the events it proves; then, in one read-only snapshot, the tree head is read and
signed and every proof is made against it.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from datetime import datetime
from tempfile import SpooledTemporaryFile
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.audit import log as audit
from app.audit import tree
from app.audit.checkpoint import signed_head
from app.errors import Conflict, NotFound
from app.evidence.statement import write_statement
from app.retention.errors import Gone
from app.retention.fingerprints import Fingerprint, Fingerprinter, alert_mismatch, fingerprint_of
from app.retention.media import MediaSource
from app.storage.db import read_only_session, unit_of_work
from app.storage.models import AuditEvent, Recording, utcnow
from app.storage.policy_versions import active_policy, policy_version

CASE_REFERENCE = r"^[^\x00-\x1f\x7f]+$"  # printed in statement.txt: one line, no controls
AUDIO_IN_MEMORY = 1024 * 1024  # audio this small stays in memory while it is hashed
CHUNK = 1 << 16
_EXTENSIONS = {"audio/x-wav": "wav", "audio/wav": "wav", "audio/mpeg": "mp3"}


class Destroyed(Conflict):
    status = 410
    code = "recording_destroyed"


class FingerprintMismatch(Conflict):
    code = "fingerprint_mismatch"


@dataclass(frozen=True)
class Export:
    recording_sid: str
    call_sid: str
    case_reference: str
    actor: str
    exported_at: datetime


def _recording(session: Session, sid: str) -> Recording:
    recording = session.get(Recording, sid)
    if recording is None:
        raise NotFound(f"no recording {sid}")
    if recording.destroyed_at is not None:
        raise Destroyed(f"recording {sid} was destroyed: there is no audio to give")
    return recording


def _log_export(sessions: sessionmaker[Session], sid: str, case: str, actor: str) -> Export:
    with unit_of_work(sessions) as session:
        recording = _recording(session, sid)
        now = utcnow()
        audit.append(
            session,
            audit.EventType.EVIDENCE_EXPORTED,
            actor=actor,
            call_sid=recording.call_sid,
            recording_sid=sid,
            policy_version=recording.policy_version,
            detail={"case_reference": case},
            received_at=now,
        )
        return Export(sid, recording.call_sid, case, actor, now)


def _fetch_audio(
    sessions: sessionmaker[Session], media: MediaSource, sid: str
) -> tuple[IO[bytes], str, Fingerprint]:
    """The audio spooled whole, its media type and its fingerprint, checked against the
    stored one (or stored now, if the pass has not reached it)."""
    with unit_of_work(sessions) as session:
        _recording(session, sid)
    spool = SpooledTemporaryFile(max_size=AUDIO_IN_MEMORY)  # noqa: SIM115 (returned)
    try:
        try:
            stream = media.open(sid)
        except Gone:
            raise Destroyed(f"the platform no longer holds recording {sid}") from None
        found = fingerprint_of(stream, spool)
        spool.seek(0)
        # Not fingerprinted yet: this fetch is its first, as the background pass's would be
        # (kept only if the pass has not meanwhile kept one; then that one is compared).
        Fingerprinter(sessions, media).store(sid, found)
        with unit_of_work(sessions) as session:
            recording = _recording(session, sid)
            session.expunge(recording)
        if (recording.fingerprint_sha256, recording.fingerprint_bytes) != (
            found.sha256,
            found.bytes,
        ):
            alert_mismatch(sessions, recording, found, None)
            raise FingerprintMismatch(
                f"the audio of {sid} no longer matches its fingerprint: no evidence pack "
                "(an alert event has been logged)"
            )
        return spool, stream.media_type, found
    except BaseException:
        spool.close()
        raise


def _events(session: Session, call_sid: str, size: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.call_sid == call_sid)
        .where(AuditEvent.sequence <= size)
        .order_by(AuditEvent.sequence)
    )
    return [
        {
            "sequence": e.sequence,
            "type": e.type,
            "call_sid": e.call_sid,
            "recording_sid": e.recording_sid,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
            "body": bytes(e.body).decode("utf-8"),
            "inclusion_proof": [p.hex() for p in tree.inclusion(session, e.sequence, size)],
        }
        for e in rows
    ]


def write_pack(
    engine: Engine,
    sessions: sessionmaker[Session],
    media: MediaSource,
    key: Ed25519PrivateKey,
    recording_sid: str,
    case_reference: str,
    actor: str,
    out: IO[bytes],
) -> Export:
    """Fetch and check the audio, log the export, then write the pack to `out`."""
    audio, media_type, fingerprint = _fetch_audio(sessions, media, recording_sid)
    with audio:
        export = _log_export(sessions, recording_sid, case_reference, actor)
        _write(engine, key, export, audio, media_type, fingerprint, out)
    return export


def _write(
    engine: Engine,
    key: Ed25519PrivateKey,
    export: Export,
    audio: IO[bytes],
    media_type: str,
    fingerprint: Fingerprint,
    out: IO[bytes],
) -> None:
    recording_sid, case_reference, actor = export.recording_sid, export.case_reference, export.actor
    with read_only_session(engine) as session:
        head = tree.head(session)
        tree_head = signed_head(head, key, utcnow())
        events = _events(session, export.call_sid, head.size)
        recording = session.get(Recording, recording_sid)
        assert recording is not None
        name = f"audio/{recording_sid}.{_EXTENSIONS.get(media_type.split(';')[0], 'audio')}"
        described = {
            "recording_sid": recording_sid,
            "call_sid": export.call_sid,
            "department": recording.department,
            "department_name": _department_name(session, recording),
            "started_at": recording.started_at.isoformat(),
            "completed_at": recording.completed_at.isoformat() if recording.completed_at else None,
            "duration_seconds": recording.duration_seconds,
            "audio": name,
            "media_type": media_type,
            "fingerprint": {"sha256": fingerprint.sha256, "bytes": fingerprint.bytes},
            "case_reference": case_reference,
            "exported_by": actor,
            "exported_at": export.exported_at.isoformat(),
        }
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("statement.txt", write_statement(described, events, tree_head))
            archive.writestr("recording.json", _pretty(described))
            info = zipfile.ZipInfo(name, date_time=recording.started_at.timetuple()[:6])
            info.compress_type = zipfile.ZIP_STORED  # audio compresses little
            with archive.open(info, "w", force_zip64=True) as entry:
                for chunk in iter(lambda: audio.read(CHUNK), b""):
                    entry.write(chunk)
            archive.writestr("events.json", _pretty(events))
            archive.writestr("tree-head.json", _pretty(tree_head))


def _department_name(session: Session, recording: Recording) -> str:
    """As the policy the recording was made under names it ("Planning", not "planning"),
    else the active policy, else its id."""
    active = active_policy(session)
    sources = (
        [policy_version(session, recording.policy_version)] if recording.policy_version else []
    )
    for policy in [*sources, active.policy if active else None]:
        found = policy.department(recording.department) if policy else None
        if found is not None:
            return found.name
    return recording.department


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
