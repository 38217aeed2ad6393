"""R4: a recording is retrieved only for a purpose the notice names, by a role allowed it,
logged with who and why, through a short-lived media link of ours (never the provider's
credentials); a destroyed recording is 410."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from app.people.users import Role
from app.platforms.simulator.provider import SimulatorProvider
from app.retention.run import RetentionRun
from app.storage.db import unit_of_work
from app.storage.models import RecordingAccess, utcnow
from tests.factories import bearer, make_user
from tests.governance.conftest import People, events, seed_due, years_later
from tests.twilio_fake.server import MEDIA_BYTES, FakeTwilioServer

PURPOSES = ("quality_monitoring", "complaint", "crime_prevention", "staff_safety", "subject_access")
SUPERVISOR_PURPOSES = {"quality_monitoring", "complaint", "staff_safety"}


def access(client: TestClient, sid: str, purpose: str, headers: dict[str, str]):
    return client.post(
        f"/api/v1/recordings/{sid}/access", json={"purpose": purpose}, headers=headers
    )


def test_purposes_by_role(
    client: TestClient, services, people: People, completed: tuple[str, str]
) -> None:
    call_sid, sid = completed
    for purpose in PURPOSES:
        assert access(client, sid, purpose, people.governance).status_code == 200
        for role in ("supervisor", "admin"):
            expected = 200 if purpose in SUPERVISOR_PURPOSES else 403
            assert access(client, sid, purpose, getattr(people, role)).status_code == expected
        assert access(client, sid, purpose, people.agent).status_code == 403
    unknown = access(client, sid, "curiosity", people.governance)
    assert unknown.status_code == 422
    assert "purpose" in unknown.json()["detail"]
    assert (
        client.post(f"/api/v1/recordings/{sid}/access", json={}, headers=people.admin).status_code
        == 422
    )
    assert access(client, "RE404", "complaint", people.governance).status_code == 404

    logged = events(services, "recording.accessed", recording_sid=sid)
    assert len(logged) == 5 + 3 * 2  # governance: every purpose; supervisor and admin: three
    first = logged[0]
    assert (first.actor, first.call_sid, first.reasons) == (
        "governance-1",
        call_sid,
        ["quality_monitoring"],
    )
    assert first.detail["purpose"] == "quality_monitoring"
    assert first.detail["role"] == "governance"


def test_the_media_link_streams_once_logged_and_expires(
    client: TestClient, services, people: People, completed: tuple[str, str]
) -> None:
    _call, sid = completed
    body = access(client, sid, "complaint", people.supervisor).json()
    assert body["media_url"].startswith("/api/v1/media/")
    assert body["purpose"] == "complaint"
    media = client.get(body["media_url"])  # no bearer: the link is the credential
    assert media.status_code == 200
    assert media.headers["content-type"] == "audio/x-wav"
    assert media.headers["cache-control"] == "no-store"
    assert media.content.startswith(b"RIFF") and b"WAVE" in media.content[:12]
    [fetched] = events(services, "recording.media_fetched", recording_sid=sid)
    assert (fetched.actor, fetched.detail["purpose"]) == ("supervisor-1", "complaint")

    assert client.get("/api/v1/media/not-a-token-at-all-really").status_code == 404
    with unit_of_work(services.sessions) as session:
        for row in session.query(RecordingAccess):
            row.expires_at = utcnow() - timedelta(seconds=1)
    assert client.get(body["media_url"]).status_code == 404
    with services.sessions() as session:
        stored = session.query(RecordingAccess).one()
    token = body["media_url"].rsplit("/", 1)[1]
    assert token not in stored.token_sha256  # only its digest is kept


def test_a_destroyed_recording_is_gone(
    client: TestClient, services, simulator: SimulatorProvider, people: People, completed
) -> None:
    _call, sid = completed
    link = access(client, sid, "complaint", people.governance).json()["media_url"]
    RetentionRun(services.sessions, simulator, now=years_later()).run()
    assert access(client, sid, "complaint", people.governance).status_code == 410
    assert client.get(link).status_code == 410
    disclosure = client.post(
        f"/api/v1/recordings/{sid}/disclosures",
        json={"recipient": "Police", "agreement_reference": "DSA-1"},
        headers=people.governance,
    )
    assert disclosure.status_code == 410


def test_a_recording_without_media_cannot_be_retrieved(
    client: TestClient, platform, people: People
) -> None:
    from tests.governance.conftest import CONTACT_HARLOW

    call_sid = platform.queue_call(CONTACT_HARLOW)  # still recording
    sid = platform.simulator.recordings(call_sid)[0].sid
    assert access(client, sid, "complaint", people.governance).status_code == 409


def test_with_twilio_the_media_is_proxied_with_the_accounts_credentials(
    twilio_app, twilio_server: FakeTwilioServer
) -> None:
    client, services = twilio_app
    [sid] = seed_due(services, twilio_server.platform, 1, destroy_after=years_later())
    governance = bearer(make_user(services, "ig", Role.GOVERNANCE))
    body = access(client, sid, "crime_prevention", governance).json()
    assert twilio_server.auth_token not in str(body)
    media = client.get(body["media_url"])
    assert media.status_code == 200, media.text
    assert media.content == MEDIA_BYTES
    [request] = twilio_server.requests_for("GET", f"/Recordings/{sid}.wav")
    assert request.path == f"/2010-04-01/Accounts/{twilio_server.account_sid}/Recordings/{sid}.wav"

    twilio_server.inject("media", status=500)
    assert client.get(body["media_url"]).status_code == 502
    twilio_server.platform.delete_recording(sid)  # gone at Twilio, not yet here
    assert client.get(body["media_url"]).status_code == 410
