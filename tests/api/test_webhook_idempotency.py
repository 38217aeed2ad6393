"""E3: duplicates are applied once; a late, older status never moves a call backwards."""

from __future__ import annotations

from sqlalchemy import select

from app.storage.models import AuditEvent, Call, Recording
from tests.factories import MAIN_NUMBER, Platform, new_call_sid


def _events(session, call_sid: str) -> list[str]:
    query = select(AuditEvent.type).where(AuditEvent.call_sid == call_sid)
    return list(session.scalars(query.order_by(AuditEvent.sequence)))


def test_duplicate_voice_delivery_gets_the_same_twiml_and_one_call(platform: Platform, services):
    call_sid = new_call_sid()
    first = platform.voice(call_sid, MAIN_NUMBER)
    second = platform.voice(call_sid, MAIN_NUMBER)
    assert first.status_code == second.status_code == 200
    assert first.text == second.text
    with services.sessions() as session:
        assert _events(session, call_sid).count("call.started") == 1


def test_idempotency_token_dedupes_even_with_a_different_form(platform: Platform, services):
    call_sid = new_call_sid()
    token = {"I-Twilio-Idempotency-Token": "tok-123"}
    params = {"AccountSid": "AC" + "1" * 32, "CallSid": call_sid, "To": MAIN_NUMBER}
    first = platform.post("/webhooks/twilio/voice", params, headers=token)
    again = platform.post("/webhooks/twilio/voice", {**params, "Extra": "1"}, headers=token)
    assert again.text == first.text


def test_duplicate_ivr_press_starts_one_recording(platform: Platform, services):
    call_sid = new_call_sid()
    platform.voice(call_sid, MAIN_NUMBER)
    first = platform.ivr(call_sid, 1, "1")
    second = platform.ivr(call_sid, 1, "1")
    assert first.text == second.text
    assert "<Enqueue>contact-harlow</Enqueue>" in first.text
    assert len(platform.simulator.recordings(call_sid)) == 1
    with services.sessions() as session:
        assert _events(session, call_sid).count("recording.started") == 1


def test_duplicate_status_callbacks_are_applied_once(platform: Platform, services):
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    for _ in range(3):
        assert platform.call_status(call_sid, "in-progress", 2).status_code == 204
    platform.simulator.hangup(call_sid)
    callbacks = list(platform.simulator.outbox.queue)
    platform.deliver_callbacks()
    for callback in callbacks:  # Twilio retries: the same callbacks again
        path = callback.url.removeprefix(platform.settings.public_base_url)
        platform.post(path, dict(callback.params))
    for _ in range(2):
        platform.call_status(call_sid, "completed", 3)
    with services.sessions() as session:
        events = _events(session, call_sid)
        assert events.count("call.status") == 1
        assert events.count("call.ended") == 1
        assert events.count("recording.completed") == 1
        assert events.count("recording.started") == 1


def test_late_older_call_status_is_ignored_and_logged(platform: Platform, services):
    call_sid = new_call_sid()
    platform.voice(call_sid, MAIN_NUMBER)
    platform.call_status(call_sid, "in-progress", 2)
    platform.call_status(call_sid, "completed", 3)
    platform.call_status(call_sid, "ringing", 1)  # delivered late
    platform.call_status(call_sid, "in-progress", 4)  # after the end: stale too
    with services.sessions() as session:
        call = session.get(Call, call_sid)
        assert call.status == "completed"
        assert call.ended
        events = _events(session, call_sid)
        assert events.count("call.status_ignored") == 2
        ignored = session.scalars(
            select(AuditEvent).where(
                AuditEvent.call_sid == call_sid, AuditEvent.type == "call.status_ignored"
            )
        ).all()
        assert [e.detail["status"] for e in ignored] == ["ringing", "in-progress"]


def test_out_of_order_ringing_after_in_progress(platform: Platform, services):
    call_sid = new_call_sid()
    platform.call_status(call_sid, "in-progress", 2)
    platform.call_status(call_sid, "ringing", 1)
    with services.sessions() as session:
        assert session.get(Call, call_sid).status == "in-progress"


def test_late_in_progress_recording_callback_never_reopens_a_completed_recording(
    platform: Platform, services
):
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    recording_sid = platform.simulator.recordings(call_sid)[0].sid
    in_progress = list(platform.simulator.outbox.queue)
    platform.simulator.outbox.queue.clear()
    platform.hangup(call_sid)  # completed delivered first
    for callback in in_progress:  # the in-progress callback arrives late
        platform.post(
            callback.url.removeprefix(platform.settings.public_base_url), dict(callback.params)
        )
    with services.sessions() as session:
        assert session.get(Recording, recording_sid).status == "completed"
        assert "recording.status_ignored" in _events(session, call_sid)


def test_recording_callback_for_unknown_recording_is_tracked(platform: Platform, services):
    """A recording we did not start (e.g. the fail-safe TwiML's) still gets tracked."""
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    response = platform.recording_status(call_sid, "RE" + "9" * 32, "in-progress")
    assert response.status_code == 204
    with services.sessions() as session:
        recording = session.get(Recording, "RE" + "9" * 32)
        assert recording.department == "contact-harlow"
        assert session.get(Call, call_sid).recording == "recording"
