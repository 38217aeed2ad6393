"""POST /webhooks/connect/flow (CONTRACT.md, Amazon Connect): the token, routing by dialled
number and menu, the notice and opt-out before a recorded department's queue, recording
asked of Connect before the `queue` answer, the flat answer with the queue's ARN, and
repeated calls answered the same."""

from __future__ import annotations

import json
import time

import pytest

from app.routing.prompts import OPT_OUT_NOTED
from tests.connect_fake.callguard import FALLBACK, MAIN_NUMBER, TOKEN, ConnectCallguard

KEYS = {"next", "prompt", "department", "queue", "queue_arn", "recorded"}
CONTACT_HARLOW = "+441632960010"
PLANNING = "+441632960070"


def test_the_main_number_gets_the_notice_and_menu_then_a_recorded_queue(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact = cg.new_call(MAIN_NUMBER)
    menu = cg.answer(contact)
    assert set(menu) == KEYS | {"menu_step"} and all(isinstance(v, str) for v in menu.values())
    assert (menu["next"], menu["menu_step"], menu["recorded"]) == ("menu", "1", "false")
    assert "may be recorded" in menu["prompt"] and "press 9" in menu["prompt"]
    assert "For Contact Harlow, press 1." in menu["prompt"]
    assert cg.server.requests_for("StartContactRecording") == []  # nothing before the queue

    started = time.monotonic()
    queued = cg.answer(contact, "digits", "1")
    # Well inside the forwarder's 3 s (Connect's own limit is 8 s), Connect's start included.
    assert time.monotonic() - started < 3
    assert queued == {
        "next": "queue",
        "prompt": "",
        "department": "contact-harlow",
        "queue": "contact-harlow",
        "queue_arn": cg.queues["contact-harlow"],
        "recorded": "true",
    }
    # Asked of Connect before the answer: it records from the moment the agent joins.
    [start] = cg.server.requests_for("StartContactRecording")
    assert start.params["ContactId"] == start.params["InitialContactId"] == contact.id
    assert start.params["VoiceRecordingConfiguration"] == {"VoiceRecordingTrack": "ALL"}
    assert cg.recording_state(contact) == "RECORDING"
    call = cg.call_row(contact.id)
    assert (call.department, call.recording, call.desired) == (
        "contact-harlow",
        "recording",
        "recording",
    )
    [recording] = cg.recordings(contact.id)
    assert (recording.recording_sid, recording.segment_sid) == (contact.id, contact.id)
    assert recording.department == "contact-harlow"


def test_a_recorded_departments_own_number_gets_the_notice_first(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact = cg.new_call(CONTACT_HARLOW)
    notice = cg.answer(contact)
    assert notice["next"] == "menu" and "press 9" in notice["prompt"]
    assert "For Contact Harlow" not in notice["prompt"]  # no menu: the number chose
    queued = cg.answer(contact, "digits", "")  # nothing pressed: on to the queue
    assert (queued["next"], queued["queue"], queued["recorded"]) == (
        "queue",
        "contact-harlow",
        "true",
    )


def test_an_unrecorded_department_is_queued_at_once_and_never_recorded(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact = cg.new_call(PLANNING)
    answer = cg.answer(contact)
    assert (answer["next"], answer["queue"], answer["recorded"]) == ("queue", "planning", "false")
    assert answer["queue_arn"] == cg.queues["planning"]
    assert cg.server.requests_for("StartContactRecording") == []
    assert cg.call_row(contact.id).reasons == ["department_not_recorded"]


def test_opting_out_in_the_menu_means_no_recording(connect_callguard: ConnectCallguard) -> None:
    cg = connect_callguard
    contact = cg.new_call(MAIN_NUMBER)
    cg.answer(contact)
    noted = cg.answer(contact, "digits", "9")
    assert noted["next"] == "menu" and noted["prompt"].startswith(OPT_OUT_NOTED)
    assert noted["menu_step"] == "2"
    queued = cg.answer(contact, "digits", "1")
    assert (queued["queue"], queued["recorded"]) == ("contact-harlow", "false")
    assert queued["prompt"] == "Thank you. This call will not be recorded."
    assert cg.server.requests_for("StartContactRecording") == []
    assert "opt_out.requested" in cg.audit_types(contact.id)


def test_a_repeated_call_gets_the_same_answer_and_is_applied_once(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact = cg.new_call(MAIN_NUMBER)
    first = cg.flow(contact, "arrive")
    again = cg.flow(contact, "arrive")
    assert again.json() == first.json()
    pressed = cg.flow(contact, "digits", "1", "1")
    repeated = cg.flow(contact, "digits", "1", "1")
    assert repeated.json() == pressed.json()
    types = cg.audit_types(contact.id)
    assert types.count("call.started") == 1 and types.count("call.queued") == 1
    assert len(cg.server.requests_for("StartContactRecording")) == 1


def test_a_flow_without_menu_step_answers_the_calls_current_step(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact = cg.new_call(MAIN_NUMBER)
    cg.flow(contact, "arrive")
    assert cg.flow(contact, "digits", "0").json()["menu_step"] == "2"  # no choice: again
    queued = cg.flow(contact, "digits", "4").json()
    assert (queued["next"], queued["queue"]) == ("queue", "housing-management")


def test_queue_arns_are_looked_up_once_and_again_for_a_new_name(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    for _ in range(3):
        cg.answer(cg.new_call(PLANNING))
    assert len(cg.server.requests_for("ListQueues")) == 1
    assert cg.connect.queues.arn("no-such-queue") == ""  # asked again, at most so often
    assert len(cg.server.requests_for("ListQueues")) == 1  # within MIN_REFRESH of the last
    cg.connect.queues.min_refresh = 0
    made = cg.server.add_queue(cg.instance, "new-queue")
    assert cg.connect.queues.arn("new-queue") == made.arn


@pytest.mark.parametrize(
    ("headers", "status"), [({}, 401), ({"X-Callguard-Token": "x" * len(TOKEN)}, 403)]
)
def test_no_or_a_wrong_token_is_refused_and_nothing_is_stored(
    connect_callguard: ConnectCallguard, headers: dict[str, str], status: int
) -> None:
    cg = connect_callguard
    contact = cg.new_call(MAIN_NUMBER)
    body = cg.emulator.flow_event(contact, "arrive")
    response = cg.client.post("/webhooks/connect/flow", json=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] in ("unauthorized", "forbidden")
    with cg.services.sessions() as session:
        from app.storage.models import Call

        assert session.get(Call, contact.id) is None


def _mangled(cg: ConnectCallguard, change: str) -> object:
    contact = cg.new_call(MAIN_NUMBER)
    event = cg.emulator.flow_event(contact, "arrive")
    data = event["Details"]["ContactData"]
    match change:
        case "contact id":
            data["ContactId"] = "CA" + "1" * 32
        case "instance":
            data["InstanceARN"] = data["InstanceARN"][:-4] + "ffff"
        case "method":
            data["InitiationMethod"] = "CARRIER_PIGEON"
        case "chat":
            data["Channel"] = "CHAT"
        case "monitor":
            data["InitiationMethod"] = "MONITOR"
        case "step":
            event["Details"]["Parameters"] = {"step": "hangup"}
        case "digits":
            event["Details"]["Parameters"] = {"step": "digits", "digits": "1<script>"}
        case "menu step":
            event["Details"]["Parameters"] = {"step": "digits", "digits": "1", "menu_step": "-1"}
        case "name":
            event["Name"] = "SomethingElse"
        case "details":
            event["Details"] = ["not", "an", "object"]
    return event


@pytest.mark.parametrize(
    "change",
    [
        "contact id",
        "instance",
        "method",
        "chat",
        "monitor",
        "step",
        "digits",
        "menu step",
        "name",
        "details",
    ],
)
def test_a_payload_connect_would_not_send_is_refused_and_changes_nothing(
    connect_callguard: ConnectCallguard, change: str
) -> None:
    cg = connect_callguard
    body = _mangled(cg, change)
    response = cg.client.post(
        "/webhooks/connect/flow", json=body, headers={"X-Callguard-Token": TOKEN}
    )
    assert response.status_code == 400, response.text
    with cg.services.sessions() as session:
        from app.storage.models import AuditEvent, Call

        assert session.query(Call).count() == 0
        assert session.query(AuditEvent).filter(AuditEvent.call_sid.is_not(None)).count() == 0


def test_a_body_that_is_not_json_is_refused(connect_callguard: ConnectCallguard) -> None:
    response = connect_callguard.client.post(
        "/webhooks/connect/flow",
        content=b"{not json",
        headers={"X-Callguard-Token": TOKEN, "Content-Type": "application/json"},
    )
    assert response.status_code == 400


def test_the_fail_safe_when_no_valid_policy_is_active(connect_callguard: ConnectCallguard) -> None:
    from tests.api.test_fail_safe import _break_the_active_policy

    cg = connect_callguard
    _break_the_active_policy(cg.services)
    answer = cg.answer(cg.new_call(MAIN_NUMBER))
    assert answer == {
        "next": "queue",
        "prompt": answer["prompt"],
        "department": "",
        "queue": FALLBACK,
        "queue_arn": cg.queues[FALLBACK],
        "recorded": "false",
    }
    assert json.dumps(answer).isascii()
