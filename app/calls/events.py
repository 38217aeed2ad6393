"""What the platform tells us about a call, applied once each, in the platform's order.

Every input is one of app/calls/inputs.py, already checked and translated by the platform
package; every caller-facing answer is one of app/calls/answers.py, rendered by that
package's `render` and stored as rendered, so a repeated delivery gets the same bytes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from app.audit import log as audit
from app.callers.numbers import protect_caller
from app.calls.answers import Answer, DepartmentNotice, FailSafe, Menu, Queue
from app.calls.decisions import end_call, redecide
from app.calls.hot_path import applied, arrive_new, ignored, progress, stale
from app.calls.inputs import (
    RECORDING_ENDINGS,
    RECORDING_STARTED,
    CallArrived,
    CallProgressed,
    MenuAnswered,
    RecordingReported,
)
from app.calls.reconcile import START_UNCERTAIN, Plan, Reconciler, new_recording
from app.calls.state import confirmed_state
from app.calls.store import (
    claim_receipt,
    keep_response,
    lock_call,
    recordings_of,
    segment_of,
    stored_response,
)
from app.config import Settings
from app.recording_policy import Department, add_duration, parse_duration
from app.routing.prompts import NOT_A_CHOICE, OPT_OUT_NOTED, opt_out_message
from app.routing.router import OptOut, Retry, ToDepartment, ToMenu, choose, route_inbound
from app.storage.db import unit_of_work
from app.storage.models import Call, Recording, utcnow
from app.storage.policy_versions import ActivePolicy, active_policy

PLATFORM = "platform"
CALLER = "caller"

Render = Callable[[Answer], str]


@dataclass(frozen=True)
class Reply:
    body: str | None
    duplicate: bool = False


class CallEvents:
    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], reconciler: Reconciler
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.reconciler = reconciler

    def redecide(self, session: Session, call: Call, actor: str) -> None:
        redecide(session, call, active_policy(session), self.settings.fail_safe, actor)

    @property
    def fail_safe_records(self) -> bool:
        return self.settings.fail_safe.value == "record"

    # -- a call arrives ------------------------------------------------------------------

    def arrived(self, event: CallArrived, render: Render) -> Reply:
        call_sid, delivery = event.call_sid, event.delivery
        with unit_of_work(self.sessions) as session:
            receipt = claim_receipt(session, delivery.key, delivery.token, "voice", call_sid)
            if receipt is None:
                return Reply(stored_response(session, delivery.key, delivery.token), True)
            active = active_policy(session)
            answer = arrive_new(session, event, active, self.settings)  # the common case
            if answer is None:
                answer = self._arrived(session, event, active)
            body = render(answer)
            keep_response(session, receipt, body)
        return Reply(body)

    def _arrived(self, session: Session, event: CallArrived, active: ActivePolicy | None) -> Answer:
        """Any arrival: a call already known, on a segment, queued at once, or with no
        valid policy (app/calls/hot_path.py takes the common case in one INSERT)."""
        call = lock_call(session, event.call_sid, dialled_number=event.dialled or None)
        if event.segment_sid is not None:
            call.segment_sid = event.segment_sid
            segment_of(session, call, event.segment_sid, None, "arrived")
        protect_caller(call, event.caller, self.settings.number_key, self.settings.default_region)
        audit.append(
            session,
            audit.EventType.CALL_STARTED,
            actor=PLATFORM,
            call_sid=event.call_sid,
            policy_version=active.version if active else None,
            detail={"dialled": event.dialled, "direction": event.direction},
        )
        return self._answer(session, call, active)

    def _answer(self, session: Session, call: Call, active: ActivePolicy | None) -> Answer:
        if active is None:
            return self.fail_safe_answer(session, call)
        route = route_inbound(active.policy, call.dialled_number or "")
        if isinstance(route, ToDepartment) and not route.department.recorded:
            # Nothing will be recorded: no notice or opt-out needed before the queue.
            return self._queue(session, call, active, route.department)
        call.ivr_step = 1
        if isinstance(route, ToMenu):
            self._routed(session, call, active, "menu")
            return Menu(active.policy, 1, notice=True, offer_opt_out=True)
        call.department = route.department.id
        self._routed(session, call, active, route.department.id)
        return DepartmentNotice(active.policy, 1)

    def _routed(self, session: Session, call: Call, active: ActivePolicy, to: str) -> None:
        audit.append(
            session,
            audit.EventType.CALL_ROUTED,
            actor=PLATFORM,
            call_sid=call.call_sid,
            policy_version=active.version,
            detail={"to": to},
        )

    def fail_safe_answer(self, session: Session, call: Call) -> FailSafe:
        """No valid policy: CALLGUARD_FAIL_SAFE decides, and the decision is logged."""
        call.queued = True
        decision = redecide(session, call, None, self.settings.fail_safe, "system")
        return FailSafe(record=decision.state == "recording")

    def replay_fail_safe(
        self,
        call_sid: str,
        dialled: str | None,
        digits: str | None,
        key: str,
        kind: str,
        received_at: datetime,
        segment_sid: str | None = None,
    ) -> None:
        """A caller-facing webhook that was answered by the fail-safe while the database
        was down: record what happened (once, under its live dedupe `key`), and honour an
        opt-out key press."""
        with unit_of_work(self.sessions) as session:
            if claim_receipt(session, key, None, kind, call_sid) is None:
                return  # it reached the database after all
            call = lock_call(session, call_sid, dialled_number=dialled or None)
            if segment_sid is not None and kind == "voice":
                call.segment_sid = segment_sid
                segment_of(session, call, segment_sid, None, "arrived")
            active = active_policy(session)

            def record(type_: audit.EventType, actor: str, **detail: object) -> None:
                audit.append(
                    session,
                    type_,
                    actor=actor,
                    call_sid=call_sid,
                    occurred_at=received_at,
                    received_at=received_at,
                    detail={"journaled": True, **detail},
                )

            if kind == "voice":
                record(audit.EventType.CALL_STARTED, PLATFORM, dialled=dialled or "")
            record(
                audit.EventType.FAIL_SAFE_ANSWERED,
                "system",
                webhook=kind,
                recorded=self.fail_safe_records,
            )
            call.queued = True  # the fail-safe answer put the caller in the fallback queue
            opting_out = (
                active is not None
                and kind == "ivr"
                and digits == active.policy.opt_out_digit
                and not call.opted_out
                and not call.payment_in_progress
            )
            if opting_out:
                call.opted_out = True
                record(audit.EventType.OPT_OUT_REQUESTED, CALLER, source="ivr")
            self.redecide(session, call, "system")
        self.reconciler.reconcile_or_leave(call_sid, "system")

    # -- the menu ------------------------------------------------------------------------

    def menu_answered(self, event: MenuAnswered, render: Render) -> Reply:
        """The caller's menu choice; a call it queues for a recorded department has its
        recording started before the answer (Reconciler.changed: planned in this
        webhook's own transaction when the call's lock is free)."""
        return self.reconciler.changed(
            event.call_sid,
            PLATFORM,
            lambda plan: self._menu_answered(event, render, plan),
            leave_if_busy=True,
        )

    def _menu_answered(self, event: MenuAnswered, render: Render, plan: Plan) -> Reply:
        call_sid, delivery = event.call_sid, event.delivery
        with unit_of_work(self.sessions) as session:
            receipt = claim_receipt(session, delivery.key, delivery.token, "ivr", call_sid)
            if receipt is None:
                return Reply(stored_response(session, delivery.key, delivery.token), True)
            call = lock_call(session, call_sid)
            active = active_policy(session)
            answer: Answer
            if active is None or call.ended:
                answer = self.fail_safe_answer(session, call)
            elif call.payment_in_progress or call.queued:
                # Digits pressed while queued or paying are not menu choices and are dropped.
                answer = self.queue_answer(call, call.department)
            else:
                answer = self._menu_choice(session, call, active, event.digits, event.step)
                if call.queued:
                    plan(session, call)
            body = render(answer)
            keep_response(session, receipt, body)
        return Reply(body)

    def queue_answer(self, call: Call, department: str | None) -> Queue:
        return Queue(department, call.call_sid, recorded=call.desired == "recording")

    def _menu_choice(
        self, session: Session, call: Call, active: ActivePolicy, digits: str | None, step: int
    ) -> Answer:
        policy = active.policy
        choice = choose(policy, digits, call.department, step, call.opted_out)
        if isinstance(choice, ToDepartment):
            return self._queue(session, call, active, choice.department)
        call.ivr_step = step + 1
        if isinstance(choice, OptOut):
            call.opted_out = True
            audit.append(
                session,
                audit.EventType.OPT_OUT_REQUESTED,
                actor=CALLER,
                call_sid=call.call_sid,
                policy_version=active.version,
                detail={"source": "ivr"},
            )
            if call.department is not None:
                department = policy.department(call.department)
                assert department is not None
                return self._queue(session, call, active, department)
            return Menu(
                policy, call.ivr_step, notice=False, offer_opt_out=False, preface=(OPT_OUT_NOTED,)
            )
        assert isinstance(choice, Retry)
        return Menu(
            policy,
            call.ivr_step,
            notice=False,
            offer_opt_out=not call.opted_out,
            preface=(NOT_A_CHOICE,) if digits else (),
        )

    def _queue(
        self, session: Session, call: Call, active: ActivePolicy, department: Department
    ) -> Queue:
        call.department = department.id
        call.queued = True
        audit.append(
            session,
            audit.EventType.CALL_QUEUED,
            actor=PLATFORM,
            call_sid=call.call_sid,
            policy_version=active.version,
            detail={"department": department.id},
        )
        decision = redecide(session, call, active, self.settings.fail_safe, PLATFORM)
        preface: tuple[str, ...] = ()
        if call.opted_out and department.recorded:
            preface = (opt_out_message(department),)
        return Queue(
            department.id,
            call.call_sid,
            recorded=decision.state == "recording",
            preface=preface,
        )

    # -- the call's progress -------------------------------------------------------------

    def progressed(self, event: CallProgressed) -> Reply:
        call_sid, delivery = event.call_sid, event.delivery
        status, sequence, occurred = event.status, event.sequence, event.occurred_at
        with unit_of_work(self.sessions) as session:
            if (
                claim_receipt(session, delivery.key, delivery.token, "call-status", call_sid)
                is None
            ):
                return Reply(None, True)
            if not event.ended:
                progress(session, event)  # app/calls/hot_path.py: no ORM object
                return Reply(None)
            call = lock_call(session, call_sid, dialled_number=event.dialled or None)
            if stale(event, call.status, call.status_sequence, call.ended):
                ignored(session, event, call.status)
                return Reply(None)
            call.status = status
            call.status_sequence = sequence
            applied(session, event)
            end_call(session, call, occurred or utcnow(), self.settings.fail_safe, PLATFORM)
        return Reply(None)

    # -- recordings ----------------------------------------------------------------------

    def recording_reported(self, event: RecordingReported) -> Reply:
        call_sid, recording_sid, status = event.call_sid, event.recording_sid, event.status
        delivery = event.delivery
        with unit_of_work(self.sessions) as session:
            if (
                claim_receipt(session, delivery.key, delivery.token, "recording-status", call_sid)
                is None
            ):
                return Reply(None, True)
            call = lock_call(session, call_sid)
            # The call's recordings first: the reported one is then found without a query
            # of its own, and the call's confirmed state is worked out from them in memory,
            # so the changes go in one flush as the transaction commits (issue 17).
            recordings = recordings_of(session, call_sid)
            recording = session.get(Recording, recording_sid)
            created = recording is None
            if recording is None:
                recording = new_recording(
                    session, call, recording_sid, RECORDING_STARTED, event.segment_sid
                )
                recordings.append(recording)
            if recording.status in RECORDING_ENDINGS:
                audit.append(
                    session,
                    audit.EventType.RECORDING_STATUS_IGNORED,
                    actor=PLATFORM,
                    call_sid=call_sid,
                    recording_sid=recording_sid,
                    detail={"status": status, "current": recording.status},
                )
                return Reply(None)
            if status == RECORDING_STARTED:
                # Pause/resume/stop are confirmed by the platform's answer to the command,
                # not by reports: a late "started" never undoes a confirmed pause.
                audit.append(
                    session,
                    audit.EventType.RECORDING_STARTED
                    if created
                    else audit.EventType.RECORDING_STATUS,
                    actor=PLATFORM,
                    call_sid=call_sid,
                    recording_sid=recording_sid,
                    policy_version=recording.policy_version,
                    detail={"status": status, "source": "callback"},
                )
            else:
                self._complete(session, recording, event)
                if (
                    not call.ended
                    and call.desired == "recording"
                    and recording.segment_sid == call.segment_sid
                ):
                    # The platform ends a call's recordings when the call ends, and the
                    # call's own end may be reported after this: no new recording is
                    # started for a minute unless the call is still up by then.
                    call.start_pending_until = utcnow() + START_UNCERTAIN
            call.recording = confirmed_state(call, recordings)
        return Reply(None)

    def _complete(self, session: Session, recording: Recording, event: RecordingReported) -> None:
        seconds, started = event.duration_seconds, event.started_at
        completed_at = (
            started + timedelta(seconds=seconds) if started and seconds is not None else utcnow()
        )
        recording.status = event.status
        recording.duration_seconds = seconds
        recording.completed_at = completed_at
        recording.media_url = event.media_url or recording.media_url
        recording.destroy_after = add_duration(completed_at, parse_duration(recording.retention))
        audit.append(
            session,
            audit.EventType.RECORDING_COMPLETED,
            actor=PLATFORM,
            call_sid=recording.call_sid,
            recording_sid=recording.recording_sid,
            policy_version=recording.policy_version,
            occurred_at=completed_at,
            detail={
                "status": event.status,
                "duration_seconds": seconds,
                "retention": recording.retention,
                "destroy_after": recording.destroy_after.isoformat(),
                "error_code": event.error_code,
            },
        )
