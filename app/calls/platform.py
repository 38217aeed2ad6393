"""What the platform's webhooks mean: each one is applied once, in the platform's order."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

from sqlalchemy.orm import Session, sessionmaker

from app import audit
from app.calls.decisions import end_call, redecide
from app.calls.reconcile import START_UNCERTAIN, Reconciler, new_recording
from app.calls.state import confirmed_state
from app.calls.store import (
    claim_receipt,
    keep_response,
    lock_call,
    recordings_of,
    stored_response,
)
from app.config import Settings
from app.db import unit_of_work
from app.errors import BadRequest
from app.models import Call, Recording, utcnow
from app.numbers import protect_caller
from app.policy_store import ActivePolicy, active_policy
from app.recording_policy import Department, add_duration, parse_duration
from app.routing import twiml
from app.routing.router import OptOut, Retry, ToDepartment, ToMenu, choose, route_inbound

PLATFORM = "platform"
CALLER = "caller"

# Twilio's call statuses in the order a call moves through them; terminal ones share a rank.
_CALL_RANK = {
    "queued": 0,
    "initiated": 0,
    "ringing": 1,
    "in-progress": 2,
    "completed": 3,
    "busy": 3,
    "failed": 3,
    "no-answer": 3,
    "canceled": 3,
}
_RECORDING_TERMINAL = ("completed", "absent", "failed")
_RECORDING_STATUSES = ("in-progress", *_RECORDING_TERMINAL)


class BadWebhook(BadRequest):
    """A webhook without a field it must have (answered 400, nothing stored)."""


# Twilio's SIDs: two letters and 32 hex digits. Anything alphanumeric that fits the
# columns is taken (tests and other platforms vary); a newline or control character never
# is: the audit chain's message needs none in a sid (app/audit/chain.py).
SID = re.compile(r"[A-Za-z0-9]{1,64}")


def required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise BadWebhook(f"missing form field {name}")
    if name.endswith("Sid") and not SID.fullmatch(value):
        raise BadWebhook(f"form field {name} is not a SID (letters and digits, at most 64)")
    return value


def _sequence(value: str | None) -> int:
    """Twilio's SequenceNumber (0, 1, 2…), -1 when absent. Anything else is refused (400),
    never passed to int() raw (a 500) nor stored past the column's range."""
    if not value:
        return -1
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise BadWebhook(f"SequenceNumber {value[:20]!r} is not a sequence number")
    return int(value)


