"""Twilio forms are checked against what Twilio can send before anything is stored (issue 14,
item 2): a captured signed webhook rewritten into another one that still verifies (Twilio's
signature joins names and values with no separator) is refused, as is a duplicated key, a
SID (of every kind the forms read) with the wrong letters or shape, a status outside
Twilio's sets, a SequenceNumber too long to store, and values no keypad sends; free-form
values never reach the audit log. Odd numbers in a recording's completion are dropped, never
a 500 (item 4)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

import pytest
from sqlalchemy import func, select

from app.people.users import Role
from app.storage.models import AuditEvent, Call, Recording, WebhookReceipt
from tests.factories import (
    ACCOUNT_SID,
    DEFAULT_CALLER,
    MAIN_NUMBER,
    Platform,
    captured_logs,
    make_user,
    new_call_sid,
)

VOICE = "/webhooks/twilio/voice"


def _rows(session) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        session.scalar(select(func.count()).select_from(t))
        for t in (Call, AuditEvent, WebhookReceipt)
    )


def _signature(platform: Platform, path: str, pairs: list[tuple[str, str]]) -> str:
    """Twilio's algorithm over a list of pairs (the SDK's takes a dict, so no duplicates)."""
    data = platform.settings.public_base_url + path + "".join(k + v for k, v in sorted(pairs))
    key = (platform.settings.twilio_auth_token or "").encode()
    return base64.b64encode(hmac.new(key, data.encode(), hashlib.sha1).digest()).decode()


def _post_pairs(platform: Platform, path: str, pairs: list[tuple[str, str]], signature: str):
    return platform.client.post(
        path,
        content="&".join(f"{k}={v.replace('+', '%2B')}" for k, v in pairs),
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )


def _voice_form(call_sid: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": DEFAULT_CALLER,
        "To": MAIN_NUMBER,
    }


def test_a_boundary_moved_into_the_call_sid_is_refused(platform: Platform, session) -> None:
    call_sid = new_call_sid()
    form = _voice_form(call_sid)
    signature = platform.sign(VOICE, form)
    del form["CallStatus"]
    form["CallSid"] = f"{call_sid}CallStatusringing"
    # The signature still verifies: the attack is real, only the SID's format stops it.
    assert platform.sign(VOICE, form) == signature
    before = _rows(session)
    response = platform.client.post(VOICE, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 400
    assert "CallSid" in response.json()["detail"]
    session.expire_all()
    assert _rows(session) == before


def test_a_number_moved_into_direction_never_reaches_the_audit_log(
    platform: Platform, session
) -> None:
    call_sid = new_call_sid()
    form = _voice_form(call_sid)
    signature = platform.sign(VOICE, form)
    del form["From"]
    form["Direction"] = f"inboundFrom{DEFAULT_CALLER}"
    assert platform.sign(VOICE, form) == signature
    before = _rows(session)
    response = platform.client.post(VOICE, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 400
    session.expire_all()
    assert _rows(session) == before
    bodies = session.scalars(select(AuditEvent.body)).all()
    assert not any(DEFAULT_CALLER[1:] in str(b) for b in bodies)


def test_a_duplicated_key_is_refused(platform: Platform, session) -> None:
    call_sid, other = new_call_sid(), new_call_sid()
    pairs = [*_voice_form(call_sid).items(), ("CallSid", other)]
    before = _rows(session)
    response = _post_pairs(platform, VOICE, pairs, _signature(platform, VOICE, pairs))
    assert response.status_code == 400
    assert "more than once" in response.json()["detail"]
    session.expire_all()
    assert _rows(session) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("CallSid", "CA" + "A" * 32),  # upper-case hex
        ("CallSid", "RE" + "a" * 32),  # another kind's letters
        ("CallSid", "CA" + "a" * 31),
        ("AccountSid", "AC123"),
        ("ParentCallSid", "CA" + "g" * 32),
        ("Direction", "sideways"),
        ("Digits", "1\n2"),
    ],
)
def test_values_twilio_never_sends_are_refused(
    platform: Platform, session, field: str, value: str
) -> None:
    form = {**_voice_form(new_call_sid()), field: value}
    path = VOICE if field != "Digits" else "/webhooks/twilio/ivr?step=1"
    before = _rows(session)
    assert platform.post(path, form).status_code == 400
    session.expire_all()
    assert _rows(session) == before


def test_a_dialled_address_that_is_no_number_is_not_copied(platform: Platform, session) -> None:
    call_sid = new_call_sid()
    assert platform.voice(call_sid, "sip:evil@example.com;x=+447700900123").status_code == 200
    session.expire_all()
    assert session.get(Call, call_sid).dialled_number is None
    started = session.scalars(
        select(AuditEvent).where(AuditEvent.call_sid == call_sid, AuditEvent.type == "call.started")
    ).one()
    assert started.detail["dialled"] == ""


@pytest.mark.parametrize(
    "extra",
    [
        {"RecordingDuration": "²"},
        {"RecordingDuration": "9" * 5000},
        {"RecordingDuration": "99999999999999999"},
        {"RecordingDuration": "12", "RecordingStartTime": "Fri, 31 Dec 9999 23:59:59 +0000"},
        {"ErrorCode": "²"},
    ],
    ids=["superscript", "5000-nines", "17-nines", "year-9999", "error-code"],
)
def test_odd_numbers_still_complete_the_recording(platform: Platform, session, extra) -> None:
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    recording_sid = platform.simulator.recordings(call_sid)[0].sid
    with captured_logs(logging.WARNING) as logs:
        response = platform.recording_status(call_sid, recording_sid, "completed", **extra)
    assert response.status_code == 204
    dropped = [json.loads(line) for line in logs.getvalue().splitlines()]
    dropped = [d for d in dropped if d.get("event") == "webhook_value_dropped"]
    assert {d["field"] for d in dropped} == {k for k in extra if k != "RecordingDuration"} | (
        {"RecordingDuration"} if extra.get("RecordingDuration", "12") != "12" else set()
    )
    session.expire_all()
    recording = session.get(Recording, recording_sid)
    assert recording.status == "completed"
    assert recording.destroy_after is not None
    assert recording.completed_at.year < 9999


def _snapshot(session) -> tuple[object, ...]:
    session.expire_all()
    calls = session.scalars(select(Call).order_by(Call.call_sid)).all()
    recordings = session.scalars(select(Recording).order_by(Recording.recording_sid)).all()
    return (
        *_rows(session),
        tuple((c.call_sid, c.status, c.status_sequence, c.agent, c.ended) for c in calls),
        tuple((r.recording_sid, r.status, r.completed_at) for r in recordings),
    )


def _assignment_form(call_sid: str, **sids: str) -> dict[str, str]:
    return {
        "AccountSid": ACCOUNT_SID,
        "TaskSid": "WT" + "3" * 32,
        "ReservationSid": "WR" + "1" * 32,
        "WorkerSid": "WK" + "4" * 32,
        "TaskAttributes": json.dumps({"call_sid": call_sid}),
        "WorkerAttributes": json.dumps({"callguard_user": "ann"}),
        **sids,
    }


BAD_HEX = "A" * 32  # upper case: Twilio's SIDs are lower-case hex


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/webhooks/twilio/recording-status", "RecordingSid", "RE" + BAD_HEX),
        ("/webhooks/twilio/recording-status", "RecordingSid", "CA" + "a" * 32),
        ("/webhooks/twilio/assignment", "ReservationSid", "WR" + BAD_HEX),
        ("/webhooks/twilio/assignment", "TaskSid", "WT" + BAD_HEX),
        ("/webhooks/twilio/assignment", "WorkerSid", "WK" + "a" * 31),
        ("/webhooks/twilio/recording-status", "RecordingStatus", "deleted"),
        ("/webhooks/twilio/call-status", "CallStatus", "hacked"),
        ("/webhooks/twilio/call-status", "SequenceNumber", "1" * 10),
        ("/webhooks/twilio/call-status", "SequenceNumber", "99999999999999999"),
        ("/webhooks/twilio/call-status", "SequenceNumber", "²"),
    ],
)
def test_each_field_read_is_checked_and_a_bad_one_changes_nothing(
    platform: Platform, services, session, path: str, field: str, value: str
) -> None:
    """Every SID kind the forms read (RE, WR, WT, WK beside CA and AC above), the statuses
    from Twilio's sets, and SequenceNumber (at most nine ASCII digits: it is stored in an
    integer column and compared) are refused with 400 on an otherwise valid form that would
    change the call (complete its recording, assign it, end it)."""
    make_user(services, "ann", Role.AGENT)
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    recording_sid = platform.simulator.recordings(call_sid)[0].sid
    forms = {
        "/webhooks/twilio/recording-status": {
            "AccountSid": ACCOUNT_SID,
            "CallSid": call_sid,
            "RecordingSid": recording_sid,
            "RecordingStatus": "completed",
            "RecordingDuration": "12",
        },
        "/webhooks/twilio/assignment": _assignment_form(call_sid),
        "/webhooks/twilio/call-status": {
            "AccountSid": ACCOUNT_SID,
            "CallSid": call_sid,
            "CallStatus": "completed",
            "SequenceNumber": "7",
        },
    }
    before = _snapshot(session)
    response = platform.post(path, {**forms[path], field: value})
    assert response.status_code == 400, response.text
    assert field in response.json()["detail"]
    assert _snapshot(session) == before


def test_the_largest_sequence_number_kept_is_nine_digits(platform: Platform, session) -> None:
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    assert platform.call_status(call_sid, "in-progress", 999_999_999).status_code == 204
    session.expire_all()
    call = session.get(Call, call_sid)
    assert (call.status, call.status_sequence) == ("in-progress", 999_999_999)
