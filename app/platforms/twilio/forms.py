"""Twilio's webhook forms, checked at the edge and translated into callguard's inputs
(app/calls/inputs.py). Only this module knows Twilio's field names; every value the
service uses is checked against what Twilio can send, and a form that lacks one is
refused (400) before anything is stored."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote

import structlog

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

log = structlog.get_logger(__name__)


class BadWebhook(BadRequest):
    """A webhook without a field it must have (answered 400, nothing stored)."""


# Twilio's SIDs: two fixed letters naming the kind and 32 lowercase hex digits. Each id
# field is checked against its own kind: Twilio's signature joins names and values with
# no separator, so a captured form rewritten as `CallSid=<sid>CallStatusringing` still
# verifies, and only the exact format refuses it (issue 14).
SID_KINDS = {
    "CallSid": "CA",
    "ParentCallSid": "CA",
    "RecordingSid": "RE",
    "AccountSid": "AC",
    "ReservationSid": "WR",
    "TaskSid": "WT",
    "WorkerSid": "WK",
}
SID_PATTERNS = {name: re.compile(rf"{kind}[0-9a-f]{{32}}") for name, kind in SID_KINDS.items()}
DIRECTIONS = frozenset(
    {"inbound", "outbound-api", "outbound-dial", "trunking-originating", "trunking-terminating"}
)
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
DIGITS = re.compile(r"[0-9*#]{0,32}")
PERSON = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")  # a callguard user name
EARLIEST = datetime(2008, 1, 1, tzinfo=UTC)  # before Twilio's voice API
MEDIA_URL = re.compile(r"https://[\x21-\x7e]{1,490}")

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
    value = form.get(name, "")
    if not value:
        raise BadWebhook(f"missing form field {name}")
    _check_sid(name, value)
    return value


def _check_sid(name: str, value: str) -> None:
    pattern = SID_PATTERNS.get(name)
    if pattern and not pattern.fullmatch(value):
        kind = SID_KINDS[name]
        raise BadWebhook(f"form field {name} is not a {kind} SID ({kind} and 32 hex digits)")


def parse_form(body: str) -> list[tuple[str, str]]:
    """`urllib.parse.parse_qsl(body, keep_blank_values=True)`, field for field (a field
    without `=` is a blank value, empty fields are skipped, `+` is a space, escapes are
    UTF-8 with errors replaced), without its per-field type coercions: it was a fifth
    of the signed form's time, on every webhook."""
    pairs = []
    for field in body.split("&"):
        if field:
            name, _, value = field.partition("=")
            pairs.append((unquote(name.replace("+", " ")), unquote(value.replace("+", " "))))
    return pairs


def check_form(form: Mapping[str, str], pairs: int) -> None:
    """What every Twilio form must be before any field is read: no key twice (Twilio never
    sends one; the signature check and the handler could read different values) and each
    SID field present well formed."""
    if pairs != len(form):
        raise BadWebhook("a form field appears more than once")
    for name, value in form.items():
        if name in SID_KINDS and value:
            _check_sid(name, value)


def dialled_number(form: Mapping[str, str]) -> str:
    """The council number called, E.164; anything else (a SIP or client address, junk) is
    no number of the policy's, kept as none rather than copied anywhere."""
    value = form.get("To", "")
    return value if E164.fullmatch(value) else ""


def _one_of(form: Mapping[str, str], name: str, allowed: frozenset[str], default: str) -> str:
    value = form.get(name) or default
    if value not in allowed:
        raise BadWebhook(f"form field {name} is not one Twilio sends")
    return value


def _sequence(value: str | None) -> int:
    """Twilio's SequenceNumber (0, 1, 2…), -1 when absent. Anything else is refused (400),
    never passed to int() raw (a 500) nor stored past the column's range."""
    if not value:
        return -1
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise BadWebhook(f"SequenceNumber {value[:20]!r} is not a sequence number")
    return int(value)


def _count(form: Mapping[str, str], name: str) -> int | None:
    """A duration or error code: ASCII digits that fit the columns, else None, dropped
    with a log line naming the field (`isdigit()` alone takes '²', and int() of it fails)."""
    value = form.get(name)
    if not value:
        return None
    if value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    log.warning("webhook_value_dropped", field=name, length=len(value))
    return None


def _time(form: Mapping[str, str], name: str) -> datetime | None:
    value = form.get(name)
    parsed = twilio_time(value)
    if value and parsed is None:
        log.warning("webhook_value_dropped", field=name, length=len(value))
    return parsed


def twilio_time(value: str | None) -> datetime | None:
    """Twilio's RFC 2822 timestamps (`Tue, 10 Aug 2010 03:45:01 +0000`); None for one that
    cannot be a real event's (unreadable, no zone, or outside 2008 to a day from now: a
    year-9999 start would overflow the destruction date)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if parsed.tzinfo is None or not EARLIEST <= parsed <= datetime.now(UTC) + timedelta(days=1):
        return None
    return parsed


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
        dialled=dialled_number(form),
        caller=form.get("From"),
        delivery=Delivery(voice_key(call_sid), token),
        direction=_one_of(form, "Direction", DIRECTIONS, "inbound"),
    )


def ivr(form: Mapping[str, str], step: int, token: str | None) -> MenuAnswered:
    call_sid = required(form, "CallSid")
    digits = form.get("Digits")
    if digits is not None and not DIGITS.fullmatch(digits):
        raise BadWebhook("Digits holds something no keypad sends")
    return MenuAnswered(
        call_sid=call_sid,
        step=step,
        digits=digits,
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
        occurred_at=_time(form, "Timestamp"),
        dialled=dialled_number(form) or None,
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
        duration_seconds=_count(form, "RecordingDuration"),
        started_at=_time(form, "RecordingStartTime"),
        media_url=url if MEDIA_URL.fullmatch(url := form.get("RecordingUrl", "")) else None,
        error_code=_count(form, "ErrorCode"),
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
    """`callguard_user`, else the worker's `contact_uri` without `client:`; only a value
    shaped like a callguard user name (it is looked up, and named in the audit log)."""
    name = worker.get("callguard_user")
    if not name and isinstance(worker.get("contact_uri"), str):
        name = worker["contact_uri"].removeprefix("client:")
    return name if isinstance(name, str) and PERSON.fullmatch(name) else None


def assignment(
    form: Mapping[str, str], token: str | None
) -> tuple[AssignmentOffered, dict[str, Any]]:
    """TaskRouter's assignment callback: the offer, and the worker's attributes (its
    `contact_uri` is where the instruction sends the caller)."""
    reservation = required(form, "ReservationSid")
    task = _json_object(form, "TaskAttributes")
    worker = _json_object(form, "WorkerAttributes")
    call_sid = str(task.get("call_sid") or "")
    if call_sid and not SID_PATTERNS["CallSid"].fullmatch(call_sid):
        raise BadWebhook("TaskAttributes.call_sid is not a SID")
    offer = AssignmentOffered(
        call_sid=call_sid or None,
        person=person_for(worker),
        delivery=Delivery(f"assignment:{reservation}", token),
        source="taskrouter",
    )
    return offer, worker
