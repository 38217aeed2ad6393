"""People's actions on a Connect call (P2-P4, P7): pause for payment is a suspend confirmed
by Connect (else NOT paused), payment end a resume, an opt-out with `stop` and the
non-recorded line a stop, each on every recording contact of the call; transfers are made
in the agent's CCP, so a department transfer through the API is refused saying so, and the
non-recorded line stops recording at once and says what the supervisor must do now."""

from __future__ import annotations

from app.calls.controls import PAUSE_NOT_CONFIRMED
from app.people.users import Role
from tests.connect_fake.callguard import ConnectCallguard
from tests.factories import bearer, make_user


def _post(cg: ConnectCallguard, call_sid: str, action: str, token: str, **body: object):
    return cg.client.post(
        f"/api/v1/calls/{call_sid}/{action}", json=body or None, headers=bearer(token)
    )


def test_pause_for_payment_is_a_suspend_confirmed_by_connect_then_a_resume(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="2")
    token = make_user(cg.services, "sue", Role.SUPERVISOR)
    paused = _post(cg, contact.id, "payment/start", token)
    assert paused.status_code == 200, paused.text
    assert (paused.json()["confirmed"], paused.json()["recording"]) == (True, "paused")
    assert cg.recording_state(contact) == "SUSPENDED"
    [suspend] = cg.server.requests_for("SuspendContactRecording")
    assert suspend.params == {
        "InstanceId": cg.instance,
        "ContactId": contact.id,
        "InitialContactId": contact.id,
    }
    resumed = _post(cg, contact.id, "payment/end", token)
    assert resumed.json()["recording"] == "recording"
    assert cg.recording_state(contact) == "RECORDING"


def test_a_suspend_connect_does_not_confirm_is_not_paused(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="1")
    token = make_user(cg.services, "sue", Role.SUPERVISOR)
    cg.server.inject("SuspendContactRecording", "InternalServiceException", times=4)
    refused = _post(cg, contact.id, "payment/start", token)
    assert refused.status_code == 503
    assert refused.json() == {
        "error": "pause_not_confirmed",
        "detail": PAUSE_NOT_CONFIRMED,
        "confirmed": False,
    }
    assert cg.recording_state(contact) == "RECORDING"
    assert "payment.pause_unconfirmed" in cg.audit_types(contact.id)


def test_payment_on_a_transferred_call_pauses_the_contact_now_recording(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    first, _ = cg.queue_call(digits="1")
    moved = cg.transfer(first, "revenues-and-benefits")
    cg.answer(moved)
    token = make_user(cg.services, "sue", Role.SUPERVISOR)
    assert _post(cg, first.id, "payment/start", token).json()["confirmed"] is True
    assert cg.recording_state(moved) == "SUSPENDED"
    assert cg.recording_state(first) == "STOPPED"  # its department's, stopped at transfer


def test_a_pause_after_the_contact_ended_at_connect_is_confirmed(
    connect_callguard: ConnectCallguard,
) -> None:
    """Connect ended the contact (its event not yet here): nothing more is recorded."""
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="1")
    cg.server.disconnect_contact(cg.instance, contact.id, written=False)
    token = make_user(cg.services, "sue", Role.SUPERVISOR)
    paused = _post(cg, contact.id, "payment/start", token)
    assert paused.status_code == 200 and paused.json()["confirmed"] is True
    cg.server.expect_violations("InvalidRequestException")


def test_an_opt_out_with_stop_stops_the_recording(connect_callguard: ConnectCallguard) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="1")  # contact-harlow: stop
    token = make_user(cg.services, "sue", Role.SUPERVISOR)
    answer = _post(cg, contact.id, "opt-out", token).json()
    assert (answer["action"], answer["recording"]) == ("stopped", "off")
    assert cg.recording_state(contact) == "STOPPED"
    # Payment end never restarts it (and StartContactRecording could not: one-time).
    _post(cg, contact.id, "payment/start", token)
    assert _post(cg, contact.id, "payment/end", token).json()["recording"] == "off"
    assert len(cg.server.requests_for("StartContactRecording")) == 1


def test_an_opt_out_with_advise_email_keeps_recording(connect_callguard: ConnectCallguard) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="2")  # revenues-and-benefits: advise_email
    token = make_user(cg.services, "sue", Role.SUPERVISOR)
    answer = _post(cg, contact.id, "opt-out", token).json()
    assert answer["action"] == "advise_email" and "@" in answer["email"]
    assert cg.recording_state(contact) == "RECORDING"


def test_the_non_recorded_line_stops_at_once_and_says_what_to_do_in_the_ccp(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="2")
    agent = make_user(cg.services, "ann", Role.AGENT)
    supervisor = make_user(cg.services, "sue", Role.SUPERVISOR)
    body = {"non_recorded_line": True, "reason": "caller distressed"}
    assert _post(cg, contact.id, "transfer", agent, **body).status_code in (403, 404)
    moved = _post(cg, contact.id, "transfer", supervisor, **body)
    assert moved.status_code == 200, moved.text
    answer = moved.json()
    assert (answer["non_recorded_line"], answer["recording"]) == (True, "off")
    assert "Contact Control Panel (CCP)" in answer["instruction"]
    assert "+441632960699" in answer["instruction"]  # the policy's non-recorded line
    assert cg.recording_state(contact) == "STOPPED"
    assert "transfer.non_recorded_line" in cg.audit_types(contact.id)


def test_a_department_transfer_through_the_api_is_refused_naming_the_ccp(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="1")
    token = make_user(cg.services, "sue", Role.SUPERVISOR)
    refused = _post(cg, contact.id, "transfer", token, department="housing-management")
    assert refused.status_code == 409
    assert refused.json()["error"] == "transfer_unsupported"
    assert "Contact Control Panel (CCP)" in refused.json()["detail"]
    call = cg.call_row(contact.id)
    assert (call.department, call.recording) == ("contact-harlow", "recording")
    assert cg.recording_state(contact) == "RECORDING"
    assert "transfer.failed" in cg.audit_types(contact.id)


def test_the_payment_line_through_the_api_is_refused_and_the_pause_undone(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="2")
    token = make_user(cg.services, "sue", Role.SUPERVISOR)
    refused = _post(cg, contact.id, "transfer", token, payment_line=True)
    assert refused.status_code == 409 and "payment line" in refused.json()["detail"]
    call = cg.call_row(contact.id)
    assert (call.payment_in_progress, call.recording) == (False, "recording")
    assert cg.recording_state(contact) == "RECORDING"
