"""Retention at a glance (issue 15 item 7): GET /api/v1/retention/overview — due in the next
7 and 30 days, overdue and why (held with its case reference, failed with its last error,
awaiting the next run), what the last run destroyed, and its time and result."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from app.audit import log as audit
from app.calls.provider import ProviderError
from app.platforms.simulator.provider import SimulatorProvider
from app.retention.run import RetentionRun
from app.runtime.services import Services
from app.storage.db import unit_of_work
from app.storage.models import utcnow
from tests.governance.conftest import LONG_AGO, People, events, seed_due
from tests.governance.search_seed import add_recording
from tests.governance.test_holds import place

URL = "/api/v1/retention/overview"


def sids(bucket: dict) -> list[str]:
    return [item["recording_sid"] for item in bucket["items"]]


def run_once(services: Services, simulator: SimulatorProvider) -> None:
    # One at a time, soonest due first: an injected fault hits the soonest.
    RetentionRun(services.sessions, simulator, concurrency=1, batch_size=1).run()


def test_due_soon_buckets_count_what_is_not_yet_destroyed(
    client: TestClient, people: People, services: Services
) -> None:
    now = utcnow()
    in_3 = add_recording(services, destroy_after=now + timedelta(days=3, hours=1))
    in_6 = add_recording(services, destroy_after=now + timedelta(days=6))
    in_20 = add_recording(services, destroy_after=now + timedelta(days=20))
    add_recording(services, destroy_after=now + timedelta(days=40))  # in neither
    add_recording(services, destroy_after=now + timedelta(days=2), destroyed_at=now)  # gone
    add_recording(services, completed=False)  # no date yet
    body = client.get(URL, headers=people.governance).json()
    week, month = body["due"]["7_days"], body["due"]["30_days"]
    assert (week["count"], sids(week)) == (2, [in_3, in_6])  # soonest first
    assert (month["count"], sids(month)) == (3, [in_3, in_6, in_20])  # includes the week
    assert week["items"][0]["destroy_in_days"] == 3
    assert body["overdue"]["count"] == 0 and body["failed"] == 0
    assert body["last_run"] is None  # no run yet


def test_overdue_says_why_and_a_failed_deletion_is_unmissable(
    client: TestClient, people: People, services: Services, simulator: SimulatorProvider
) -> None:
    [first_destroyed] = seed_due(services, simulator.platform, 1, destroy_after=LONG_AGO)
    run_once(services, simulator)  # an earlier run: not "the last run"

    [failing] = seed_due(services, simulator.platform, 1, destroy_after=LONG_AGO - timedelta(1))
    [destroyed] = seed_due(services, simulator.platform, 1, destroy_after=LONG_AGO)
    [held] = seed_due(services, simulator.platform, 1, destroy_after=LONG_AGO)
    place(client, people, held, case="CASE-77")
    with unit_of_work(services.sessions) as session:  # a third worker, still running
        audit.append(
            session,
            audit.EventType.RECORDING_DESTROYED,
            actor="system",
            recording_sid="RE" + "0" * 32,
            detail={"worker": "another-worker"},
        )
    simulator.inject_fault(
        "delete", ProviderError("platform said no", transient=True, status=500, code=20500)
    )
    run_once(services, simulator)
    waiting = add_recording(services, destroy_after=utcnow() - timedelta(hours=2))  # since

    body = client.get(URL, headers=people.admin).json()  # admin reads it too
    assert body["failed"] == 1  # top level: a failed deletion cannot be missed
    overdue = body["overdue"]
    assert overdue["count"] == 3
    assert (overdue["held"]["count"], sids(overdue["held"])) == (1, [held])
    [held_item] = overdue["held"]["items"]
    assert held_item["reason"] == "held" and held_item["case_references"] == ["CASE-77"]
    assert (overdue["failed"]["count"], sids(overdue["failed"])) == (1, [failing])
    [failed_item] = overdue["failed"]["items"]
    [event] = events(services, "recording.destroy_failed", recording_sid=failing)
    assert failed_item["reason"] == "failed"
    assert failed_item["last_error"] == {
        "failed_at": event.occurred_at.isoformat(),
        "stage": "delete",
        "error": "platform said no",
        "status": 500,
        "code": 20500,
        "sequence": event.sequence,
    }
    assert failed_item["destroy_in_days"] < -2000
    assert (overdue["awaiting_run"]["count"], sids(overdue["awaiting_run"])) == (1, [waiting])

    last = body["last_run"]
    [run_event] = events(services, "retention.run")[-1:]
    assert last["at"] == run_event.occurred_at.isoformat()
    assert last["result"] == "failed"
    assert (last["due"], last["held"], last["destroyed"], last["failed"]) == (2, 1, 1, 1)
    assert [i["recording_sid"] for i in last["destroyed_items"]] == [destroyed]
    assert first_destroyed not in str(last)


def test_the_last_error_is_the_newest_and_a_later_hold_makes_it_held(
    client: TestClient, people: People, services: Services, simulator: SimulatorProvider
) -> None:
    [sid] = seed_due(services, simulator.platform, 1)
    for message in ("first failure", "second failure"):
        simulator.inject_fault("delete", ProviderError(message, transient=True, status=503))
        run_once(services, simulator)  # each run has its own worker id, so it retries
    body = client.get(URL, headers=people.governance).json()
    assert body["failed"] == 1
    assert body["overdue"]["failed"]["items"][0]["last_error"]["error"] == "second failure"

    place(client, people, sid, case="CASE-2")
    body = client.get(URL, headers=people.governance).json()
    assert body["failed"] == 0 and sids(body["overdue"]["held"]) == [sid]

    # Once a run succeeds the failure is history: destroyed, not overdue, result ok.
    [hold] = client.get(f"/api/v1/recordings/{sid}", headers=people.governance).json()["holds"]
    released = client.delete(
        f"/api/v1/recordings/{sid}/holds/{hold['id']}", headers=people.governance
    )
    assert released.status_code == 200, released.text
    run_once(services, simulator)
    body = client.get(URL, headers=people.governance).json()
    assert body["failed"] == 0 and body["overdue"]["count"] == 0
    assert body["last_run"]["result"] == "ok"
    assert sids({"items": body["last_run"]["destroyed_items"]}) == [sid]


def test_only_governance_and_admin_see_the_overview(client: TestClient, people: People) -> None:
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=people.agent).status_code == 403
    assert client.get(URL, headers=people.supervisor).status_code == 403
    assert client.get(URL, headers=people.governance).status_code == 200
