"""A call that its platform keeps as a chain of segments, each transfer made at the platform
(by a person there) a new segment with its own id.

* A new segment reaching callguard's routing (`SegmentArrived`) is decided for the
  department its queue names, as a transfer: that department's own recording if it is
  recorded (a new one, on the new segment), nothing if it is not, if the call is on the
  non-recorded line or the caller opted out with `stop`. A call that never went through
  callguard's notice is not recorded however it arrives.
* A segment's progress (`SegmentProgressed`) is applied once and never backwards; the
  person it is put through to is assigned the call while it is the call's current segment.
* A segment's end ends its recordings, and ends the call when no segment of it is still
  live or known to follow (reported by the platform as a successor). A later segment of
  the same chain reopens the call: the caller is still there."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit import log as audit
from app.calls.answers import Answer, Queue
from app.calls.assignment import assign_named
from app.calls.decisions import end_call, redecide
from app.calls.events import PLATFORM, CallEvents, Render, Reply
from app.calls.inputs import SegmentArrived, SegmentProgressed
from app.calls.reconcile import Reconciler
from app.calls.state import confirmed_state
from app.calls.store import (
    ACTIVE_RECORDING,
    claim_receipt,
    keep_response,
    lock_call,
    recordings_of,
    segment_of,
    stored_response,
)
from app.config import Settings
from app.storage.db import unit_of_work
from app.storage.models import Call, CallSegment, utcnow
from app.storage.policy_versions import active_policy


class Segments:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        reconciler: Reconciler,
        events: CallEvents,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.reconciler = reconciler
        self.events = events

    # -- a transfer made at the platform -------------------------------------------------

    def arrived(self, event: SegmentArrived, render: Render) -> Reply:
        call_sid, delivery = event.call_sid, event.delivery
        with unit_of_work(self.sessions) as session:
            receipt = claim_receipt(session, delivery.key, delivery.token, "segment", call_sid)
            if receipt is None:
                return Reply(stored_response(session, delivery.key, delivery.token), True)
            call = lock_call(session, call_sid)
            segment = segment_of(session, call, event.segment_sid, event.previous_sid, "arrived")
            self._reopen(session, call, segment)
            call.segment_sid = event.segment_sid
            body = render(self._transferred(session, call, event))
            keep_response(session, receipt, body)
        # The previous department's recording stops, the new one's starts on this segment.
        self.reconciler.reconcile_or_leave(call_sid, PLATFORM)
        return Reply(body)

    def _transferred(self, session: Session, call: Call, event: SegmentArrived) -> Answer:
        active = active_policy(session)
        if active is None:
            return self.events.fail_safe_answer(session, call)
        previous = call.department
        call.transfer_count += 1
        call.department = event.department
        call.agent = None  # waits in the new department's queue until put through again
        call.payment_in_progress = False  # a payment does not follow the caller
        audit.append(
            session,
            audit.EventType.TRANSFERRED,
            actor=PLATFORM,
            call_sid=call.call_sid,
            policy_version=active.version,
            detail={
                "kind": "department",
                "transfer": call.transfer_count,
                "segment": event.segment_sid,
                "from": previous,
                "department": event.department,
                # Only a call that heard callguard's notice can be recorded.
                "notice_heard": call.queued,
                "source": "platform",
            },
        )
        redecide(session, call, active, self.settings.fail_safe, PLATFORM)
        return Queue(event.department, call.call_sid, recorded=call.desired == "recording")

    # -- a segment's progress ------------------------------------------------------------

    def progressed(self, event: SegmentProgressed) -> Reply:
        call_sid, delivery = event.call_sid, event.delivery
        with unit_of_work(self.sessions) as session:
            kind = "segment-status"
            if claim_receipt(session, delivery.key, delivery.token, kind, call_sid) is None:
                return Reply(None, True)
            call = lock_call(session, call_sid)
            segment = segment_of(session, call, event.segment_sid, event.previous_sid, event.status)
            detail: dict[str, object] = {"segment": event.segment_sid, "status": event.status}
            if segment.ended or event.rank <= segment.rank:
                audit.append(
                    session,
                    audit.EventType.CALL_STATUS_IGNORED,
                    actor=PLATFORM,
                    call_sid=call_sid,
                    occurred_at=event.occurred_at,
                    detail={**detail, "current": segment.status},
                )
                return Reply(None)
            segment.status, segment.rank = event.status, event.rank
            self._reopen(session, call, segment)
            if call.segment_sid in (None, event.segment_sid):
                call.status = event.status[:20]
            for successor in event.successors:
                segment_of(session, call, successor, event.segment_sid, "pending")
                detail["successors"] = list(event.successors)
            audit.append(
                session,
                audit.EventType.CALL_STATUS,
                actor=PLATFORM,
                call_sid=call_sid,
                occurred_at=event.occurred_at,
                detail=detail,
            )
            if event.person and not event.ended and call.segment_sid == event.segment_sid:
                assign_named(session, call, event.person, source=event.source)
            if event.ended:
                self._end(session, call, segment, event.occurred_at or utcnow())
        return Reply(None)

    def _end(self, session: Session, call: Call, segment: CallSegment, at: datetime) -> None:
        segment.ended, segment.ended_at = True, at
        recordings = recordings_of(session, call.call_sid)
        for recording in recordings:
            if recording.segment_sid == segment.segment_sid and recording.status in (
                ACTIVE_RECORDING
            ):
                # The platform ends a segment's recording with it: nothing more is recorded.
                recording.status = "stopped"
                audit.append(
                    session,
                    audit.EventType.RECORDING_STATUS,
                    actor=PLATFORM,
                    call_sid=call.call_sid,
                    recording_sid=recording.recording_sid,
                    detail={"status": "stopped", "source": "segment_ended"},
                )
        session.flush()
        live = session.scalar(
            select(func.count())
            .select_from(CallSegment)
            .where(CallSegment.call_sid == call.call_sid, CallSegment.ended.is_(False))
        )
        if not live and not call.ended:
            audit.append(
                session,
                audit.EventType.CALL_ENDED,
                actor=PLATFORM,
                call_sid=call.call_sid,
                occurred_at=at,
                detail={"status": segment.status, "segment": segment.segment_sid},
            )
            end_call(session, call, at, self.settings.fail_safe, PLATFORM)
        call.recording = confirmed_state(call, recordings)

    def _reopen(self, session: Session, call: Call, segment: CallSegment) -> None:
        """A live segment of a call that ended: the chain went on after all."""
        if not call.ended or segment.ended:
            return
        call.ended, call.ended_at = False, None
        audit.append(
            session,
            audit.EventType.CALL_STATUS,
            actor=PLATFORM,
            call_sid=call.call_sid,
            detail={"status": "reopened", "segment": segment.segment_sid},
        )
        redecide(session, call, active_policy(session), self.settings.fail_safe, PLATFORM)
