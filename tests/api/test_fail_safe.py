"""P7: with no valid policy or no database, the answer is the privacy-safe one."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import load_settings
from app.main import create_app
from app.platforms.simulator.provider import SimulatorProvider
from app.runtime.services import build_services
from app.storage.db import unit_of_work
from app.storage.models import Call, PolicyActivation, PolicyVersion
from tests.factories import MAIN_NUMBER, Platform, new_call_sid


def _break_the_active_policy(services) -> None:
    """Activate a stored version that no longer validates (e.g. written by hand)."""
    with unit_of_work(services.sessions) as session:
        row = PolicyVersion(content_sha256="0" * 64, name="broken", source="opt_out_digit = 'x'")
        session.add(row)
        session.flush()
        session.add(PolicyActivation(version=row.version, activated_by="test"))


@pytest.fixture
def make_platform(migrated_url: str, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opened = []

    def build(fail_safe: str) -> tuple[Platform, object]:
        settings = load_settings(
            database_url=migrated_url,
            public_base_url="https://callguard.example.org",
            twilio_auth_token="t",
            fail_safe=fail_safe,
        )
        simulator = SimulatorProvider()
        services = build_services(settings, provider=simulator)
        client = TestClient(create_app(settings, services), base_url=settings.public_base_url)
        client.__enter__()
        opened.append((client, services))
        return Platform(client, settings, simulator), services

    yield build
    for client, services in opened:
        client.__exit__(None, None, None)
        services.close()


@pytest.mark.parametrize(("fail_safe", "records"), [("no-record", False), ("record", True)])
def test_no_valid_policy_applies_the_configured_fail_safe(make_platform, fail_safe, records):
    platform, services = make_platform(fail_safe)
    _break_the_active_policy(services)
    call_sid = new_call_sid()
    answer = platform.voice(call_sid, MAIN_NUMBER)
    assert answer.status_code == 200
    root = ET.fromstring(answer.text)
    assert root.find("Enqueue") is not None  # the caller still reaches a person
    assert (root.find("Start/Recording") is not None) is records
    with services.sessions() as session:
        call = session.get(Call, call_sid)
        assert call.policy_version is None
        assert call.reasons == [f"fail_safe_{fail_safe.replace('-', '_')}", "no_policy"]


def test_fail_safe_record_twiml_asks_for_the_recording_callbacks(make_platform):
    platform, services = make_platform("record")
    _break_the_active_policy(services)
    root = ET.fromstring(platform.voice(new_call_sid(), MAIN_NUMBER).text)
    recording = root.find("Start/Recording")
    assert recording.get("recordingStatusCallback").endswith("/webhooks/twilio/recording-status")
    assert recording.get("recordingStatusCallbackEvent") == "in-progress completed absent"
    assert recording.get("channels") == "dual"


@pytest.mark.parametrize(("fail_safe", "records"), [("no-record", False), ("record", True)])
def test_database_down_still_answers_the_caller(make_platform, fail_safe, records):
    platform, services = make_platform(fail_safe)
    services.engine.dispose()
    broken = services.engine.url.set(
        drivername=services.engine.url.drivername,
        database="/nonexistent/dir/x.db"
        if services.engine.url.get_backend_name() == "sqlite"
        else "no_such_database_cg",
    )
    from app.storage.db import make_engine, make_session_factory

    services.engine = make_engine(broken.render_as_string(hide_password=False))
    services.sessions = make_session_factory(services.engine)
    services.calls.sessions = services.sessions
    answer = platform.voice(new_call_sid(), MAIN_NUMBER)
    assert answer.status_code == 200
    root = ET.fromstring(answer.text)
    assert root.find("Enqueue") is not None
    assert (root.find("Start/Recording") is not None) is records
    # A status callback is kept in the journal and acknowledged, to be replayed later.
    status = platform.call_status(new_call_sid(), "completed", 1)
    assert status.status_code == 204
    assert services.journal.backlog() == 2


def test_policy_route_says_unavailable_without_a_valid_policy(client: TestClient, services):
    from app.people.users import Role
    from tests.factories import bearer, make_user

    token = make_user(services, "op", Role.ADMIN)
    _break_the_active_policy(services)
    response = client.get("/api/v1/policy", headers=bearer(token))
    assert response.status_code == 503
    with services.sessions() as session:
        assert session.scalars(select(PolicyActivation)).all()
