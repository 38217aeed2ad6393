"""POST /webhooks/connect/events: EventBridge's contact events, delivered at least once and
in any order (E3): applied once per event id, a contact never moved backwards, the agent
assigned on CONNECTED_TO_AGENT (by their Connect login), and the call ended only when its
last contact has disconnected (CONTRACT.md's end rule)."""

from __future__ import annotations

import random

import pytest

from app.people.users import Role
from app.platforms.connect.emulate import Contact
from tests.connect_fake.callguard import TOKEN, ConnectCallguard
from tests.factories import make_user

LIFE = ["INITIATED", "CONNECTED_TO_SYSTEM", "QUEUED", "CONNECTED_TO_AGENT", "DISCONNECTED"]


def _events(cg: ConnectCallguard, contact: Contact, agent: str | None = None) -> list[dict]:
    return [
        cg.emulator.contact_event(
            contact, kind, agent_arn=agent if kind == "CONNECTED_TO_AGENT" else None
        )
        for kind in LIFE
    ]


def _deliver(cg: ConnectCallguard, event: dict) -> None:
    response = cg.emulator.deliver(event)
    assert response.status_code == 204, response.text


def test_a_contacts_life_assigns_its_agent_and_ends_the_call(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    make_user(cg.services, "ann", Role.AGENT)
    contact, _ = cg.queue_call(digits="1")
    for event in _events(cg, contact, cg.agent("ann"))[:-1]:
        _deliver(cg, event)
    call = cg.call_row(contact.id)
    assert (call.agent, call.ended, call.status) == ("ann", False, "CONNECTED_TO_AGENT")
    cg.hang_up(contact)
    cg.event(contact, "DISCONNECTED")
    call = cg.call_row(contact.id)
    assert (call.ended, call.desired, call.recording) == (True, "off", "off")
    assert call.reasons == ["call_ended"]
    [segment] = cg.segments(contact.id).values()
    assert (segment.status, segment.ended) == ("DISCONNECTED", True)
    types = cg.audit_types(contact.id)
    assert types.count("call.status") == 5 and types.count("call.ended") == 1
    assert "call.assigned" in types


def test_an_agent_callguard_does_not_know_is_logged_and_nobody_assigned(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="1")
    cg.event(contact, "CONNECTED_TO_AGENT", agent_arn=cg.agent("temp.worker"))
    assert cg.call_row(contact.id).agent is None
    assert "call.assignment_unmatched" in cg.audit_types(contact.id)


def test_an_event_delivered_again_is_applied_once(connect_callguard: ConnectCallguard) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="1")
    queued = cg.emulator.contact_event(contact, "QUEUED")
    for _ in range(3):
        _deliver(cg, queued)
    types = cg.audit_types(contact.id)
    assert types.count("call.status") == 1 and "call.status_ignored" not in types


@pytest.mark.parametrize("seed", range(6))
def test_shuffled_events_never_move_a_contact_backwards(
    connect_callguard: ConnectCallguard, seed: int
) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="1")
    cg.hang_up(contact)
    events = _events(cg, contact) * 2  # every one delivered twice
    random.Random(seed).shuffle(events)
    for event in events:
        _deliver(cg, event)
    call = cg.call_row(contact.id)
    assert call.ended and call.desired == "off"
    [segment] = cg.segments(contact.id).values()
    assert (segment.status, segment.ended) == ("DISCONNECTED", True)
    types = cg.audit_types(contact.id)
    # Each distinct event applied or recorded stale exactly once.
    assert types.count("call.status") + types.count("call.status_ignored") == len(LIFE)
    assert types.count("call.ended") == 1
    [recording] = cg.recordings(contact.id)
    assert recording.completed_at is not None  # found once its contact ended


