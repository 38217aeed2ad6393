"""Recording fingerprints (issue 16 item 3): each completed recording's audio is fetched
once, after the webhook that completed it has been answered, and its SHA-256 and length
are kept on its row and in a `recording.fingerprinted` event. A whole recording served
later through the media route is hashed as it streams and compared at the end: a
mismatch is a `recording.fingerprint_mismatch` alert event, a metric and an error log.

The pass (`Fingerprinter.drain`, a background `Periodic` of `callguard serve`, which runs
batches of `run_once` until one comes back short, so a backlog never outgrows the period):
1. claims a bounded batch in one short transaction: a lease (fingerprint_claimed_until)
   on each row; PostgreSQL takes the rows `FOR UPDATE SKIP LOCKED`, so concurrent
   instances get disjoint batches; SQLite has one writer, which serialises the claims;
2. with no transaction open, streams each recording's media and hashes it;
3. stores each result in its own short transaction, only if the row is still without a
   fingerprint and not destroyed, so one recording gets exactly one event. A platform
   that says the audio is gone, or fails, is logged and the lease dropped: the next pass
   retries it. Nothing is ever stored that was not hashed from the platform's bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import IO

import structlog
from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.audit import log as audit
from app.retention.media import Media, MediaSource
from app.runtime.metrics import FINGERPRINT_MISMATCHES, FINGERPRINTS
from app.storage.db import unit_of_work
from app.storage.models import Recording, utcnow

log = structlog.get_logger(__name__)

DEFAULT_BATCH = 20
# Batches one drain may take before it lets its period pass: a pass that cannot keep up
# still ends, and the next one carries on where it stopped.
MAX_BATCHES = 50
# Longer than any one fetch of a recording, so a live pass keeps its claim; a dead
# instance's claims become claimable again after it.
LEASE = timedelta(minutes=10)
SYSTEM = "system"


@dataclass(frozen=True)
class Fingerprint:
    sha256: str
    bytes: int


def fingerprint_of(media: Media, copy: IO[bytes] | None = None) -> Fingerprint:
    """Hash everything `media` streams (writing it to `copy` too, if given), closing it
    whatever happens."""
    digest, size = hashlib.sha256(), 0
    try:
        for chunk in media.chunks:
            digest.update(chunk)
            size += len(chunk)
            if copy is not None:
                copy.write(chunk)
    finally:
        media.close()
    return Fingerprint(digest.hexdigest(), size)


class Fingerprinter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        media: MediaSource,
        *,
        batch_size: int = DEFAULT_BATCH,
        lease: timedelta = LEASE,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        self.sessions = sessions
        self.media = media
        self.batch_size = batch_size
        self.lease = lease
        self._postgres = sessions.kw["bind"].dialect.name == "postgresql"

    def _claim(self) -> list[str]:
        now = utcnow()
        query = (
            select(Recording.recording_sid)
            .where(Recording.status == "completed")
            .where(Recording.fingerprinted_at.is_(None))
            .where(Recording.destroyed_at.is_(None))
            .where(
                or_(
                    Recording.fingerprint_claimed_until.is_(None),
                    Recording.fingerprint_claimed_until < now,
                )
            )
            .order_by(Recording.completed_at, Recording.recording_sid)
            .limit(self.batch_size)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        with unit_of_work(self.sessions) as session:
            sids = list(session.scalars(query))
            if sids:
                session.execute(
                    update(Recording)
                    .where(Recording.recording_sid.in_(sids))
                    .values(fingerprint_claimed_until=now + self.lease)
                    .execution_options(synchronize_session=False)
                )
        return sids

    def _release(self, sid: str) -> None:
        with unit_of_work(self.sessions) as session:
            session.execute(
                update(Recording)
                .where(Recording.recording_sid == sid)
                .values(fingerprint_claimed_until=None)
                .execution_options(synchronize_session=False)
            )

    def store(self, sid: str, found: Fingerprint) -> bool:
        """Keep `found` as the recording's fingerprint, with its event, unless it has one
        already or is destroyed; whether it was kept."""
        with unit_of_work(self.sessions) as session:
            result = session.execute(
                update(Recording)
                .where(Recording.recording_sid == sid)
                .where(Recording.fingerprinted_at.is_(None))
                .where(Recording.destroyed_at.is_(None))
                .values(
                    fingerprint_sha256=found.sha256,
                    fingerprint_bytes=found.bytes,
                    fingerprinted_at=utcnow(),
                    fingerprint_claimed_until=None,
                )
                .execution_options(synchronize_session=False)
            )
            if not isinstance(result, CursorResult) or result.rowcount != 1:
                return False  # destroyed meanwhile, or (a lease outlived) done elsewhere
            recording = session.get(Recording, sid)
            assert recording is not None  # just updated
            audit.append(
                session,
                audit.EventType.RECORDING_FINGERPRINTED,
                actor=SYSTEM,
                call_sid=recording.call_sid,
                recording_sid=sid,
                policy_version=recording.policy_version,
                detail={"sha256": found.sha256, "bytes": found.bytes},
            )
            return True

    def _fingerprint(self, sid: str) -> bool:
        try:
            found = fingerprint_of(self.media.open(sid))
        except Exception as exc:  # Gone, MediaUnavailable, a broken stream: all retried
            FINGERPRINTS.labels("failed").inc()
            log.warning(
                "fingerprint_failed", recording_sid=sid, error=type(exc).__name__, detail=str(exc)
            )
            self._release(sid)
            return False
        stored = self.store(sid, found)
        if stored:
            FINGERPRINTS.labels("fingerprinted").inc()
        return stored

    def _batch(self) -> tuple[int, int]:
        sids = self._claim()
        return len(sids), sum(self._fingerprint(sid) for sid in sids)

    def run_once(self) -> int:
        """One batch: the number of recordings fingerprinted."""
        return self._batch()[1]

    def drain(self, max_batches: int = MAX_BATCHES) -> int:
        """Batches until one is short (nothing more is waiting) or `max_batches` have
        run: the number fingerprinted. A load of calls completes recordings faster than
        one batch a period could hash them (bench/load.py found a backlog growing)."""
        done = 0
        for _ in range(max_batches):
            claimed, fingerprinted = self._batch()
            done += fingerprinted
            if claimed < self.batch_size:
                break
        return done


def checked(
    chunks: Iterator[bytes],
    recording: Recording,
    sessions: sessionmaker[Session],
    *,
    access_id: int | None = None,
) -> Iterator[bytes]:
    """`chunks` of a whole recording, passed through as they are served; once the last has
    gone, what was served is compared with the stored fingerprint. A stream cut short (the
    client left) proves nothing and is not compared; neither is a recording not yet
    fingerprinted."""
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        yield chunk
    expected = recording.fingerprint_sha256
    if expected is None:
        return
    actual = Fingerprint(digest.hexdigest(), size)
    if (actual.sha256, actual.bytes) != (expected, recording.fingerprint_bytes):
        alert_mismatch(sessions, recording, actual, access_id)
    else:
        log.info("fingerprint_checked", recording_sid=recording.recording_sid, match=True)


def alert_mismatch(
    sessions: sessionmaker[Session],
    recording: Recording,
    actual: Fingerprint,
    access_id: int | None,
) -> None:
    FINGERPRINT_MISMATCHES.inc()
    expected = {"sha256": recording.fingerprint_sha256, "bytes": recording.fingerprint_bytes}
    found = {"sha256": actual.sha256, "bytes": actual.bytes}
    log.error(
        "fingerprint_mismatch",
        recording_sid=recording.recording_sid,
        expected=expected,
        actual=found,
        access_id=access_id,
    )
    try:
        with unit_of_work(sessions) as session:
            audit.append(
                session,
                audit.EventType.RECORDING_FINGERPRINT_MISMATCH,
                actor=SYSTEM,
                call_sid=recording.call_sid,
                recording_sid=recording.recording_sid,
                policy_version=recording.policy_version,
                detail={"expected": expected, "actual": found, "access_id": access_id},
            )
    except Exception:  # the bytes are already served: say so loudly rather than cut them
        log.exception("fingerprint_mismatch_not_audited", recording_sid=recording.recording_sid)
