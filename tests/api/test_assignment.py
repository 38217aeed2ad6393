"""TaskRouter's assignment callback assigns the call to the worker's person."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app.people.users import Role
from app.storage.models import AuditEvent, Call
from tests.factories import MAIN_NUMBER, Platform, make_user


def _assignment(
    platform: Platform, call_sid: str, worker: dict, reservation: str = "WR" + "1" * 32
):
    return platform.post(
        "/webhooks/twilio/assignment",
        {
            "AccountSid": "AC" + "1" * 32,
            "WorkspaceSid": "WS" + "2" * 32,
            "TaskSid": "WT" + "3" * 32,
            "ReservationSid": reservation,
            "WorkerSid": "WK" + "4" * 32,
            "TaskAttributes": json.dumps({"call_sid": call_sid, "department": "contact-harlow"}),
            "WorkerAttributes": json.dumps(worker),
        },
    )


@pytest.mark.parametrize(
    "worker",
    [{"callguard_user": "ann", "contact_uri": "client:someone"}, {"contact_uri": "client:ann"}],
    ids=["callguard_user", "contact_uri"],
)
def test_assignment_assigns_the_call(platform: Platform, services, worker) -> None:
    make_user(services, "ann", Role.AGENT)
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    response = _assignment(platform, call_sid, worker)
    assert response.status_code == 200
    instruction = response.json()
    assert instruction["instruction"] == "dequeue"
    assert instruction["to"] == worker["contact_uri"]
    assert instruction["from"] == MAIN_NUMBER
    with services.sessions() as session:
        assert session.get(Call, call_sid).agent == "ann"
        event = session.scalars(select(AuditEvent).where(AuditEvent.type == "call.assigned")).one()
        assert (event.actor, event.detail["source"]) == ("platform", "taskrouter")


def test_duplicate_assignment_answers_the_same_and_assigns_once(platform, services) -> None:
    make_user(services, "ann", Role.AGENT)
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    first = _assignment(platform, call_sid, {"callguard_user": "ann"})
    again = _assignment(platform, call_sid, {"callguard_user": "ann"})
    assert first.json() == again.json()
    with services.sessions() as session:
        assigned = session.scalars(select(AuditEvent).where(AuditEvent.type == "call.assigned"))
        assert len(list(assigned)) == 1


def test_unknown_person_still_dequeues_and_is_logged(platform: Platform, services) -> None:
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    response = _assignment(platform, call_sid, {"contact_uri": "client:nobody"})
    assert response.json()["instruction"] == "dequeue"
    with services.sessions() as session:
        assert session.get(Call, call_sid).agent is None
        assert (
            session.scalars(
                select(AuditEvent).where(AuditEvent.type == "call.assignment_unmatched")
            )
            .one()
            .detail["worker"]
            == "nobody"
        )


def test_assignment_needs_a_signature(platform: Platform) -> None:
    response = platform.client.post(
        "/webhooks/twilio/assignment",
        data={"ReservationSid": "WR" + "1" * 32, "TaskAttributes": "{}"},
    )
    assert response.status_code == 403


def test_bad_task_attributes_are_a_400(platform: Platform) -> None:
    response = platform.post(
        "/webhooks/twilio/assignment",
        {"ReservationSid": "WR" + "9" * 32, "TaskAttributes": "not json"},
    )
    assert response.status_code == 400


def test_assigned_agent_can_then_act_on_the_call(platform: Platform, services, client) -> None:
    token = make_user(services, "ann", Role.AGENT)
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/calls/{call_sid}", headers=headers).status_code == 404
    _assignment(platform, call_sid, {"callguard_user": "ann"})
    assert client.get(f"/api/v1/calls/{call_sid}", headers=headers).status_code == 200
    paused = client.post(f"/api/v1/calls/{call_sid}/payment/start", headers=headers)
    assert paused.json()["confirmed"] is True
