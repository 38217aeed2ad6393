"""Governance fixtures: people with roles, recordings that completed (through the real
webhooks, or seeded straight into the database for volume), the CLI with its settings, an
app on the fake Twilio."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, text
from typer.testing import CliRunner, Result

from app.callers.numbers import protect_caller
from app.config import Settings, get_settings, load_settings
from app.main import create_app
from app.people.users import Role
from app.platforms.simulator.platform import SimulatedPlatform
from app.platforms.simulator.resources import new_call_sid
from app.recording_policy import DEFAULT_POLICY_PATH, load_policy_file
from app.runtime.services import Services, build_services
from app.storage.db import make_engine, unit_of_work
from app.storage.models import Call, Recording, utcnow
from tests.factories import DEFAULT_CALLER, Platform, bearer, make_user
from tests.twilio_fake.server import FakeTwilioServer

POLICY = load_policy_file(DEFAULT_POLICY_PATH)
CONTACT_HARLOW = POLICY.department("contact-harlow").numbers[0]
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class People:
    governance: dict[str, str]
    supervisor: dict[str, str]
    admin: dict[str, str]
    agent: dict[str, str]


@pytest.fixture
def people(services: Services) -> People:
    return People(
        **{
            role.value: bearer(make_user(services, f"{role.value}-1", role))
            for role in (Role.GOVERNANCE, Role.SUPERVISOR, Role.ADMIN, Role.AGENT)
        }
    )


def queue_call_from(platform: Platform, to: str, caller: str) -> str:
    """Like Platform.queue_call, from a given caller's number."""
    call_sid = new_call_sid()
    response = platform.voice(call_sid, to, caller=caller)
    assert response.status_code == 200, response.text
    step = 1
    while "<Enqueue" not in response.text:
        response = platform.ivr(call_sid, step)
        assert response.status_code == 200, response.text
        step += 1
    return call_sid


def completed_call(
    platform: Platform, number: str = CONTACT_HARLOW, caller: str = DEFAULT_CALLER
) -> tuple[str, str]:
    """A caller is queued to a recorded department and hangs up: (call_sid, recording_sid)."""
    call_sid = queue_call_from(platform, number, caller)
    recording_sid = platform.simulator.recordings(call_sid)[0].sid
    platform.hangup(call_sid)
    return call_sid, recording_sid


@pytest.fixture
def completed(platform: Platform) -> tuple[str, str]:
    return completed_call(platform)


def seed_due(
    services: Services,
    platform: SimulatedPlatform,
    count: int,
    *,
    destroy_after: datetime = LONG_AGO,
    caller: str | None = None,
) -> list[str]:
    """`count` completed recordings, due since `destroy_after`, each on its own ended call,
    that `platform` really holds (so a DELETE there answers 204)."""
    sids = []
    with unit_of_work(services.sessions) as session:
        for _ in range(count):
            call_sid = new_call_sid()
            recording = platform.create_recording(call_sid)
            platform.hangup(call_sid)
            call = Call(
                call_sid=call_sid,
                department="contact-harlow",
                queued=True,
                ended=True,
                status="completed",
                started_at=destroy_after - timedelta(days=131),
                ended_at=destroy_after - timedelta(days=130),
            )
            if caller:
                settings = services.settings
                protect_caller(call, caller, settings.number_key, settings.default_region)
            session.add(call)
            session.flush()
            session.add(
                Recording(
                    recording_sid=recording.sid,
                    call_sid=call_sid,
                    department="contact-harlow",
                    status="completed",
                    retention="P130D",
                    completed_at=destroy_after - timedelta(days=130),
                    destroy_after=destroy_after,
                )
            )
            sids.append(recording.sid)
    return sids


def recording(services: Services, sid: str) -> Recording:
    with services.sessions() as session:
        found = session.get(Recording, sid)
        assert found is not None
        return found


def call_row(services: Services, sid: str) -> Call:
    with services.sessions() as session:
        found = session.get(Call, sid)
        assert found is not None
        return found


def events(services: Services, type_: str, **where: Any) -> list[Any]:
    from app.storage.models import AuditEvent

    with services.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.type == type_).order_by(AuditEvent.sequence)
        for name, value in where.items():
            query = query.where(getattr(AuditEvent, name) == value)
        return list(session.scalars(query))


def raw_dump(database_url: str) -> str:
    """Every value of every column of every table, as text (bytes decoded leniently)."""
    engine = make_engine(database_url)
    parts: list[str] = []
    try:
        with engine.connect() as connection:
            for table in inspect(connection).get_table_names():
                for row in connection.execute(text(f'SELECT * FROM "{table}"')):  # noqa: S608
                    for value in row:
                        if isinstance(value, bytes | memoryview):
                            parts.append(bytes(value).decode("latin-1"))
                        else:
                            parts.append(str(value))
    finally:
        engine.dispose()
    return "\n".join(parts)


def years_later(years: int = 5) -> datetime:
    return utcnow() + timedelta(days=365 * years)


@pytest.fixture
def run_cli(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """Invoke `callguard …` against the test's database; `env` adds variables."""
    from app.cli import cli

    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        monkeypatch.setenv("CALLGUARD_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("CALLGUARD_ENV", "test")
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        return runner.invoke(cli, list(args))

    yield invoke
    get_settings.cache_clear()


@pytest.fixture
def twilio_settings(
    migrated_url: str, twilio_server: FakeTwilioServer, tmp_path, monkeypatch
) -> Settings:
    monkeypatch.chdir(tmp_path)
    return load_settings(
        database_url=migrated_url,
        public_base_url="https://callguard.example.org",
        provider="twilio",
        twilio_account_sid=twilio_server.account_sid,
        twilio_auth_token=twilio_server.auth_token,
        twilio_api_base_url=twilio_server.base_url,
        env="test",
    )


@pytest.fixture
def twilio_app(twilio_settings: Settings) -> Iterator[tuple[TestClient, object]]:
    services = build_services(twilio_settings)
    with TestClient(create_app(twilio_settings, services)) as client:
        yield client, services
    services.close()
