"""The operator's path: CALLGUARD_PROVIDER=twilio, against the Twilio-compatible server
that checks every request against Twilio's published OpenAPI description."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import load_settings
from app.main import create_app
from app.runtime.services import build_services
from app.storage.models import Call, Recording
from tests.factories import MAIN_NUMBER, Platform, new_call_sid


@pytest.fixture
def twilio_platform(migrated_url, twilio_server, tmp_path, monkeypatch) -> Iterator[Platform]:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        database_url=migrated_url,
        provider="twilio",
        twilio_account_sid=twilio_server.account_sid,
        twilio_auth_token=twilio_server.auth_token,
        twilio_api_base_url=twilio_server.base_url,
        public_base_url="https://calls.example.gov.uk",
    )
    services = build_services(settings)
    with TestClient(create_app(settings, services), base_url=settings.public_base_url) as c:
        yield Platform(c, settings, simulator=None)  # type: ignore[arg-type]
    services.close()


def test_a_real_call_is_recorded_by_the_twilio_rest_api(twilio_platform, twilio_server):
    call_sid = new_call_sid()
    twilio_server.platform.add_call(call_sid)
    twilio_platform.voice(call_sid, MAIN_NUMBER)
    answer = twilio_platform.ivr(call_sid, 1, "1")
    assert "<Enqueue>contact-harlow</Enqueue>" in answer.text

    (create,) = twilio_server.requests_for("POST", f"/Calls/{call_sid}/Recordings.json")
    assert create.field("RecordingChannels") == "dual"
    assert create.field("RecordingTrack") == "both"
    assert create.field("RecordingStatusCallback") == (
        "https://calls.example.gov.uk/webhooks/twilio/recording-status"
    )
    assert create.field("RecordingStatusCallbackEvent") == "in-progress completed absent"
    assert not twilio_server.violations

    recording_sid = twilio_server.platform.recordings(call_sid)[0].sid
    client = twilio_platform.client
    services = client.app.state.services
    with services.sessions() as session:
        assert session.get(Call, call_sid).recording == "recording"
        assert session.get(Recording, recording_sid).department == "contact-harlow"


def test_a_call_to_an_unlisted_department_makes_no_request(twilio_platform, twilio_server):
    call_sid = new_call_sid()
    twilio_server.platform.add_call(call_sid)
    twilio_platform.voice(call_sid, "+441632960070")  # planning: not in the notice
    assert twilio_server.requests == []


def test_a_refused_start_is_logged_and_the_call_still_queues(twilio_platform, twilio_server):
    call_sid = new_call_sid()
    twilio_server.platform.add_call(call_sid)
    twilio_server.inject("start", status=500)
    twilio_platform.voice(call_sid, MAIN_NUMBER)
    answer = twilio_platform.ivr(call_sid, 1, "1")
    assert "<Enqueue>" in answer.text
    services = twilio_platform.client.app.state.services
    with services.sessions() as session:
        call = session.get(Call, call_sid)
        assert (call.desired, call.recording) == ("recording", "off")
    from app.audit.log import events_for

    with services.sessions() as session:
        failed = [
            e for e in events_for(session, call_sid=call_sid) if e.type == "recording.start_failed"
        ]
    assert failed[0].detail["status"] == 500
    assert failed[0].detail["transient"] is True


def test_pause_for_payment_sends_pause_behavior_skip(twilio_platform, twilio_server, services_of):
    from app.people.users import Role
    from tests.factories import bearer, make_user

    call_sid = new_call_sid()
    twilio_server.platform.add_call(call_sid)
    twilio_platform.voice(call_sid, MAIN_NUMBER)
    twilio_platform.ivr(call_sid, 1, "1")
    services = services_of(twilio_platform)
    token = make_user(services, "sup", Role.SUPERVISOR)
    client = twilio_platform.client
    response = client.post(f"/api/v1/calls/{call_sid}/payment/start", headers=bearer(token))
    assert response.json()["confirmed"] is True
    recording_sid = twilio_server.platform.recordings(call_sid)[0].sid
    (pause,) = twilio_server.requests_for("POST", f"/Recordings/{recording_sid}.json")
    assert (pause.field("Status"), pause.field("PauseBehavior")) == ("paused", "skip")
    client.post(f"/api/v1/calls/{call_sid}/payment/end", headers=bearer(token))
    resume = twilio_server.requests_for("POST", f"/Recordings/{recording_sid}.json")[1]
    assert (resume.field("Status"), resume.field("PauseBehavior")) == ("in-progress", None)
    assert not twilio_server.violations


@pytest.fixture
def services_of():
    return lambda platform: platform.client.app.state.services