def test_the_call_lives_on_while_a_transferred_contact_is_known(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    first, _ = cg.queue_call(digits="1")
    moved = cg.transfer(first, "housing-management")
    cg.answer(moved)  # known from the flow
    cg.event(first, "DISCONNECTED")
    assert not cg.call_row(first.id).ended
    cg.event(moved, "CONNECTED_TO_AGENT")
    cg.event(moved, "DISCONNECTED")
    call = cg.call_row(first.id)
    assert call.ended and call.status == "DISCONNECTED"


def test_a_successor_connect_describes_keeps_the_call_alive(
    connect_callguard: ConnectCallguard,
) -> None:
    """The transfer's flow call and events have not come yet; DescribeContact of the
    ended contact names it (NextContacts)."""
    cg = connect_callguard
    first, _ = cg.queue_call(digits="1")
    moved = cg.transfer(first, "housing-management")
    cg.hang_up(first)
    cg.event(first, "DISCONNECTED")
    assert not cg.call_row(first.id).ended
    assert moved.id in cg.segments(first.id)
    assert cg.answer(moved)["recorded"] == "true"  # then it arrives, and is decided
    cg.event(moved, "DISCONNECTED")
    assert cg.call_row(first.id).ended


def test_a_later_contact_of_an_ended_chain_is_still_applied(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    first, _ = cg.queue_call(digits="1")
    moved = cg.transfer(first, "planning", "QUEUE_TRANSFER")  # no NextContacts for these
    cg.event(first, "DISCONNECTED")
    assert cg.call_row(first.id).ended
    cg.event(moved, "INITIATED")
    call = cg.call_row(first.id)
    assert not call.ended  # the caller is still there
    assert cg.answer(moved)["department"] == "planning"
    cg.event(moved, "DISCONNECTED")
    assert cg.call_row(first.id).ended


def test_monitor_contacts_unknown_types_and_other_channels_are_accepted_and_ignored(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="1")
    before = cg.audit_types(contact.id)
    monitor = Contact("0f1e2d3c-4b5a-4697-8877-665544332211", contact.id, "MONITOR", contact.id)
    cg.event(monitor, "DISCONNECTED")
    cg.event(contact, "CONTACT_DATA_UPDATED")
    cg.event(contact, "SOME_FUTURE_TYPE")
    chat = cg.emulator.contact_event(contact, "DISCONNECTED")
    chat["detail"]["channel"] = "CHAT"
    chat["detail"]["somethingNew"] = {"nested": True}
    _deliver(cg, chat)
    assert cg.audit_types(contact.id) == before
    assert not cg.call_row(contact.id).ended


@pytest.mark.parametrize(
    "change",
    ["id", "detail-type", "instance", "contact", "method", "agent", "event type", "detail"],
)
def test_an_event_connect_would_not_send_is_refused_and_changes_nothing(
    connect_callguard: ConnectCallguard, change: str
) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="1")
    before = cg.audit_types(contact.id)
    event = cg.emulator.contact_event(contact, "CONNECTED_TO_AGENT", agent_arn=cg.agent("ann"))
    detail = event["detail"]
    match change:
        case "id":
            event["id"] = "1; DROP TABLE calls"
        case "detail-type":
            event["detail-type"] = "AWS API Call via CloudTrail"
        case "instance":
            detail["instanceArn"] = detail["instanceArn"][:-4] + "ffff"
        case "contact":
            detail["contactId"] = "not-a-contact"
        case "method":
            detail["initiationMethod"] = "TELEPATHY"
        case "agent":
            detail["agentInfo"]["agentArn"] = "arn:aws:iam::123456789012:user/ann"
        case "event type":
            detail["eventType"] = "queued; rm -rf"
        case "detail":
            event["detail"] = "DISCONNECTED"
    response = cg.emulator.deliver(event)
    assert response.status_code == 400, response.text
    assert cg.audit_types(contact.id) == before


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrong" * 8, 403)])
def test_events_need_the_token(
    connect_callguard: ConnectCallguard, token: str | None, status: int
) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="1")
    event = cg.emulator.contact_event(contact, "DISCONNECTED")
    headers = {"X-Callguard-Token": token} if token else {}
    assert cg.client.post("/webhooks/connect/events", json=event, headers=headers).status_code == (
        status
    )
    assert not cg.call_row(contact.id).ended
    assert TOKEN not in str(headers)
