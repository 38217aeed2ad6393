"""R2, R7: legal holds (many per recording, by API and CLI) and the task of telling the
caller, closed only with how and when they were told."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import DEFAULT_CALLER
from tests.governance.conftest import People, events, recording


def place(client: TestClient, people: People, sid: str, case: str = "CASE-1") -> dict:
    response = client.post(
        f"/api/v1/recordings/{sid}/holds",
        json={"case_reference": case, "reason": "evidence in a complaint investigation"},
        headers=people.governance,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_holds_are_placed_listed_and_released(
    client: TestClient, services, people: People, completed: tuple[str, str]
) -> None:
    call_sid, sid = completed
    first = place(client, people, sid, "CASE-1")
    place(client, people, sid, "CASE-2")
    assert first["placed_by"] == "governance-1"
    assert first["active"] is True
    assert recording(services, sid).active_holds == 2

    shown = client.get(f"/api/v1/recordings/{sid}", headers=people.governance).json()
    assert [h["case_reference"] for h in shown["holds"]] == ["CASE-1", "CASE-2"]

    released = client.delete(
        f"/api/v1/recordings/{sid}/holds/{first['id']}", headers=people.governance
    )
    assert released.status_code == 200
    assert released.json()["released_by"] == "governance-1"
    assert released.json()["released_at"] is not None
    assert recording(services, sid).active_holds == 1
    again = client.delete(
        f"/api/v1/recordings/{sid}/holds/{first['id']}", headers=people.governance
    )
    assert again.status_code == 409

    held = client.get("/api/v1/recordings?held=true", headers=people.governance).json()["items"]
    assert [r["recording_sid"] for r in held] == [sid]
    assert client.get("/api/v1/recordings?held=false", headers=people.admin).json()["items"] == []

    placed = events(services, "hold.placed", recording_sid=sid)
    assert [e.detail["case_reference"] for e in placed] == ["CASE-1", "CASE-2"]
    assert all(e.call_sid == call_sid and e.actor == "governance-1" for e in placed)
    [gone] = events(services, "hold.released", recording_sid=sid)
    assert gone.detail == {"hold_id": first["id"], "case_reference": "CASE-1", "active_holds": 1}


def test_only_governance_places_holds_and_unknowns_are_404(
    client: TestClient, people: People, completed: tuple[str, str]
) -> None:
    _call, sid = completed
    body = {"case_reference": "C", "reason": "r"}
    for who in (people.supervisor, people.agent, people.admin):
        assert (
            client.post(f"/api/v1/recordings/{sid}/holds", json=body, headers=who).status_code
            == 403
        )
    assert (
        client.post(
            "/api/v1/recordings/RE404/holds", json=body, headers=people.governance
        ).status_code
        == 404
    )
    missing_reason = client.post(
        f"/api/v1/recordings/{sid}/holds", json={"case_reference": "C"}, headers=people.governance
    )
    assert missing_reason.status_code == 422
    assert "reason" in missing_reason.json()["detail"]
    hold = place(client, people, sid)
    wrong = client.delete(f"/api/v1/recordings/RE404/holds/{hold['id']}", headers=people.governance)
    assert wrong.status_code == 404


def test_a_hold_creates_a_notification_closed_only_with_how_and_when(
    client: TestClient, services, people: People, completed: tuple[str, str]
) -> None:
    call_sid, sid = completed
    hold = place(client, people, sid)
    pending = client.get("/api/v1/notifications?pending=true", headers=people.governance).json()
    [task] = pending["items"]
    assert task["id"] == hold["notification_id"]
    assert (task["call_sid"], task["recording_sid"], task["hold_id"]) == (call_sid, sid, hold["id"])
    assert task["caller_number"] == DEFAULT_CALLER  # names the caller to tell
    assert task["pending"] is True

    url = f"/api/v1/notifications/{task['id']}/done"
    assert client.post(url, json={"note": "told"}, headers=people.governance).status_code == 422
    assert client.post(url, json={"method": " "}, headers=people.governance).status_code == 422
    future = client.post(
        url, json={"method": "letter", "told_at": "2999-01-01T00:00:00Z"}, headers=people.governance
    )
    assert future.status_code == 422
    assert client.post(url, json={"method": "letter"}, headers=people.supervisor).status_code == 403

    done = client.post(
        url,
        json={
            "method": "letter",
            "note": "sent to the address on file",
            "told_at": "2024-03-01T09:00:00Z",
        },
        headers=people.governance,
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["method"], body["told_at"], body["done_by"]) == (
        "letter",
        "2024-03-01T09:00:00+00:00",
        "governance-1",
    )
    assert body["done_at"] is not None and body["pending"] is False
    assert client.post(url, json={"method": "phone"}, headers=people.governance).status_code == 409
    assert client.get("/api/v1/notifications?pending=true", headers=people.governance).json() == {
        "items": []
    }
    closed = client.get("/api/v1/notifications?pending=false", headers=people.governance).json()
    assert [n["id"] for n in closed["items"]] == [task["id"]]
    [event] = events(services, "notification.done")
    assert event.detail["method"] == "letter"
    assert event.detail["told_at"] == "2024-03-01T09:00:00+00:00"
    assert event.recording_sid == sid


def test_holds_from_the_cli(run_cli, services, completed: tuple[str, str]) -> None:
    _call, sid = completed
    placed = run_cli("holds", "place", sid, "--case", "POL-7", "--reason", "police request")
    assert placed.exit_code == 0, placed.output
    assert "placed" in placed.output and "POL-7" in placed.output
    with services.sessions() as session:
        from app.storage.models import LegalHold

        [hold] = session.query(LegalHold).all()
    assert (hold.placed_by, hold.case_reference, hold.reason) == ("cli", "POL-7", "police request")
    assert recording(services, sid).active_holds == 1

    released = run_cli("holds", "release", str(hold.id))
    assert released.exit_code == 0, released.output
    assert recording(services, sid).active_holds == 0
    twice = run_cli("holds", "release", str(hold.id))
    assert twice.exit_code == 1
    assert "already released" in twice.output
    assert run_cli("holds", "place", "RE404", "--case", "X", "--reason", "y").exit_code == 1
