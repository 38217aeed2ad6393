"""Twilio's webhook forms, checked at the edge and translated into callguard's inputs
(app/calls/inputs.py). Only this module knows Twilio's field names; every value the
service uses is checked against what Twilio can send, and a form that lacks one is
refused (400) before anything is stored."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from app.calls.inputs import (
    RECORDING_ENDINGS,
    RECORDING_STARTED,
    AssignmentOffered,
    CallArrived,
    CallProgressed,
    Delivery,
    MenuAnswered,
    RecordingReported,
    TransferLegArrived,
)
from app.errors import BadRequest


class BadWebhook(BadRequest):
    """A webhook without a field it must have (answered 400, nothing stored)."""


# Twilio's SIDs: two letters and 32 hex digits. Anything alphanumeric that fits the
# columns is taken (tests and the simulator's callers vary); a newline or control
# character never is: the audit chain's message needs none in a sid (app/audit/chain.py).
SID = re.compile(r"[A-Za-z0-9]{1,64}")
# The same, for the people's API paths on this platform.
ID_PATTERN = r"[A-Za-z0-9]{2,64}"

# Twilio's call statuses in the order a call moves through them; terminal ones share a rank.
CALL_RANK = {
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
ENDED_RANK = CALL_RANK["completed"]
RECORDING_STATUSES = (RECORDING_STARTED, *RECORDING_ENDINGS)


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


def _count(value: str | None) -> int | None:
    """A duration or error code: ASCII digits that fit the columns, else None (dropped:
    `isdigit()` alone takes '²', and int() of it fails)."""
    if value and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    return None


def twilio_time(value: str | None) -> datetime | None:
    """Twilio's RFC 2822 timestamps (`Tue, 10 Aug 2010 03:45:01 +0000`)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else None


# Dedupe keys: one per thing that happens, never naming what a caller pressed.
def voice_key(call_sid: str) -> str:
    return f"voice:{call_sid}"


def ivr_key(call_sid: str, step: int) -> str:
    # The menu step, never the digits: gathered digits are not stored.
    return f"ivr:{call_sid}:{step}"


def transfer_key(call_sid: str, number: int, kind: str) -> str:
    return f"transfer:{call_sid}:{number}:{kind}"


def voice(form: Mapping[str, str], token: str | None) -> CallArrived:
    call_sid = required(form, "CallSid")
    return CallArrived(
        call_sid=call_sid,
        dialled=form.get("To", ""),
        caller=form.get("From"),
        delivery=Delivery(voice_key(call_sid), token),
        direction=form.get("Direction", "inbound"),
    )


def ivr(form: Mapping[str, str], step: int, token: str | None) -> MenuAnswered:
    call_sid = required(form, "CallSid")
    return MenuAnswered(
        call_sid=call_sid,
        step=step,
        digits=form.get("Digits"),
        delivery=Delivery(ivr_key(call_sid, step), token),
    )


def call_status(form: Mapping[str, str], token: str | None) -> CallProgressed:
    call_sid = required(form, "CallSid")
    status = required(form, "CallStatus")
    if status not in CALL_RANK:
        raise BadWebhook(f"unknown CallStatus {status!r}")
    sequence = _sequence(form.get("SequenceNumber"))
    return CallProgressed(
        call_sid=call_sid,
        status=status,
        rank=CALL_RANK[status],
        ranks=CALL_RANK,
        sequence=sequence,
        ended=CALL_RANK[status] == ENDED_RANK,
        occurred_at=twilio_time(form.get("Timestamp")),
        dialled=form.get("To") or None,
        delivery=Delivery(f"call-status:{call_sid}:{status}:{sequence}", token),
    )


def recording_status(form: Mapping[str, str], token: str | None) -> RecordingReported:
    call_sid = required(form, "CallSid")
    recording_sid = required(form, "RecordingSid")
    status = required(form, "RecordingStatus")
    if status not in RECORDING_STATUSES:
        raise BadWebhook(f"unknown RecordingStatus {status!r}")
    return RecordingReported(
        call_sid=call_sid,
        recording_sid=recording_sid,
        status=status,
        duration_seconds=_count(form.get("RecordingDuration")),
        started_at=twilio_time(form.get("RecordingStartTime")),
        media_url=form.get("RecordingUrl") or None,
        error_code=_count(form.get("ErrorCode")),
        delivery=Delivery(f"recording-status:{recording_sid}:{status}", token),
    )


def transfer(
    form: Mapping[str, str], kind: str, number: int, department: str, token: str | None
) -> TransferLegArrived:
    call_sid = required(form, "CallSid")
    return TransferLegArrived(
        call_sid=call_sid,
        kind=kind,
        number=number,
        department=department,
        delivery=Delivery(transfer_key(call_sid, number, kind), token),
    )


def _json_object(form: Mapping[str, str], name: str) -> dict[str, Any]:
    try:
        value = json.loads(form.get(name) or "{}")
    except json.JSONDecodeError:
        raise BadRequest(f"{name} is not JSON") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{name} is not a JSON object")
    return value


def person_for(worker: Mapping[str, Any]) -> str | None:
    """`callguard_user`, else the worker's `contact_uri` without `client:`."""
    name = worker.get("callguard_user")
    if not name and isinstance(worker.get("contact_uri"), str):
        name = worker["contact_uri"].removeprefix("client:")
    return str(name) if name else None


def assignment(
    form: Mapping[str, str], token: str | None
) -> tuple[AssignmentOffered, dict[str, Any]]:
    """TaskRouter's assignment callback: the offer, and the worker's attributes (its
    `contact_uri` is where the instruction sends the caller)."""
    reservation = required(form, "ReservationSid")
    task = _json_object(form, "TaskAttributes")
    worker = _json_object(form, "WorkerAttributes")
    call_sid = str(task.get("call_sid") or "")
    if call_sid and not SID.fullmatch(call_sid):
        raise BadWebhook("TaskAttributes.call_sid is not a SID")
    offer = AssignmentOffered(
        call_sid=call_sid or None,
        person=person_for(worker),
        delivery=Delivery(f"assignment:{reservation}", token),
        source="taskrouter",
    )
    return offer, worker
