"""P8: every instance uses the active version; decisions name theirs; start-up activation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import load_settings
from app.main import create_app
from app.platforms.twilio import forms
from app.platforms.twilio.webhooks import answers
from app.recording_policy import DEFAULT_POLICY_PATH, load_policy_text
from app.runtime.services import build_services
from app.storage.db import make_engine, make_session_factory, unit_of_work
from app.storage.models import AuditEvent, Call, PolicyActivation, PolicyVersion
from app.storage.policy_versions import activate, active_policy, ensure_active
from tests.factories import MAIN_NUMBER, Platform, new_call_sid


def test_a_newly_activated_version_decides_the_next_call(platform: Platform, services) -> None:
    before = platform.queue_call(MAIN_NUMBER, ["1"])
    # Another instance (or the CLI) activates a policy where Contact Harlow is unrecorded.
    source = DEFAULT_POLICY_PATH.read_text().replace(
        'id = "contact-harlow"\nname = "Contact Harlow"\nrecorded = true',
        'id = "contact-harlow"\nname = "Contact Harlow"\nrecorded = false',
    )
    assert source != DEFAULT_POLICY_PATH.read_text()
    with unit_of_work(services.sessions) as session:
        version, changed = activate(session, load_policy_text(source, "v2"), source, "test")
    assert (version, changed) == (2, True)
    after = platform.queue_call(MAIN_NUMBER, ["1"])
    with services.sessions() as session:
        assert session.get(Call, before).policy_version == 1
        assert session.get(Call, after).policy_version == 2
        assert session.get(Call, after).reasons == ["department_not_recorded"]
        decision = session.scalars(
            select(AuditEvent).where(AuditEvent.call_sid == after, AuditEvent.type == "decision")
        ).one()
        assert decision.policy_version == 2
    assert platform.simulator.recordings(after) == []


def test_the_configured_file_is_activated_at_start_when_none_is(
    migrated_url: str, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    custom = tmp_path / "policy.toml"
    custom.write_text(DEFAULT_POLICY_PATH.read_text().replace('"Harlow Council', '"Trial'))
    settings = load_settings(database_url=migrated_url, policy_file=custom)
    services = build_services(settings)
    try:
        with TestClient(create_app(settings, services)), services.sessions() as session:
            active = active_policy(session)
            assert active is not None and active.policy.name.startswith("Trial")
        # A restart with another file does not replace an active version.
        other = load_settings(database_url=migrated_url)
        with TestClient(create_app(other, services)), services.sessions() as session:
            assert active_policy(session).version == active.version
    finally:
        services.close()


def test_concurrent_duplicate_voice_deliveries_apply_once(platform: Platform, services) -> None:
    call_sid = new_call_sid()
    form = {"CallSid": call_sid, "To": MAIN_NUMBER}
    render = answers(services).render
    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(
            pool.map(lambda _: services.calls.arrived(forms.voice(form, None), render), range(12))
        )
    assert len({r.body for r in replies}) == 1
    assert sum(not r.duplicate for r in replies) == 1
    with services.sessions() as session:
        started = session.scalars(
            select(AuditEvent).where(
                AuditEvent.call_sid == call_sid, AuditEvent.type == "call.started"
            )
        ).all()
        assert len(started) == 1


def test_instances_starting_together_activate_the_policy_once(migrated_url: str) -> None:
    """Several workers start at once on a fresh database: one activates, the others find
    it active (none fails its start on a duplicate version)."""
    engine = make_engine(migrated_url)
    sessions = make_session_factory(engine)
    barrier = threading.Barrier(6)

    def start() -> int | None:
        barrier.wait()
        with unit_of_work(sessions) as session:
            return ensure_active(session, None)

    with ThreadPoolExecutor(max_workers=6) as pool:
        versions = list(pool.map(lambda _: start(), range(6)))
    assert versions == [1] * 6
    with sessions() as session:
        assert len(session.scalars(select(PolicyVersion)).all()) == 1
        assert len(session.scalars(select(PolicyActivation)).all()) == 1
    engine.dispose()
