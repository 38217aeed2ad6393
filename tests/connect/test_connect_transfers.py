"""A transfer made in the agent's CCP reaches callguard as a TRANSFER (or QUEUE_TRANSFER)
contact through the flow: it is the next segment of the call, decided for the department
its queue names (P5): a recorded department gets a new recording of that contact, owned by
it; an unlisted one, a call on the non-recorded line or opted out with `stop`, nothing."""

from __future__ import annotations

import pytest

from app.people.users import Role
from tests.connect_fake.callguard import ConnectCallguard
from tests.factories import bearer, make_user


def test_a_transfer_to_a_recorded_department_is_a_new_recording_owned_by_it(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    first, _ = cg.queue_call(digits="1")  # contact-harlow, recorded
    moved = cg.transfer(first, "revenues-and-benefits")
    answer = cg.answer(moved)
    assert answer == {
        "next": "queue",
        "prompt": "",
        "department": "revenues-and-benefits",
        "queue": "revenues-and-benefits",
        "queue_arn": cg.queues["revenues-and-benefits"],
        "recorded": "true",
    }
    starts = cg.server.requests_for("StartContactRecording")
    assert [s.params["ContactId"] for s in starts] == [first.id, moved.id]
    assert starts[1].params["InitialContactId"] == first.id  # the chain's call
    # The first contact's recording belongs to Contact Harlow: stopped, not carried over.
    assert cg.recording_state(first) == "STOPPED"
    assert cg.recording_state(moved) == "RECORDING"
    recordings = {r.recording_sid: r for r in cg.recordings(first.id)}
    assert recordings[first.id].department == "contact-harlow"
    assert recordings[moved.id].department == "revenues-and-benefits"
    assert recordings[moved.id].retention == "P2Y130D"
    call = cg.call_row(first.id)
    assert (call.department, call.segment_sid, call.recording) == (
        "revenues-and-benefits",
        moved.id,
        "recording",
    )
    assert "transfer.completed" in cg.audit_types(first.id)


@pytest.mark.parametrize("method", ["TRANSFER", "QUEUE_TRANSFER"])
def test_a_transfer_to_an_unlisted_department_stops_recording(
    connect_callguard: ConnectCallguard, method: str
) -> None:
    cg = connect_callguard
    first, _ = cg.queue_call(digits="1")
    moved = cg.transfer(first, "planning", method)
    answer = cg.answer(moved)
    assert (answer["department"], answer["recorded"]) == ("planning", "false")
    assert [s.params["ContactId"] for s in cg.server.requests_for("StartContactRecording")] == [
        first.id
    ]
    assert cg.recording_state(first) == "STOPPED"
    assert cg.call_row(first.id).reasons == ["department_not_recorded"]


def test_a_queue_no_department_names_is_not_recorded(connect_callguard: ConnectCallguard) -> None:
    cg = connect_callguard
    first, _ = cg.queue_call(digits="1")
    cg.server.add_queue(cg.instance, "Overflow Team")
    moved = cg.transfer(first, "Overflow Team")
    answer = cg.answer(moved)
    assert (answer["department"], answer["queue"], answer["recorded"]) == (
        "",
        "callguard-fallback",
        "false",
    )
    assert cg.recording_state(moved) is None


def test_after_an_opt_out_with_stop_a_transfer_records_nothing(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    first, answer = cg.queue_call(digits="91")  # opt out, then contact-harlow (stop)
    assert answer["recorded"] == "false"
    moved = cg.transfer(first, "revenues-and-benefits")  # advise_email, but stop stays
    assert cg.answer(moved)["recorded"] == "false"
    assert cg.server.requests_for("StartContactRecording") == []
    assert cg.call_row(first.id).reasons[0] == "opted_out_stop"


def test_on_the_non_recorded_line_a_transfer_records_nothing(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    first, _ = cg.queue_call(digits="1")
    token = make_user(cg.services, "sue", Role.SUPERVISOR)
    moved_off = cg.client.post(
        f"/api/v1/calls/{first.id}/transfer",
        json={"non_recorded_line": True, "reason": "caller distressed"},
        headers=bearer(token),
    )
    assert moved_off.status_code == 200, moved_off.text
    moved = cg.transfer(first, "housing-management")
    assert cg.answer(moved)["recorded"] == "false"
    assert cg.recording_state(moved) is None


def test_a_transfer_of_a_call_callguard_never_answered_is_not_recorded(
    connect_callguard: ConnectCallguard,
) -> None:
    """No notice was played through callguard, so nothing may be recorded."""
    cg = connect_callguard
    stranger = cg.new_call()  # never went through callguard's flow
    moved = cg.transfer(stranger, "contact-harlow")
    answer = cg.answer(moved)
    assert (answer["department"], answer["recorded"]) == ("contact-harlow", "false")
    assert cg.server.requests_for("StartContactRecording") == []
    assert cg.call_row(stranger.id).reasons == ["not_yet_queued"]


def test_a_repeated_transfer_call_is_answered_the_same_and_applied_once(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    first, _ = cg.queue_call(digits="1")
    moved = cg.transfer(first, "housing-management")
    once = cg.answer(moved)
    assert cg.answer(moved) == once
    assert cg.audit_types(first.id).count("transfer.completed") == 1
    assert len(cg.server.requests_for("StartContactRecording")) == 2
