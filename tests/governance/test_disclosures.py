"""R4: a disclosure needs a data sharing agreement; a sensitive one, consent or a legal
basis; each is logged."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.governance.conftest import People, events


def disclose(client: TestClient, sid: str, body: dict, headers: dict[str, str]):
    return client.post(f"/api/v1/recordings/{sid}/disclosures", json=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"recipient": "Essex Police"}, "agreement_reference"),
        ({"recipient": "Essex Police", "agreement_reference": "  "}, "agreement_reference"),
        ({"agreement_reference": "DSA-1"}, "recipient"),
        (
            {"recipient": "NHS trust", "agreement_reference": "DSA-2", "sensitive": True},
            "consent_reference or legal_basis",
        ),
        (
            {
                "recipient": "NHS trust",
                "agreement_reference": "DSA-2",
                "sensitive": True,
                "legal_basis": " ",
            },
            "consent_reference or legal_basis",
        ),
    ],
)
def test_a_disclosure_without_what_it_needs_is_refused_naming_the_field(
    client: TestClient, people: People, completed: tuple[str, str], body: dict, field: str
) -> None:
    _call, sid = completed
    response = disclose(client, sid, body, people.governance)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert field in response.json()["detail"]


def test_disclosures_are_recorded_and_logged(
    client: TestClient, services, people: People, completed: tuple[str, str]
) -> None:
    call_sid, sid = completed
    plain = disclose(
        client,
        sid,
        {"recipient": "Essex Police", "agreement_reference": "DSA-1"},
        people.governance,
    )
    assert plain.status_code == 201, plain.text
    assert plain.json()["sensitive"] is False
    sensitive = disclose(
        client,
        sid,
        {
            "recipient": "NHS trust",
            "agreement_reference": "DSA-2",
            "sensitive": True,
            "legal_basis": "Data Protection Act 2018, Sch. 1 para 10",
        },
        people.governance,
    )
    assert sensitive.status_code == 201
    consent = disclose(
        client,
        sid,
        {
            "recipient": "NHS trust",
            "agreement_reference": "DSA-2",
            "sensitive": True,
            "consent_reference": "CONSENT-9",
        },
        people.governance,
    )
    assert consent.json()["consent_reference"] == "CONSENT-9"
    for who in (people.supervisor, people.admin):
        refused = disclose(client, sid, {"recipient": "x", "agreement_reference": "y"}, who)
        assert refused.status_code == 403
    logged = events(services, "disclosure.recorded", recording_sid=sid)
    assert [e.detail["recipient"] for e in logged] == ["Essex Police", "NHS trust", "NHS trust"]
    assert logged[1].detail["legal_basis_given"] is True
    assert logged[2].detail["consent_reference"] == "CONSENT-9"
    assert all(e.actor == "governance-1" and e.call_sid == call_sid for e in logged)