def _twilio_time(value: str | None) -> datetime | None:
    """Twilio's RFC 2822 timestamps (`Tue, 10 Aug 2010 03:45:01 +0000`)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else None


def voice_key(call_sid: str) -> str:
    return f"voice:{call_sid}"


def ivr_key(call_sid: str, step: int) -> str:
    # The menu step, never the digits: gathered digits are not stored.
    return f"ivr:{call_sid}:{step}"


def transfer_key(call_sid: str, number: int, kind: str) -> str:
    return f"transfer:{call_sid}:{number}:{kind}"


@dataclass(frozen=True)
class Reply:
    twiml: str | None
    duplicate: bool = False


class PlatformEvents:
    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], reconciler: Reconciler
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.reconciler = reconciler

    def redecide(self, session: Session, call: Call, actor: str) -> None:
        redecide(session, call, active_policy(session), self.settings.fail_safe, actor)

    def queue_twiml(self, call: Call, department: str | None) -> str:
        return twiml.enqueue(
            department or twiml.FALLBACK_QUEUE,
            call_sid=call.call_sid,
            workflow_sid=self.settings.taskrouter_workflow_sid,
        )

    def url(self, path: str, **query: object) -> str:
        base = f"{self.settings.public_base_url}{path}"
        return f"{base}?{urlencode(query)}" if query else base

    # -- voice ---------------------------------------------------------------------------

    def voice(self, form: Mapping[str, str], token: str | None) -> Reply:
        call_sid = required(form, "CallSid")
        dialled = form.get("To", "")
        with unit_of_work(self.sessions) as session:
            key = voice_key(call_sid)
            receipt = claim_receipt(session, key, token, "voice", call_sid)
            if receipt is None:
                return Reply(stored_response(session, key, token), True)
            call = lock_call(session, call_sid, dialled_number=dialled or None)
            protect_caller(
                call, form.get("From"), self.settings.number_key, self.settings.default_region
            )
            active = active_policy(session)
            audit.append(
                session,
                audit.EventType.CALL_STARTED,
                actor=PLATFORM,
                call_sid=call_sid,
                policy_version=active.version if active else None,
                detail={"dialled": dialled, "direction": form.get("Direction", "inbound")},
            )
            body = self._answer(session, call, active)
            keep_response(session, receipt, body)
        return Reply(body)

    def _answer(self, session: Session, call: Call, active: ActivePolicy | None) -> str:
        if active is None:
            return self._fail_safe(session, call)
        route = route_inbound(active.policy, call.dialled_number or "")
        if isinstance(route, ToDepartment) and not route.department.recorded:
            # Nothing will be recorded: no notice or opt-out needed before the queue.
            return self._queue(session, call, active, route.department)
        call.ivr_step = 1
        action = self.url("/webhooks/twilio/ivr", step=1)
        if isinstance(route, ToMenu):
            self._routed(session, call, active, "menu")
            return twiml.menu(active.policy, action, notice=True, offer_opt_out=True)
        call.department = route.department.id
        self._routed(session, call, active, route.department.id)
        return twiml.department_notice(active.policy, action)

    def _routed(self, session: Session, call: Call, active: ActivePolicy, to: str) -> None:
        audit.append(
            session,
            audit.EventType.CALL_ROUTED,
            actor=PLATFORM,
            call_sid=call.call_sid,
            policy_version=active.version,
            detail={"to": to},
        )

    def _fail_safe(self, session: Session, call: Call) -> str:
        """No valid policy: CALLGUARD_FAIL_SAFE decides, and the decision is logged."""
        call.queued = True
        decision = redecide(session, call, None, self.settings.fail_safe, "system")
        return self.fail_safe_twiml(record=decision.state == "recording")

    def fail_safe_twiml(self, *, record: bool | None = None) -> str:
        """Also answered when the database cannot be reached (nothing can be logged then,
        so only CALLGUARD_FAIL_SAFE decides)."""
        if record is None:
            record = self.settings.fail_safe.value == "record"
        return twiml.fail_safe(
            record,
            self.url("/webhooks/twilio/recording-status"),
            twiml.FAIL_SAFE_RECORDED_NOTICE if record else twiml.FAIL_SAFE_NOTICE,
        )

    def replay_fail_safe(
        self, form: Mapping[str, str], key: str, kind: str, received_at: datetime
    ) -> None:
        """A caller-facing webhook that was answered by the fail-safe while the database
        was down: record what happened (once), and honour an opt-out key press."""
        call_sid = required(form, "CallSid")
        with unit_of_work(self.sessions) as session:
            if claim_receipt(session, key, None, kind, call_sid) is None:
                return  # it reached the database after all
            call = lock_call(session, call_sid, dialled_number=form.get("To") or None)
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
                record(audit.EventType.CALL_STARTED, PLATFORM, dialled=form.get("To", ""))
            record(
                audit.EventType.FAIL_SAFE_ANSWERED,
                "system",
                webhook=kind,
                recorded=self.settings.fail_safe.value == "record",
            )
            call.queued = True  # the fail-safe TwiML put the caller in the fallback queue
            opting_out = (
                active is not None
                and kind == "ivr"
                and form.get("Digits") == active.policy.opt_out_digit
                and not call.opted_out
                and not call.payment_in_progress
            )
            if opting_out:
                call.opted_out = True
                record(audit.EventType.OPT_OUT_REQUESTED, CALLER, source="ivr")
            self.redecide(session, call, "system")
        self.reconciler.reconcile_or_leave(call_sid, "system")

    # -- ivr -----------------------------------------------------------------------------

    def ivr(self, form: Mapping[str, str], step: int, token: str | None) -> Reply:
        call_sid = required(form, "CallSid")
        key = ivr_key(call_sid, step)
        queued = False
        with unit_of_work(self.sessions) as session:
            receipt = claim_receipt(session, key, token, "ivr", call_sid)
            if receipt is None:
                return Reply(stored_response(session, key, token), True)
            call = lock_call(session, call_sid)
            active = active_policy(session)
            if active is None or call.ended:
                body = self._fail_safe(session, call)
            elif call.payment_in_progress or call.queued:
                # Digits pressed while queued or paying are not menu choices and are dropped.
                body = self.queue_twiml(call, call.department)
            else:
                body = self._menu_choice(session, call, active, form.get("Digits"), step)
                queued = call.queued
            keep_response(session, receipt, body)
        if queued:
            self.reconciler.reconcile_or_leave(call_sid, PLATFORM)
        return Reply(body)

    def _menu_choice(
        self, session: Session, call: Call, active: ActivePolicy, digits: str | None, step: int
    ) -> str:
        policy = active.policy
        choice = choose(policy, digits, call.department, step, call.opted_out)
        if isinstance(choice, ToDepartment):
            return self._queue(session, call, active, choice.department)
        call.ivr_step = step + 1
        action = self.url("/webhooks/twilio/ivr", step=call.ivr_step)
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
            return twiml.menu(
                policy,
                action,
                notice=False,
                offer_opt_out=False,
                preface=["Your request not to be recorded has been noted."],
            )
        assert isinstance(choice, Retry)
        return twiml.menu(
            policy,
            action,
            notice=False,
            offer_opt_out=not call.opted_out,
            preface=["Sorry, that was not a valid choice."] if digits else [],
        )

    def _queue(
        self, session: Session, call: Call, active: ActivePolicy, department: Department
    ) -> str:
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
        redecide(session, call, active, self.settings.fail_safe, PLATFORM)
        preface = []
        if call.opted_out and department.recorded:
            preface.append(twiml.opt_out_message(department))
        return twiml.enqueue(
            department.id,
            call_sid=call.call_sid,
            workflow_sid=self.settings.taskrouter_workflow_sid,
            preface=preface,
        )

    # -- call status ---------------------------------------------------------------------

    def call_status(self, form: Mapping[str, str], token: str | None) -> Reply:
        call_sid = required(form, "CallSid")
        status = required(form, "CallStatus")
        if status not in _CALL_RANK:
            raise BadWebhook(f"unknown CallStatus {status!r}")
        sequence = _sequence(form.get("SequenceNumber"))
        key = f"call-status:{call_sid}:{status}:{sequence}"
        occurred = _twilio_time(form.get("Timestamp"))
        with unit_of_work(self.sessions) as session:
            if claim_receipt(session, key, token, "call-status", call_sid) is None:
                return Reply(None, True)
            call = lock_call(session, call_sid, dialled_number=form.get("To") or None)
            rank, current = _CALL_RANK[status], _CALL_RANK.get(call.status, 0)
            # A status the call has already passed (or an older sequence of the same one)
            # is stale: recorded as ignored, never applied.
            if (
                call.ended
                or rank < current
                or (rank == current and sequence <= call.status_sequence)
            ):
                audit.append(
                    session,
                    audit.EventType.CALL_STATUS_IGNORED,
                    actor=PLATFORM,
                    call_sid=call_sid,
                    occurred_at=occurred,
                    detail={"status": status, "sequence": sequence, "current": call.status},
                )
                return Reply(None)
            call.status = status
            call.status_sequence = sequence
            ended = rank == _CALL_RANK["completed"]
            audit.append(
                session,
                audit.EventType.CALL_ENDED if ended else audit.EventType.CALL_STATUS,
                actor=PLATFORM,
                call_sid=call_sid,
                occurred_at=occurred,
                detail={"status": status, "sequence": sequence},
            )
            if ended:
                end_call(session, call, occurred or utcnow(), self.settings.fail_safe, PLATFORM)
        return Reply(None)

    # -- recording status ----------------------------------------------------------------

    def recording_status(self, form: Mapping[str, str], token: str | None) -> Reply:
        call_sid = required(form, "CallSid")
        recording_sid = required(form, "RecordingSid")
        status = required(form, "RecordingStatus")
        if status not in _RECORDING_STATUSES:
            raise BadWebhook(f"unknown RecordingStatus {status!r}")
        key = f"recording-status:{recording_sid}:{status}"
        with unit_of_work(self.sessions) as session:
            if claim_receipt(session, key, token, "recording-status", call_sid) is None:
                return Reply(None, True)
            call = lock_call(session, call_sid)
            recording = session.get(Recording, recording_sid)
            created = recording is None
            if recording is None:
                recording = new_recording(session, call, recording_sid, "in-progress")
            if recording.status in _RECORDING_TERMINAL:
                audit.append(
                    session,
                    audit.EventType.RECORDING_STATUS_IGNORED,
                    actor=PLATFORM,
                    call_sid=call_sid,
                    recording_sid=recording_sid,
                    detail={"status": status, "current": recording.status},
                )
                return Reply(None)
            if status == "in-progress":
                # Pause/resume/stop are confirmed by the REST response, not by callbacks:
                # a late in-progress never undoes a confirmed pause.
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
                self._complete(session, recording, form, status)
                if not call.ended and call.desired == "recording":
                    # Twilio ends a call's recordings when the call ends, and the call's
                    # own completed callback may trail this one: no new recording is
                    # started for a minute unless the call is still up by then.
                    call.start_pending_until = utcnow() + START_UNCERTAIN
            session.flush()
            call.recording = confirmed_state(call, recordings_of(session, call_sid))
        return Reply(None)

    def _complete(
        self, session: Session, recording: Recording, form: Mapping[str, str], status: str
    ) -> None:
        duration = form.get("RecordingDuration")
        started = _twilio_time(form.get("RecordingStartTime"))
        seconds = int(duration) if duration and duration.isdigit() else None
        completed_at = (
            started + timedelta(seconds=seconds) if started and seconds is not None else utcnow()
        )
        recording.status = status
        recording.duration_seconds = seconds
        recording.completed_at = completed_at
        recording.media_url = form.get("RecordingUrl") or recording.media_url
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
                "status": status,
                "duration_seconds": seconds,
                "retention": recording.retention,
                "destroy_after": recording.destroy_after.isoformat(),
                "error_code": form.get("ErrorCode"),
            },
        )
