"""Finished recordings on a platform that sends no callback when one is ready: once the
segment a recording records (or its whole call) has ended, the platform's finder looks it
up; until the platform has written it the sweep asks again, and after FIND_FOR it is
reported absent (so it still gets its destruction date and leaves the sweep). What is found
goes through the same path as a recording-status report (app/calls/events.py), applied
once: `completed_at` and `destroy_after` from the department that owned the recording."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.calls.events import CallEvents
from app.calls.inputs import RECORDING_ENDINGS, Delivery, RecordingReported
from app.calls.provider import FoundRecording, ProviderError, RecordingFinder
from app.storage.db import unit_of_work
from app.storage.models import Call, CallSegment, Recording, utcnow

log = structlog.get_logger(__name__)

FIND_FOR = timedelta(hours=24)
BATCH = 200


@dataclass(frozen=True)
class Awaited:
    call_sid: str
    recording_sid: str
    ended_at: datetime


class Completions:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        finder: RecordingFinder,
        events: CallEvents,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.finder = finder
        self.events = events
        self.clock = clock

    def awaited(self, session: Session, segment_sid: str | None = None) -> list[Awaited]:
        """Recordings not yet finished whose segment (or call) has ended."""
        query = (
            select(Recording.call_sid, Recording.recording_sid, CallSegment.ended_at, Call.ended_at)
            .join(Call, Call.call_sid == Recording.call_sid)
            .outerjoin(CallSegment, CallSegment.segment_sid == Recording.segment_sid)
            .where(Recording.completed_at.is_(None))
            .where(Recording.status.not_in(RECORDING_ENDINGS))
            .where(or_(CallSegment.ended.is_(True), Call.ended.is_(True)))
            .order_by(Recording.started_at)
            .limit(BATCH)
        )
        if segment_sid:
            query = query.where(Recording.segment_sid == segment_sid)
        return [
            Awaited(call_sid, sid, segment_end or call_end or self.clock())
            for call_sid, sid, segment_end, call_end in session.execute(query)
        ]

    def complete(self, awaited: Awaited) -> bool:
        """Ask the platform once; True when the recording was finished (found, or given
        up on as absent)."""
        try:
            found = self.finder.find_recording(awaited.call_sid, awaited.recording_sid)
        except ProviderError as exc:
            log.warning(
                "recording_find_failed",
                recording_sid=awaited.recording_sid,
                transient=exc.transient,
                code=exc.code,
            )
            return False
        if found is None:
            if self.clock() - awaited.ended_at < FIND_FOR:
                return False  # not written yet: the sweep asks again
            found = FoundRecording(awaited.recording_sid, "absent", None)
        self.events.recording_reported(
            RecordingReported(
                call_sid=awaited.call_sid,
                recording_sid=awaited.recording_sid,
                status=found.status,
                duration_seconds=found.duration_seconds,
                started_at=found.started_at,
                media_url=found.media_url,
                error_code=None,
                delivery=Delivery(f"recording-found:{awaited.recording_sid}:{found.status}"),
            )
        )
        return True

    def segment_ended(self, segment_sid: str) -> int:
        """Right after a segment's end: its recordings, if the platform has them yet."""
        with unit_of_work(self.sessions) as session:
            awaited = self.awaited(session, segment_sid)
        return sum(self.complete(a) for a in awaited)

    def sweep(self) -> int:
        """Every recording still awaited; returns how many were finished."""
        with unit_of_work(self.sessions) as session:
            awaited = self.awaited(session)
        return sum(self.complete(a) for a in awaited)
