"""O5: the console page and the API routes it relies on (/me, a call's events, simulated
platform faults). The page's behaviour is tested in a real browser: tests/e2e."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from app.people.users import Role
from app.recording_policy import REASON_TEXT, Reason
from tests.factories import Platform, bearer, department_number, make_user


def test_every_reason_code_has_words() -> None:
    assert set(REASON_TEXT) == set(Reason)
    assert all(text and text == text.strip() for text in REASON_TEXT.values())


def test_console_page_carries_reason_words_and_a_strict_policy(client: TestClient) -> None:
    response = client.get("/console")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    block = re.search(
        r'<script type="application/json" id="reason-text">(.*?)</script>', response.text, re.S
    )
    assert block is not None
    assert json.loads(block.group(1)) == {str(k): v for k, v in REASON_TEXT.items()}
    # No inline script anywhere: the CSP would block it, so it would be a dead feature.
    assert not re.search(r"<script(?![^>]*(src=|application/json))", response.text)


def test_console_script_is_served_with_the_same_headers(client: TestClient) -> None:
    response = client.get("/console/static/console.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert client.get("/console/static/../../config.py").status_code == 404


def test_the_favicon_the_page_names_is_an_svg_image(client: TestClient) -> None:
    href = re.search(
        r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', client.get("/console").text
    )
    assert href is not None
    response = client.get(href.group(1))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.text.lstrip().startswith("<svg")
    # Its page may load it: images from our own origin are allowed.
    assert "img-src 'self'" in client.get("/console").headers["content-security-policy"]


def test_home_leads_to_the_console(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code in (302, 307)
    assert response.headers["location"] == "/console"


def test_me_names_the_token_holder(client: TestClient, services) -> None:
    token = make_user(services, "ann", Role.AGENT)
    assert client.get("/api/v1/me", headers=bearer(token)).json() == {
        "name": "ann",
        "role": "agent",
    }
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_a_calls_events_are_its_timeline_for_its_agent_and_supervisors(
    client: TestClient, services, platform: Platform
) -> None:
    supervisor = bearer(make_user(services, "sue", Role.SUPERVISOR))
    ann = bearer(make_user(services, "ann", Role.AGENT))
    bob = bearer(make_user(services, "bob", Role.AGENT))
    call_sid = platform.queue_call(
        department_number(client, supervisor["Authorization"][7:], "contact-harlow")
    )
    client.post(f"/api/v1/calls/{call_sid}/assign", json={"agent": "ann"}, headers=supervisor)
    path = f"/api/v1/calls/{call_sid}/events"

    events = client.get(path, headers=supervisor).json()["items"]
    types = [e["type"] for e in events]
    assert types[0] == "call.started"
    assert "recording.started" in types
    assert "call.assigned" in types
    assert [e["sequence"] for e in events] == sorted(e["sequence"] for e in events)
    assert client.get(path, headers=ann).json()["items"] == events
    # Another agent: the same 404 as for a call that does not exist.
    assert client.get(path, headers=bob).status_code == 404
    assert client.get(path, headers=bob).json() == client.get(
        "/api/v1/calls/CAnothere/events", headers=bob
    ).json() | {"detail": f"no call {call_sid}"}
    governance = bearer(make_user(services, "gil", Role.GOVERNANCE))
    assert client.get(path, headers=governance).status_code == 403


def test_simulated_platform_faults_make_a_pause_fail(
    client: TestClient, services, platform: Platform
) -> None:
    supervisor = bearer(make_user(services, "sue", Role.SUPERVISOR))
    call_sid = platform.queue_call(
        department_number(client, supervisor["Authorization"][7:], "contact-harlow")
    )
    fault = {"operation": "pause", "status": "400", "times": "1"}
    assert client.post("/simulator/faults", data=fault).status_code == 403  # unsigned
    assert platform.post("/simulator/faults", {**fault, "operation": "dance"}).status_code == 400
    assert platform.post("/simulator/faults", {**fault, "status": "200"}).status_code == 400
    assert platform.post("/simulator/faults", fault).json() == {
        "operation": "pause",
        "status": 400,
        "times": 1,
    }
    response = client.post(f"/api/v1/calls/{call_sid}/payment/start", headers=supervisor)
    assert response.status_code == 503
    assert response.json()["detail"] == "NOT paused — do not take card details"
    # The fault was used up: the next try is confirmed.
    response = client.post(f"/api/v1/calls/{call_sid}/payment/start", headers=supervisor)
    assert response.status_code == 200
    assert response.json()["confirmed"] is True
