"""R5: everything held for a phone number, by API and CLI, whatever way it is written;
withheld numbers never match; the export is logged without the number."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.factories import DEFAULT_CALLER, Platform
from tests.governance.conftest import People, completed_call, events
from tests.governance.test_holds import place


def test_everything_held_for_a_number_in_either_form(
    client: TestClient, services, platform: Platform, people: People
) -> None:
    mine, recording_sid = completed_call(platform, caller="+447700900123")
    second, _ = completed_call(platform, caller="07700 900123")
    completed_call(platform, caller="+447700900999")  # somebody else
    hold = place(client, people, recording_sid)
    client.post(
        f"/api/v1/recordings/{recording_sid}/access",
        json={"purpose": "subject_access"},
        headers=people.governance,
    )
    client.post(
        f"/api/v1/recordings/{recording_sid}/disclosures",
        json={"recipient": "Ombudsman", "agreement_reference": "DSA-3"},
        headers=people.governance,
    )
    for asked in ("07700 900123", "+447700900123", "+44 7700 900123"):
        response = client.get(
            "/api/v1/subject-access", params={"phone": asked}, headers=people.governance
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["phone"] == DEFAULT_CALLER
        assert [c["call_sid"] for c in body["calls"]] == [mine, second]
    call = body["calls"][0]
    assert call["caller_number"] == DEFAULT_CALLER
    [recording] = call["recordings"]
    assert recording["recording_sid"] == recording_sid
    assert [h["id"] for h in recording["holds"]] == [hold["id"]]
    assert [a["purpose"] for a in recording["accesses"]] == ["subject_access"]
    assert [d["recipient"] for d in recording["disclosures"]] == ["Ombudsman"]
    assert [n["hold_id"] for n in call["notifications"]] == [hold["id"]]
    types = [e["type"] for e in call["events"]]
    assert {"call.started", "recording.completed", "hold.placed", "recording.accessed"} <= set(
        types
    )
    assert all(e["call_sid"] == mine for e in call["events"])

    exports = events(services, "subject_access.exported")
    assert len(exports) == 3
    assert exports[0].actor == "governance-1"
    assert exports[0].detail["calls"] == [mine, second]
    assert "7700900123" not in json.dumps([e.detail for e in exports])

    assert (
        client.get(
            "/api/v1/subject-access", params={"phone": DEFAULT_CALLER}, headers=people.admin
        ).status_code
        == 403
    )
    nobody = client.get(
        "/api/v1/subject-access", params={"phone": "+447700900555"}, headers=people.governance
    )
    assert nobody.json()["calls"] == []
    listed = client.get(
        "/api/v1/recordings", params={"phone": "07700 900123"}, headers=people.admin
    ).json()["items"]
    assert [r["call_sid"] for r in listed] == [second, mine]  # newest first
    by_department = client.get(
        "/api/v1/recordings", params={"department": "planning"}, headers=people.governance
    )
    assert by_department.json()["items"] == []


def test_sar_export_from_the_cli(run_cli, services, platform: Platform) -> None:
    call_sid, _ = completed_call(platform)
    result = run_cli("sar", "export", "07700 900123")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert [c["call_sid"] for c in body["calls"]] == [call_sid]
    [event] = events(services, "subject_access.exported")
    assert event.actor == "cli"
    withheld = run_cli("sar", "export", "anonymous")
    assert withheld.exit_code == 2
    assert "withheld" in withheld.output
